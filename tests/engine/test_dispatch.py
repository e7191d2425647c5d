"""The thread pool: which run a free worker takes, per-owner caps, stopping runs (cancel, time limit, shutdown).

Real worker threads, a real writer and committed rows (transaction=True): a worker thread
writes through its own connection.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from scheduler_app import services
from scheduler_app.engine.dispatch import Dispatcher, claim
from scheduler_app.engine.firing import record_fires
from scheduler_app.engine.lease import Lease, register
from scheduler_app.engine.loop import Engine
from scheduler_app.engine.runner import RunRequest
from scheduler_app.engine.writer import Writer
from scheduler_app.models import Execution
from tests.engine import tasks_for_tests

pytestmark = pytest.mark.django_db(transaction=True)
NODE = "host:1:node-a"


@pytest.fixture
def make_dispatcher():
    made = []

    def make(max_workers: int) -> Dispatcher:
        writer = Writer()
        writer.start()
        dispatcher = Dispatcher(node=NODE, writer=writer, max_workers=max_workers)
        made.append(dispatcher)
        return dispatcher

    yield make
    tasks_for_tests.release.set()
    for dispatcher in made:
        dispatcher.drain(10, "test over")
        dispatcher.writer.stop()
        dispatcher.shutdown()


def wait_for(condition, *, timeout: float = 10, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def run_now(dispatcher: Dispatcher, job) -> Execution:
    """A run-now request, claimed and handed to the pool as Engine.start_waiting does."""
    execution = services.job_run_now(job=job)
    execution = Execution.objects.select_related("job").get(pk=execution.pk)
    assert claim(execution, node=NODE, now=datetime.now(UTC))
    dispatcher.launch([(RunRequest.for_execution(execution), "start")])
    return execution


def status(execution: Execution) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=execution.pk)


def running(execution: Execution) -> bool:
    return status(execution) == "running"


def finished(*executions: Execution) -> list[Execution]:
    rows = list(Execution.objects.filter(pk__in=[e.pk for e in executions], status__in=Execution.FINISHED))
    return rows if len(rows) == len(executions) else []


def start_order(*executions: Execution) -> list[str]:
    rows = Execution.objects.filter(pk__in=[e.pk for e in executions]).order_by("started_at")
    return [row.job_name for row in rows]


@pytest.fixture
def blocked(make_dispatcher, make_job, tmp_path):
    """A one-worker pool whose worker is busy until `release()`."""
    dispatcher = make_dispatcher(1)
    gate = tmp_path / "go"
    job = make_job(name="blocker", task="engine_tests.waits_for_file", kwargs={"path": str(gate)})
    blocker = run_now(dispatcher, job)
    wait_for(lambda: running(blocker), what="the blocking run to start")
    return SimpleNamespace(dispatcher=dispatcher, run=blocker, release=gate.touch)


# Priority --------------------------------------------------------------------------------


def test_a_freed_worker_takes_the_highest_priority_among_runs_due_together(blocked, make_job):
    # Created (and due) in the order low, mid, high: creation order used to decide.
    jobs = [
        make_job(name=name, task="tempora.noop", priority=priority)
        for name, priority in (("low", 1), ("mid", 5), ("high", 10))
    ]
    due = datetime.now(UTC)
    ready, _ = record_fires(
        [(SimpleNamespace(id=str(job.pk), next_run_time=None), [due]) for job in jobs],
        now=due,
        dispatcher=blocked.dispatcher,
        node=NODE,
        paused=False,
    )
    blocked.dispatcher.launch(ready)
    runs = list(Execution.objects.filter(job__in=jobs))
    time.sleep(0.1)  # all three are due and waiting behind the blocker
    blocked.release()
    wait_for(lambda: finished(*runs), what="the three runs")
    assert start_order(*runs) == ["high", "mid", "low"]


def test_priority_orders_waiting_run_now_requests_retries_and_due_runs(blocked, make_job):
    engine = Engine()
    engine.dispatcher, engine.node = blocked.dispatcher, SimpleNamespace(name=NODE)
    engine.lease = Lease(register(now=datetime.now(UTC)), seconds=10)
    engine.lease.beat()  # the claims are fenced: only the leader claims
    low = make_job(name="run-now-low", task="tempora.noop", priority=1)
    retried = make_job(name="retry-mid", task="tempora.noop", priority=5)
    high = make_job(name="run-now-high", task="tempora.noop", priority=10)
    now = datetime.now(UTC)
    services.job_run_now(job=low, now=now - timedelta(seconds=2))  # asked first
    Execution.objects.create(
        job=retried,
        job_name=retried.name,
        scheduled_for=now - timedelta(seconds=30),
        run_after=now - timedelta(seconds=1),
        attempt=2,
        reason="retry",
    )  # due earliest
    services.job_run_now(job=high, now=now)
    assert engine.start_waiting(now) == 3
    runs = list(Execution.objects.filter(job__in=[low, retried, high]))
    blocked.release()
    wait_for(lambda: finished(*runs), what="the three runs")
    assert start_order(*runs) == ["run-now-high", "retry-mid", "run-now-low"]


# One owner's share of the workers ------------------------------------------------------------


def test_an_owner_over_the_cap_waits_while_other_owners_runs_start(
    settings, make_dispatcher, make_job, owner, outsider, tmp_path
):
    settings.SCHEDULER_MAX_RUNS_PER_USER = 2
    dispatcher = make_dispatcher(4)

    def hanging(name: str, user, priority: int = 5):
        job = make_job(
            name=name,
            owner=user,
            priority=priority,
            task="engine_tests.waits_for_file",
            kwargs={"path": str(tmp_path / name)},
        )
        return job, (tmp_path / name).touch

    (first, end_first), (second, end_second) = hanging("a-1", owner), hanging("a-2", owner)
    a1, a2 = run_now(dispatcher, first), run_now(dispatcher, second)
    wait_for(lambda: running(a1) and running(a2), what="the owner's first two runs")
    (third, end_third), (fourth, end_fourth) = hanging("a-3", owner, priority=2), hanging("a-4", owner, priority=9)
    a3, a4 = run_now(dispatcher, third), run_now(dispatcher, fourth)
    other_job, end_other = hanging("b-1", outsider)
    b1 = run_now(dispatcher, other_job)
    wait_for(lambda: running(b1), timeout=1, what="another owner's run to start at once")
    # Two workers are free, yet the owner's third and fourth runs wait: not skipped, not failed.
    assert (status(a3), status(a4)) == ("queued", "queued")
    end_first()
    wait_for(lambda: running(a4), what="the owner's highest-priority waiting run, once one of theirs ended")
    assert status(a3) == "queued"
    for end in (end_second, end_third, end_fourth, end_other):
        end()
    rows = wait_for(lambda: finished(a1, a2, a3, a4, b1), what="every run")
    assert {row.status for row in rows} == {"succeeded"}


def test_jobs_without_an_owner_are_not_capped(settings, make_dispatcher, make_job, tmp_path):
    settings.SCHEDULER_MAX_RUNS_PER_USER = 1
    dispatcher = make_dispatcher(3)
    gate = tmp_path / "go"
    runs = [
        run_now(dispatcher, make_job(task="engine_tests.waits_for_file", kwargs={"path": str(gate)})) for _ in range(3)
    ]
    wait_for(lambda: all(running(run) for run in runs), what="three system runs at once")
    gate.touch()


# Cancelling a run in a thread --------------------------------------------------------------


def test_cancelling_a_thread_run_stops_its_python_code(make_dispatcher, make_job, tmp_path):
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    run = run_now(dispatcher, make_job(task="engine_tests.spins", kwargs={"seconds": 8, "marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    asked = time.monotonic()
    dispatcher.cancel([run.pk])
    [row] = wait_for(lambda: finished(run), what="the run to stop")
    assert (row.status, row.error) == ("cancelled", "Cancelled (cancel requested); the run stopped.")
    assert "RunCancelled" in row.traceback and "in spins" in row.traceback  # where it was stopped
    assert time.monotonic() - asked < 5  # the grace (2 s) and a tick, not the 8 s it would have spun


def test_a_task_that_checks_for_cancel_stops_at_its_own_check_before_any_interruption(
    make_dispatcher, make_job, tmp_path
):
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    run = run_now(dispatcher, make_job(task="engine_tests.checks_for_cancel", kwargs={"marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    asked = time.monotonic()
    dispatcher.cancel([run.pk])
    [row] = wait_for(lambda: finished(run), what="the run to stop")
    assert row.status == "cancelled"
    assert "raise_if_cancelled()" in row.traceback
    assert time.monotonic() - asked < 1.5  # within the grace: the task's own check stopped it


def test_cancelling_a_run_still_waiting_for_a_worker_records_it_at_once_and_it_never_starts(
    blocked, make_job, tmp_path
):
    marker = tmp_path / "started"
    waiting = run_now(
        blocked.dispatcher, make_job(task="engine_tests.spins", kwargs={"seconds": 0, "marker": str(marker)})
    )
    blocked.dispatcher.cancel([waiting.pk])
    [row] = wait_for(lambda: finished(waiting), timeout=2, what="the waiting run to be cancelled")
    assert (row.status, row.error, row.started_at) == ("cancelled", "Cancelled before it started.", None)
    assert running(blocked.run)
    blocked.release()
    wait_for(lambda: finished(blocked.run), what="the blocker to end")
    time.sleep(0.2)
    assert not marker.exists()


def test_a_worker_that_stopped_a_run_runs_the_next_one_normally(make_dispatcher, make_job, tmp_path):
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    stopped = run_now(dispatcher, make_job(task="engine_tests.spins", kwargs={"seconds": 8, "marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    dispatcher.cancel([stopped.pk])
    wait_for(lambda: finished(stopped), what="the run to stop")
    following = [run_now(dispatcher, make_job(task="engine_tests.add", args=[n, 1])) for n in range(20)]
    rows = wait_for(lambda: finished(*following), what="the next runs")
    assert sorted((row.status, row.result) for row in rows) == sorted(("succeeded", n + 1) for n in range(20))


# The default time limit, in the thread ---------------------------------------------------------


def test_a_thread_run_past_the_default_time_limit_is_stopped_and_recorded_timed_out(
    settings, make_dispatcher, make_job
):
    settings.SCHEDULER_DEFAULT_TIMEOUT = 1
    dispatcher = make_dispatcher(1)
    job = make_job(task="engine_tests.spins", kwargs={"seconds": 8})
    request = RunRequest.for_job(job, execution_id=0, scheduled_for=datetime.now(UTC))
    assert (request.timeout, request.isolate) == (1, False)  # the default runs in the thread, not a child
    run = run_now(dispatcher, job)
    [row] = wait_for(lambda: finished(run), what="the run to time out")
    assert (row.status, row.error) == ("timed_out", "Timed out after 1s; the run was stopped.")
    assert 1 <= row.duration.total_seconds() < 3


def test_a_coroutine_past_the_default_time_limit_is_cancelled_and_recorded_timed_out(
    settings, make_dispatcher, make_job, tmp_path
):
    settings.SCHEDULER_DEFAULT_TIMEOUT = 1
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    run = run_now(dispatcher, make_job(task="engine_tests.async_waits_forever", kwargs={"marker": str(marker)}))
    [row] = wait_for(lambda: finished(run), what="the coroutine to time out")
    assert marker.exists()  # it ran
    assert (row.status, row.error) == ("timed_out", "Timed out after 1s; the run was stopped.")
    assert "CancelledError" in row.traceback


def test_a_run_blocked_in_c_past_its_limit_gets_its_worker_replaced_and_the_row_says_so(
    settings, make_dispatcher, make_job, tmp_path
):
    settings.SCHEDULER_DEFAULT_TIMEOUT = 1
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    stuck = run_now(dispatcher, make_job(task="engine_tests.sleeps_in_c", kwargs={"seconds": 8, "marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    other = run_now(dispatcher, make_job(task="engine_tests.add", args=[1, 2]))
    # 1 s limit + 5 s to give up on the interruption: then a new worker takes the other run.
    [row] = wait_for(lambda: finished(other), timeout=8, what="the other run, on the replacement worker")
    assert row.status == "succeeded"
    stuck_row = Execution.objects.get(pk=stuck.pk)
    assert stuck_row.status == "running"  # true: its body still sleeps
    assert stuck_row.error.startswith("Past its time limit of 1s, but still running: it is blocked outside Python")
    [stuck_row] = wait_for(lambda: finished(stuck), timeout=6, what="the sleep to return")
    assert (stuck_row.status, stuck_row.error) == ("timed_out", "Timed out after 1s; the run was stopped.")
    assert len(dispatcher.pool.threads) == 1  # the stuck worker left once its run ended


# Shutting down -------------------------------------------------------------------------------


def test_a_stop_interrupts_thread_runs_which_record_themselves_lost(make_dispatcher, make_job, tmp_path):
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    run = run_now(dispatcher, make_job(task="engine_tests.spins", kwargs={"seconds": 8, "marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    left = dispatcher.drain(0.1, "The scheduler stopped (test).")
    assert left == []  # it stopped: nothing is left for the drain to mark
    [row] = wait_for(lambda: finished(run), what="the run's own record")
    assert (row.status, row.error) == ("lost", "The scheduler stopped (test).")


def test_a_stop_hands_runs_that_never_started_back_to_the_database_for_the_next_leader(blocked, make_job, tmp_path):
    marker = tmp_path / "started"
    waiting = run_now(
        blocked.dispatcher,
        make_job(
            name="waits", lost_policy="record", task="engine_tests.spins", kwargs={"seconds": 0, "marker": str(marker)}
        ),
    )
    left = blocked.dispatcher.drain(0.1, "The scheduler stopped (test).")
    assert waiting.pk not in [request.execution_id for request in left]  # not for the caller to mark lost
    blocked.dispatcher.writer.stop()
    row = Execution.objects.get(pk=waiting.pk)
    assert (row.status, row.worker, row.error) == ("scheduled", "", "")  # not lost: it never ran
    blocked.release()
    time.sleep(0.3)  # the freed worker must not start it
    assert not marker.exists()


def test_abandoning_stops_every_run_and_the_waiting_ones_never_start(blocked, make_job, tmp_path):
    # Self-fencing (liveness.py): cut off from the database for too long, a node stops all it runs.
    marker = tmp_path / "started"
    waiting = run_now(
        blocked.dispatcher, make_job(task="engine_tests.spins", kwargs={"seconds": 0, "marker": str(marker)})
    )
    left = blocked.dispatcher.abandon("Lost: cut off (test).")
    assert left == []  # the blocker was Python code: interrupted
    rows = wait_for(lambda: finished(blocked.run, waiting), what="both runs recorded")
    assert [(row.status, row.error) for row in rows] == [("lost", "Lost: cut off (test).")] * 2
    assert Execution.objects.get(pk=waiting.pk).started_at is None
    time.sleep(0.2)
    assert not marker.exists()


def test_abandoning_answers_the_runs_it_could_not_stop(make_dispatcher, make_job, tmp_path):
    dispatcher = make_dispatcher(1)
    marker = tmp_path / "started"
    run = run_now(dispatcher, make_job(task="engine_tests.sleeps_in_c", kwargs={"seconds": 3, "marker": str(marker)}))
    wait_for(marker.exists, what="the run to start")
    assert [request.execution_id for request in dispatcher.abandon("Lost: cut off (test).")] == [run.pk]


def test_a_run_whose_owner_lost_the_tasks_permission_fails_without_running(make_dispatcher, owner, tmp_path):
    from tests.conftest import grant

    marker = tmp_path / "ran"
    allowed = grant(owner, "scheduler_app.use_file_tasks")
    job = services.job_create(
        name="guarded", task="engine_tests.guarded", owner=allowed, kwargs={"marker": str(marker)}, triggers=[]
    )
    allowed.user_permissions.clear()  # an admin took the right away after the job was saved
    dispatcher = make_dispatcher(1)
    execution = run_now(dispatcher, job)
    [row] = wait_for(lambda: finished(execution), what="the refused run to be recorded")
    assert row.status == "failed"
    assert "may no longer schedule engine_tests.guarded" in row.error
    assert not marker.exists()
