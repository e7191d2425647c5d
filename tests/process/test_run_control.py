"""Timeouts, retries and a graceful stop, in a real scheduler process."""

from __future__ import annotations

from datetime import timedelta

from scheduler_app import services
from scheduler_app.models import Execution, SchedulerNode, SchedulerState
from tests.process.harness import PROCESS, every, free_port, process_gone, seconds

pytestmark = PROCESS


def _pids(schedulers, label: str) -> list[int]:
    """Pids a test task wrote (see jobs_for_tests): `<label>-child-*`, `<label>-grandchild-*`."""
    if not schedulers.pid_dir.exists():
        return []
    return [int(path.read_text()) for path in schedulers.pid_dir.glob(f"{label}-*")]


def test_a_job_past_its_timeout_is_killed_with_its_children_and_the_next_occurrence_runs(schedulers):
    # Every 3 s: the first child may wait for the forkserver to boot, and under the default
    # overlap policy an occurrence due while the killed run is still being reaped is skipped.
    job = every("spinner", 3, task="tests.spin_forever", kwargs={"label": "spin"}, timeout=1)
    schedulers.start_leader()

    rows = schedulers.wait_for(
        lambda: list(Execution.objects.filter(job=job, status="timed_out").order_by("scheduled_for")[:2])
        if Execution.objects.filter(job=job, status="timed_out").count() >= 2
        else None,
        timeout=12,
        what="two timed-out runs",
    )
    for row, limit in zip(rows, [4, 1.75], strict=True):
        # The first run's time includes booting the forkserver (the clock starts once the
        # child exists), if the scheduler's warm-up had not finished it yet.
        duration = seconds(row.duration)
        print(f"timed out after {duration:.2f}s (timeout 1s)")
        assert 1 <= duration <= limit
        assert "Timed out after 1s" in row.error
    # The slot was freed: the next occurrence ran instead of being skipped.
    assert rows[1].scheduled_for - rows[0].scheduled_for == timedelta(seconds=3)
    assert not Execution.objects.filter(job=job, status="skipped").exists()
    # Once nothing runs any more, no process a run started is left: children and grandchildren.
    services.job_pause(job=job)
    schedulers.wait_for(
        lambda: not Execution.objects.filter(job=job, status__in=Execution.ACTIVE).exists(),
        timeout=4,
        what="the last run to time out",
    )
    pids = _pids(schedulers, "spin")
    assert len(pids) >= 4  # a child and a grandchild per run
    schedulers.wait_for(
        lambda: all(process_gone(pid) for pid in pids),
        timeout=3,
        what="every timed-out run's process and grandchild killed",
    )
    job.refresh_from_db()
    assert job.failure_count >= 2 and job.last_status == "timed_out"


def test_retries_wait_their_backoff_and_the_last_failure_is_a_dead_letter(schedulers, settings):
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: every attempt fails at once
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["127.0.0.1"]  # here and in the scheduler: loopback is fenced off
    schedulers.start_leader(env={"TEMPORA_HTTP_ALLOW_HOSTS": "127.0.0.1"})
    job = services.job_create(
        name="flaky",
        task="tempora.http_request",
        kwargs={"url": url, "timeout": 2},
        max_retries=2,
        retry_backoff=1,
        triggers=[{"kind": "once", "delay_seconds": 1}],
    )
    attempts = schedulers.wait_for(
        lambda: list(Execution.objects.filter(job=job, status="failed").order_by("attempt"))
        if Execution.objects.filter(job=job, status="failed").count() == 3
        else None,
        timeout=12,
        what="three failed attempts",
    )
    assert [row.attempt for row in attempts] == [1, 2, 3]
    assert [row.reason for row in attempts] == ["schedule", "retry", "retry"]
    assert [row.dead_letter for row in attempts] == [False, False, True]
    assert len({row.scheduled_for for row in attempts}) == 1  # three attempts at one occurrence
    # retry_backoff × 2^(attempt-1), ±20 % jitter, counted from the failure.
    for failed, retry, backoff in [(attempts[0], attempts[1], 1), (attempts[1], attempts[2], 2)]:
        wait = seconds(retry.run_after - failed.finished_at)
        started_late = seconds(retry.started_at - retry.run_after)
        print(
            f"attempt {retry.attempt}: waited {wait:.2f}s (backoff {backoff}s), started {started_late:.3f}s after run_after"
        )
        assert 0.8 * backoff <= wait <= 1.2 * backoff
        assert 0 <= started_late <= 1  # the loop looks for waiting rows every half second
    assert all("Connection" in row.error or "refused" in row.error for row in attempts), attempts[0].error
    assert not Execution.objects.filter(job=job, attempt=4).exists()
    job.refresh_from_db()
    assert (job.run_count, job.failure_count, job.last_status) == (3, 3, "failed")


