"""The one writer: batched, conditional status changes, job counters, retries and dead letters."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler_app.engine import outcomes
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import Writer, apply_outcomes
from scheduler_app.models import Execution, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(make_job):
    return make_job(name="nightly", max_retries=1, retry_backoff=30)


def finished(execution: Execution, status: str, at, **fields):
    execution = Execution.objects.select_related("job").get(pk=execution.pk)
    result = RunResult(status, at - timedelta(seconds=1), at, **fields)
    return outcomes.finished(RunRequest.for_execution(execution), result, worker="node-a")


def started(execution: Execution, at):
    execution = Execution.objects.select_related("job").get(pk=execution.pk)
    return outcomes.started(RunRequest.for_execution(execution), started_at=at, worker="node-a")


def job_updates(queries) -> int:
    """How many UPDATEs of a Job row ran (an executemany of N rows is recorded as "N times: ...")."""
    count = 0
    for query in queries:
        times, _, sql = query["sql"].rpartition(" times: ")
        if sql.startswith((f'UPDATE "{Job._meta.db_table}"', f"UPDATE {Job._meta.db_table}")):
            count += int(times or 1)
    return count


def test_it_applies_a_finished_report_to_a_running_row(job, make_execution, now):
    run = make_execution(job, status="running")
    apply_outcomes([finished(run, "succeeded", now, result={"rows": 3}, output="done\n")])
    run.refresh_from_db()
    assert (run.status, run.result, run.output, run.finished_at) == ("succeeded", {"rows": 3}, "done\n", now)


def test_it_ignores_a_finished_report_for_a_cancelled_row(job, make_execution, now):
    run = make_execution(job, status="cancelled", error="Cancelled before it started.")
    apply_outcomes([finished(run, "succeeded", now)])
    run.refresh_from_db()
    job.refresh_from_db()
    assert (run.status, run.error) == ("cancelled", "Cancelled before it started.")
    assert (job.run_count, job.last_status) == (0, "")


def test_it_ignores_a_repeated_report(job, make_execution, now):
    run = make_execution(job, status="running")
    report = finished(run, "succeeded", now)
    apply_outcomes([report])
    apply_outcomes([report])
    job.refresh_from_db()
    assert job.run_count == 1


def test_it_turns_started_then_finished_in_one_batch_into_the_final_state(job, make_execution, now):
    run = make_execution(job, status="queued")
    apply_outcomes([started(run, now), finished(run, "succeeded", now + timedelta(seconds=2))])
    run.refresh_from_db()
    assert (run.status, run.worker, run.finished_at) == ("succeeded", "node-a", now + timedelta(seconds=2))


def test_it_ignores_a_started_report_that_comes_after_the_finished_one(job, make_execution, now):
    run = make_execution(job, status="queued")
    apply_outcomes([finished(run, "succeeded", now), started(run, now)])
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_it_adds_a_batch_to_the_job_counters_in_one_update_per_job(job, make_execution, now):
    first, second = make_execution(job), make_execution(job, scheduled_for=now + timedelta(minutes=5))
    batch = [finished(first, "succeeded", now), finished(second, "failed", now + timedelta(minutes=5))]
    with CaptureQueriesContext(connection) as queries:
        apply_outcomes(batch)
    assert job_updates(queries) == 1
    job.refresh_from_db()
    assert (job.run_count, job.failure_count) == (2, 1)
    assert (job.last_status, job.last_run_at) == ("failed", now + timedelta(minutes=5))


def test_it_keeps_the_latest_finish_as_the_last_status_whatever_the_batch_order(job, make_execution, now):
    first, second = make_execution(job), make_execution(job, scheduled_for=now + timedelta(minutes=5))
    apply_outcomes([finished(second, "succeeded", now + timedelta(minutes=5)), finished(first, "failed", now)])
    job.refresh_from_db()
    assert (job.last_status, job.last_run_at) == ("succeeded", now + timedelta(minutes=5))


def test_it_creates_the_retry_row_when_the_failure_applied(job, make_execution, now):
    run = make_execution(job, status="running")
    apply_outcomes([finished(run, "failed", now, error="ValueError: boom")])
    retry = Execution.objects.get(job=job, attempt=2)
    assert (retry.status, retry.reason, retry.scheduled_for) == ("scheduled", "retry", run.scheduled_for)
    assert retry.run_after > now


def test_it_creates_no_retry_row_when_the_failure_did_not_apply(job, make_execution, now):
    run = make_execution(job, status="cancelled")
    apply_outcomes([finished(run, "failed", now)])
    assert not Execution.objects.filter(job=job, attempt=2).exists()


def test_it_creates_one_retry_row_when_the_same_failure_is_reported_twice_in_a_batch(job, make_execution, now):
    run = make_execution(job, status="running")
    report = finished(run, "failed", now)
    apply_outcomes([report, report])
    assert Execution.objects.filter(job=job, attempt=2).count() == 1


def test_it_marks_a_final_failure_as_a_dead_letter(job, make_execution, now):
    run = make_execution(job, status="running", attempt=2)  # max_retries=1: this was the last attempt
    apply_outcomes([finished(run, "failed", now)])
    run.refresh_from_db()
    assert (run.status, run.dead_letter) == ("failed", True)
    assert not Execution.objects.filter(job=job, attempt=3).exists()


@pytest.mark.django_db(transaction=True)
def test_it_writes_everything_queued_before_stop(job, make_execution, now):
    runs = [make_execution(job, status="running", scheduled_for=now + timedelta(minutes=n)) for n in range(30)]
    reports = [finished(run, "succeeded", now + timedelta(minutes=n)) for n, run in enumerate(runs)]
    writer = Writer()
    writer.start()
    for report in reports:
        writer.put(report)
    writer.stop()
    assert Execution.objects.filter(job=job, status="succeeded").count() == 30
    job.refresh_from_db()
    assert job.run_count == 30


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_after_hook_once_the_batch_is_committed(job, make_execution, now):
    run = make_execution(job, status="running")
    seen = []
    report = finished(run, "succeeded", now)
    report.after = lambda: seen.append(Execution.objects.get(pk=run.pk).status)
    writer = Writer()
    writer.start()
    writer.put(report)
    writer.stop()
    assert seen == ["succeeded"]
    assert threading.current_thread() is threading.main_thread()
