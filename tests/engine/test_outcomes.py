"""What a finished run means: its final status, the next attempt, or a dead letter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler_app.engine import outcomes
from scheduler_app.engine.runner import RunRequest, RunResult

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FINISHED = NOON + timedelta(seconds=5)


def request(**fields) -> RunRequest:
    values = dict(
        execution_id=41,
        job_id=7,
        job_name="nightly",
        task="engine_tests.add",
        args=[],
        kwargs={},
        timeout=None,
        isolate=False,
        scheduled_for=NOON,
        max_retries=2,
        retry_backoff=30,
        retry_backoff_max=3600,
        trigger_id=3,
    )
    values.update(fields)
    return RunRequest(**values)


def result(status: str, **fields) -> RunResult:
    return RunResult(status, NOON, FINISHED, **fields)


def test_it_moves_a_started_run_from_queued_to_running():
    outcome = outcomes.started(request(), started_at=NOON, worker="node-a")
    assert outcome.from_statuses == ("queued",)
    assert outcome.fields == {"status": "running", "started_at": NOON, "worker": "node-a"}


def test_it_records_a_success_as_the_final_state_without_a_retry():
    outcome = outcomes.finished(request(), result("succeeded", result=3), worker="node-a")
    assert outcome.fields["status"] == "succeeded"
    assert outcome.fields["result"] == 3
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is False
    assert outcome.counts_as_run and not outcome.failed


def test_it_builds_the_next_attempt_for_a_failure_with_retries_left():
    outcome = outcomes.finished(request(attempt=1), result("failed", error="boom"), worker="node-a")
    [retry] = outcome.new_rows
    assert (retry.job_id, retry.job_name, retry.trigger_id) == (7, "nightly", 3)
    assert retry.attempt == 2
    assert retry.reason == "retry"
    assert retry.scheduled_for == NOON  # the same occurrence, its next attempt
    assert outcome.fields["dead_letter"] is False
    assert outcome.failed


def test_it_schedules_the_retry_the_backoff_after_the_failure():
    outcome = outcomes.finished(request(attempt=1, retry_backoff=30), result("failed"), worker="node-a")
    wait = outcome.new_rows[0].run_after - FINISHED
    assert timedelta(seconds=24) <= wait <= timedelta(seconds=36)  # 30 s ± 20 % jitter


def test_it_waits_twice_as_long_before_the_next_retry():
    outcome = outcomes.finished(request(attempt=2, retry_backoff=30), result("failed"), worker="node-a")
    wait = outcome.new_rows[0].run_after - FINISHED
    assert outcome.new_rows[0].attempt == 3
    assert timedelta(seconds=48) <= wait <= timedelta(seconds=72)


def test_it_retries_a_timed_out_run():
    outcome = outcomes.finished(request(), result("timed_out"), worker="node-a")
    assert len(outcome.new_rows) == 1


def test_it_makes_a_failure_without_retries_left_a_dead_letter():
    outcome = outcomes.finished(request(attempt=3, max_retries=2), result("failed"), worker="node-a")
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is True


def test_it_makes_a_failure_of_a_job_without_retries_a_dead_letter():
    outcome = outcomes.finished(request(max_retries=0), result("failed"), worker="node-a")
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is True


def test_it_neither_retries_nor_dead_letters_a_cancelled_run():
    outcome = outcomes.finished(request(), result("cancelled"), worker="node-a")
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is False
    assert not outcome.failed


def test_it_applies_a_final_state_only_to_a_queued_or_running_row():
    outcome = outcomes.finished(request(), result("succeeded"), worker="node-a")
    assert outcome.from_statuses == ("queued", "running")


def test_the_retry_of_a_run_given_its_own_arguments_runs_with_them_again():
    given = request(args=["x"], kwargs={"a": 1}, args_override=["x"], kwargs_override={"a": 1})
    [retry] = outcomes.finished(given, result("failed"), worker="node-a").new_rows
    assert (retry.args, retry.kwargs) == (["x"], {"a": 1})


def test_the_retry_of_a_run_with_the_jobs_arguments_takes_the_jobs_arguments_again():
    [retry] = outcomes.finished(request(args=["x"]), result("failed"), worker="node-a").new_rows
    assert (retry.args, retry.kwargs) == (None, None)  # whatever the job holds when it runs


# A lost run: the job's lost policy ------------------------------------------------------------


def lost(request_: RunRequest):
    return outcomes.finished(request_, result("lost", error="Lost: its scheduler stopped."), worker="node-a")


def test_a_lost_run_under_record_is_never_run_again_even_with_retries_left():
    outcome = lost(request(lost_policy="record", max_retries=3))
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is True


def test_a_lost_run_under_retry_is_retried_while_retries_are_left():
    [retry] = lost(request(lost_policy="retry", max_retries=3)).new_rows
    assert (retry.attempt, retry.reason) == (2, "retry")


def test_a_lost_run_under_retry_without_retries_gets_one_recovery_run_at_once():
    outcome = lost(request(lost_policy="retry", max_retries=0))
    [again] = outcome.new_rows
    assert (again.attempt, again.reason, again.scheduled_for, again.run_after) == (2, "recovery", NOON, FINISHED)
    assert outcome.fields["dead_letter"] is False


def test_a_lost_recovery_run_is_not_run_again():
    outcome = lost(request(lost_policy="retry", max_retries=0, attempt=2, reason="recovery"))
    assert outcome.new_rows == []
    assert outcome.fields["dead_letter"] is True


def test_auto_retries_a_lost_run_of_a_job_with_retries_and_records_one_without():
    assert [row.reason for row in lost(request(lost_policy="auto", max_retries=1)).new_rows] == ["retry"]
    assert lost(request(lost_policy="auto", max_retries=0)).new_rows == []


def test_the_lost_policy_leaves_failures_to_the_retries():
    outcome = outcomes.finished(request(lost_policy="record", max_retries=1), result("failed"), worker="node-a")
    assert [row.reason for row in outcome.new_rows] == ["retry"]
    outcome = outcomes.finished(request(lost_policy="retry", max_retries=0), result("failed"), worker="node-a")
    assert outcome.new_rows == []