def test_sigterm_waits_for_the_drain_then_marks_running_runs_lost_and_stops_the_node(schedulers):
    in_thread = services.job_create(name="long-in-thread", task="tests.sleep", kwargs={"seconds": 60})
    in_child = services.job_create(
        name="long-in-child", task="tests.spin_forever", kwargs={"label": "drain"}, timeout=120
    )
    scheduler = schedulers.start_leader(drain=1)
    node = scheduler.node_name()
    runs = [services.job_run_now(job=in_thread), services.job_run_now(job=in_child)]
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk__in=[run.pk for run in runs], status="running").count() == 2
        and len(_pids(schedulers, "drain")) == 2,
        timeout=5,
        what="both long runs running",
    )

    scheduler.terminate()
    took = scheduler.wait_exit(10)
    print(f"SIGTERM with --drain 1 -> exited after {took:.2f}s")
    assert took <= 4
    assert scheduler.popen.returncode == 0

    for run in runs:
        run.refresh_from_db()
        assert run.status == "lost", (run.job_name, run.status, run.error)
        assert "The scheduler stopped (SIGTERM)" in run.error and "waited 1s" in run.error
        assert run.started_at is not None and run.finished_at is not None
    # The child run's process (and its grandchild) did not outlive the scheduler.
    schedulers.wait_for(
        lambda: all(process_gone(pid) for pid in _pids(schedulers, "drain")),
        timeout=3,
        what="the child run's processes killed",
    )
    stopped = SchedulerNode.objects.get(name=node)
    assert stopped.state == "stopped"
    assert SchedulerState.objects.get().leader == ""  # the lease was released, not left to expire


def test_cancelling_a_running_run_kills_its_process_within_a_round(schedulers):
    job = services.job_create(name="to-cancel", task="tests.spin_forever", kwargs={"label": "cancel"}, timeout=120)
    schedulers.start_leader()
    run = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists()
        and len(_pids(schedulers, "cancel")) == 2,
        timeout=8,
        what="the run to be running in its child process",
    )
    services.execution_cancel(execution=Execution.objects.get(pk=run.pk))
    cancelled = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="cancelled").first(),
        timeout=3,
        what="the scheduler to stop the run",
    )
    assert cancelled.error == "Cancelled (cancel requested); the process was killed."
    schedulers.wait_for(
        lambda: all(process_gone(pid) for pid in _pids(schedulers, "cancel")),
        timeout=3,
        what="the run's process and its child killed",
    )


def test_cancelling_a_run_in_a_thread_stops_it_and_it_ends_cancelled(schedulers):
    # It used to answer "cancel requested" and then record the run as succeeded.
    job = services.job_create(name="busy-in-thread", task="tests.busy", kwargs={"seconds": 30})
    schedulers.start_leader()
    run = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists(),
        timeout=8,
        what="the run to be running in a thread",
    )
    asked = services.execution_cancel(execution=Execution.objects.get(pk=run.pk))
    assert asked.status == "running" and asked.cancel_requested_at is not None
    cancelled = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status__in=Execution.FINISHED).first(),
        timeout=8,
        what="the scheduler to stop the thread run",
    )
    print(f"cancel asked -> stopped after {seconds(cancelled.finished_at - asked.cancel_requested_at):.2f}s")
    assert (cancelled.status, cancelled.error) == ("cancelled", "Cancelled (cancel requested); the run stopped.")
    assert seconds(cancelled.finished_at - asked.cancel_requested_at) < 5  # a round, the 2 s grace, a tick


def test_the_default_time_limit_stops_a_thread_run(schedulers):
    job = services.job_create(name="too-long", task="tests.busy", kwargs={"seconds": 30})
    schedulers.start_leader(env={"SCHEDULER_DEFAULT_TIMEOUT": "2"})
    run = services.job_run_now(job=job)
    row = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status__in=Execution.FINISHED).first(),
        timeout=10,
        what="the run to reach its time limit",
    )
    assert (row.status, row.error) == ("timed_out", "Timed out after 2s; the run was stopped.")
    assert 2 <= seconds(row.duration) < 4


def test_a_coroutine_function_runs_in_a_thread_and_in_a_child_process(schedulers):
    in_thread = services.job_create(name="async-thread", task="tests.async_nap", kwargs={"seconds": 0.2})
    in_child = services.job_create(name="async-child", task="tests.async_nap", kwargs={"seconds": 0.2}, timeout=30)
    timed_out = services.job_create(name="async-timeout", task="tests.async_nap", kwargs={"seconds": 30}, timeout=1)
    schedulers.start_leader()
    runs = [services.job_run_now(job=job) for job in (in_thread, in_child, timed_out)]

    def all_finished():
        rows = list(Execution.objects.filter(pk__in=[r.pk for r in runs], status__in=Execution.FINISHED).order_by("pk"))
        return rows if len(rows) == 3 else None

    rows = schedulers.wait_for(all_finished, timeout=15, what="the three coroutine runs")
    assert [(row.job_name, row.status, row.result) for row in rows] == [
        ("async-thread", "succeeded", {"napped": 0.2}),
        ("async-child", "succeeded", {"napped": 0.2}),
        ("async-timeout", "timed_out", None),
    ]
    assert all(seconds(row.duration) >= 0.2 for row in rows[:2])  # really awaited: they napped
