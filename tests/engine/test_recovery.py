"""Recovering what a dead scheduler node left behind, with the clock passed in."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from scheduler_app.engine import journal
from scheduler_app.engine.journal import Journal
from scheduler_app.engine.lease import NotLeading
from scheduler_app.engine.liveness import NodeLock
from scheduler_app.engine.recovery import recover
from scheduler_app.engine.runner import RunResult, child_name
from scheduler_app.models import Execution, SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db
LEASE = 10
DEAD = 60


@pytest.fixture
def make_node(now):
    def make(
        name: str, *, beat_seconds_ago: float, state: str = SchedulerNode.State.RUNNING, hostname: str = "host"
    ) -> SchedulerNode:
        at = now - timedelta(seconds=beat_seconds_ago)
        return SchedulerNode.objects.create(
            name=name, hostname=hostname, pid=1, started_at=at, last_beat_at=at, state=state
        )

    return make


@pytest.fixture
def dead(make_node):
    return make_node("host:101:dead", beat_seconds_ago=DEAD + 5)


@pytest.fixture
def live(make_node):
    return make_node("host:102:live", beat_seconds_ago=2)


@pytest.fixture
def job(make_job):
    return make_job(name="import-orders", max_retries=2, retry_backoff=30)


def recover_now(now, **options) -> int:
    return recover(now=now, lease_seconds=LEASE, dead_seconds=DEAD, me="host:103:me", **options)


def test_it_marks_a_node_without_a_recent_heartbeat_stopped(dead, now):
    recover_now(now)
    dead.refresh_from_db()
    assert dead.state == "stopped"


def test_it_leaves_a_node_with_a_recent_heartbeat_alone(live, now):
    recover_now(now)
    live.refresh_from_db()
    assert live.state == "running"


def test_it_marks_the_running_runs_of_a_dead_node_lost(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    assert recover_now(now) == 1
    run.refresh_from_db()
    assert (run.status, run.finished_at) == ("lost", now)


def test_it_marks_the_queued_runs_of_a_dead_node_lost(dead, job, make_execution, now):
    run = make_execution(job, status="queued", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_names_the_dead_node_in_the_error(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert dead.name in run.error
    assert run.error.startswith("Lost: its scheduler host:101:dead stopped sending heartbeats at")


def test_it_retries_a_lost_run_of_a_job_with_retries_left(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    retry = Execution.objects.get(job=job, attempt=2)
    assert (retry.status, retry.reason, retry.scheduled_for) == ("scheduled", "retry", run.scheduled_for)
    assert retry.run_after > now
    run.refresh_from_db()
    assert run.dead_letter is False


def test_it_makes_a_lost_run_without_retries_left_a_dead_letter(dead, make_job, make_execution, now):
    job = make_job(name="no-retries", max_retries=0)
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.dead_letter) == ("lost", True)
    assert not Execution.objects.filter(job=job, attempt=2).exists()


def test_it_counts_a_lost_run_as_a_failed_run_of_its_job(dead, job, make_execution, now):
    make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    job.refresh_from_db()
    assert (job.run_count, job.failure_count, job.last_status) == (1, 1, "lost")


def test_it_marks_a_lost_run_of_a_deleted_job_lost(dead, make_execution, now):
    run = make_execution(None, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_leaves_celery_runs_of_a_dead_node_to_the_broker(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name, task_id="tempora-1")
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_leaves_the_runs_of_a_live_node_alone(live, job, make_execution, now):
    run = make_execution(job, status="running", worker=live.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_leaves_finished_runs_of_a_dead_node_alone(dead, job, make_execution, now):
    run = make_execution(job, status="succeeded", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_it_never_recovers_itself(make_node, job, make_execution, now):
    me = make_node("host:103:me", beat_seconds_ago=DEAD + 5)
    run = make_execution(job, status="running", worker=me.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_recovers_a_dead_node_only_once(dead, job, make_execution, now):
    make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    assert recover_now(now + timedelta(seconds=1)) == 0
    assert Execution.objects.filter(job=job, attempt=2).count() == 1


# The job's lost policy ----------------------------------------------------------------------


def test_a_lost_run_of_a_record_job_is_never_run_again_even_with_retries(dead, make_job, make_execution, now):
    job = make_job(name="at-most-once", max_retries=3, lost_policy="record")
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.dead_letter) == ("lost", True)
    assert Execution.objects.filter(job=job).count() == 1


def test_a_lost_run_of_a_retry_job_without_retries_runs_once_more_at_once(dead, make_job, make_execution, now):
    job = make_job(name="at-least-once", max_retries=0, lost_policy="retry")
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    again = Execution.objects.get(job=job, attempt=2)
    assert (again.status, again.reason, again.scheduled_for, again.run_after) == (
        "scheduled",
        "recovery",
        run.scheduled_for,
        now,
    )


def test_a_lost_recovery_run_is_recorded_and_not_run_a_third_time(dead, make_job, make_execution, now):
    job = make_job(name="kills-its-scheduler", max_retries=0, lost_policy="retry")
    run = make_execution(job, status="running", worker=dead.name, attempt=2, reason="recovery")
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.dead_letter) == ("lost", True)
    assert not Execution.objects.filter(job=job, attempt=3).exists()


# The dead node's journal --------------------------------------------------------------------


@pytest.fixture
def journal_of(settings, tmp_path):
    """journal_of(node): the journal `node` wrote on this host."""
    settings.SCHEDULER_JOURNAL_DIR = tmp_path / "journal"
    return lambda node: Journal.open(node.name)


def test_a_run_the_journal_saw_finish_is_recorded_as_it_finished_not_lost(dead, job, journal_of, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    written = journal_of(dead)
    written.started(run.pk)
    ended = now - timedelta(seconds=12)
    written.finished(run.pk, RunResult("succeeded", ended - timedelta(seconds=1), ended, {"rows": 3}, "done\n"))
    assert recover_now(now) == 1
    run.refresh_from_db()
    assert (run.status, run.result, run.output, run.finished_at, run.worker) == (
        "succeeded",
        {"rows": 3},
        "done\n",
        ended,
        dead.name,
    )
    assert not Execution.objects.filter(job=job, attempt=2).exists()  # nothing runs again
    job.refresh_from_db()
    assert (job.run_count, job.failure_count, job.last_status) == (1, 0, "succeeded")


def test_a_failure_the_journal_saw_is_retried_as_any_failure(dead, job, journal_of, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    journal_of(dead).finished(run.pk, RunResult("failed", now, now, error="ValueError: bad row"))
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "ValueError: bad row")
    assert Execution.objects.get(job=job, attempt=2).reason == "retry"


def test_a_queued_run_the_journal_never_saw_start_is_planned_again(dead, make_job, journal_of, make_execution, now):
    # Queued in the dead leader's look-ahead: no body ran, so even a record job runs it.
    job = make_job(name="look-ahead", max_retries=0, lost_policy="record")
    run = make_execution(job, status="queued", worker=dead.name, scheduled_for=now - timedelta(seconds=14))
    journal_of(dead).started(run.pk + 1)  # another run
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.worker, run.queued_at, run.error) == ("scheduled", "", None, "")
    assert list(Execution.objects.claimable(now).values_list("pk", flat=True)) == [run.pk]
    assert Execution.objects.filter(job=job).count() == 1


def test_a_never_started_run_past_its_grace_time_is_recorded_missed(dead, make_job, journal_of, make_execution, now):
    job = make_job(name="short-grace", misfire_grace_time=10, catch_up="none")
    run = make_execution(job, status="queued", worker=dead.name, scheduled_for=now - timedelta(seconds=15))
    journal_of(dead)
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.finished_at) == ("missed", now)
    assert "15s late, past the 10s grace time" in run.error


def test_a_never_started_run_someone_asked_to_cancel_is_cancelled(dead, job, journal_of, make_execution, now):
    run = make_execution(job, status="queued", worker=dead.name, cancel_requested_at=now - timedelta(seconds=20))
    journal_of(dead)
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.error) == ("cancelled", "Cancelled before it started.")


def test_a_queued_run_the_journal_saw_start_is_lost(dead, make_job, journal_of, make_execution, now):
    # Its "running" report was still in the writer's queue at the kill: the body did start.
    job = make_job(name="started", max_retries=0, lost_policy="record")
    run = make_execution(job, status="queued", worker=dead.name)
    journal_of(dead).started(run.pk)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_without_its_journal_a_queued_run_of_a_dead_node_is_lost(
    dead, make_job, settings, tmp_path, make_execution, now
):
    settings.SCHEDULER_JOURNAL_DIR = tmp_path / "journal"  # the dead node ran on another host
    job = make_job(name="elsewhere", max_retries=0, lost_policy="record")
    run = make_execution(job, status="queued", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_a_journal_from_before_a_reboot_proves_no_run_never_started(
    dead, job, journal_of, make_execution, monkeypatch, now
):
    run = make_execution(job, status="queued", worker=dead.name)
    journal_of(dead)
    monkeypatch.setattr(journal, "boot_id", lambda: "after-the-crash")
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_the_dead_nodes_journal_is_deleted_once_its_runs_are_settled(
    dead, job, journal_of, make_execution, now, django_capture_on_commit_callbacks
):
    run = make_execution(job, status="running", worker=dead.name)
    journal_of(dead).finished(run.pk, RunResult("succeeded", now, now))
    with django_capture_on_commit_callbacks(execute=True):
        recover_now(now)
    assert journal.read(dead.name) is None


# Only the truly dead -------------------------------------------------------------------------


def test_it_leaves_alone_a_node_silent_beyond_the_lease_but_not_the_dead_threshold(make_node, job, make_execution, now):
    # Cut off from the database for 30 s (an outage, a proxy cut): slow, not dead.
    cut_off = make_node("elsewhere:104:cut-off", beat_seconds_ago=30)
    run = make_execution(job, status="running", worker=cut_off.name)
    assert recover_now(now) == 0
    cut_off.refresh_from_db()
    run.refresh_from_db()
    assert (cut_off.state, run.status) == ("running", "running")


def test_it_leaves_alone_a_silent_node_that_still_holds_a_valid_lease(make_node, now):
    leader = make_node("host:105:leader", beat_seconds_ago=DEAD + 5)
    SchedulerState.objects.update_or_create(
        pk=SchedulerState.SINGLETON_ID, defaults={"leader": leader.name, "lease_expires_at": now + timedelta(seconds=1)}
    )
    recover_now(now)
    leader.refresh_from_db()
    assert leader.state == "running"


@pytest.fixture
def lock_dir(settings, tmp_path):
    settings.TEMPORA = {**settings.TEMPORA, "VAR_DIR": tmp_path}
    return tmp_path / "nodes"


def test_it_recovers_at_once_a_node_of_this_host_whose_lock_is_free(lock_dir, make_node, job, make_execution, now):
    # `kill -9` a second ago: the heartbeat is fresh, but the kernel dropped the process's lock.
    killed = make_node(f"{socket.gethostname()}:106:killed", beat_seconds_ago=1, hostname=socket.gethostname())
    lock_dir.mkdir()
    (lock_dir / f"{killed.name}.lock").touch()
    run = make_execution(job, status="running", worker=killed.name)
    assert recover_now(now) == 1
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_leaves_alone_a_node_of_this_host_that_holds_its_lock(lock_dir, make_node, job, make_execution, now):
    name = f"{socket.gethostname()}:107:alive"
    lock = NodeLock(name)
    lock.acquire()
    try:
        alive = make_node(name, beat_seconds_ago=30, hostname=socket.gethostname())
        run = make_execution(job, status="running", worker=alive.name)
        assert recover_now(now) == 0
        run.refresh_from_db()
        assert run.status == "running"
    finally:
        lock.release()


def test_a_lock_file_proves_nothing_about_a_node_of_another_host(lock_dir, make_node, job, make_execution, now):
    other = make_node("elsewhere:108:other", beat_seconds_ago=1, hostname="elsewhere")
    lock_dir.mkdir()
    (lock_dir / f"{other.name}.lock").touch()
    assert recover_now(now) == 0


def test_a_recovery_by_a_node_that_lost_the_lease_commits_nothing(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)

    def deposed() -> None:
        raise NotLeading("deposed")

    assert recover_now(now, fence=deposed) == 0
    run.refresh_from_db()
    dead.refresh_from_db()
    assert (run.status, dead.state) == ("running", "running")


# Children of a dead node ---------------------------------------------------------------------


def _child_named(name: str) -> subprocess.Popen:
    """A process leading its own group under `name`, as a run's child process does."""
    code = f"import ctypes, time; ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 10
    while open(f"/proc/{process.pid}/comm").read().strip() != name:
        assert time.monotonic() < deadline, "the child never took its name"
        time.sleep(0.01)
    return process


def test_it_kills_the_process_group_of_a_dead_nodes_child_run_before_marking_it_lost(
    lock_dir, make_node, job, make_execution, now
):
    killed = make_node(f"{socket.gethostname()}:109:killed", beat_seconds_ago=DEAD + 5, hostname=socket.gethostname())
    run = make_execution(job, status="running", worker=killed.name)
    child = _child_named(child_name(run.pk))
    Execution.objects.filter(pk=run.pk).update(process_group=child.pid)
    try:
        recover_now(now)
        assert child.wait(5) == -9
    finally:
        child.kill()
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_never_signals_a_recorded_group_that_is_no_longer_the_runs(lock_dir, make_node, job, make_execution, now):
    killed = make_node(f"{socket.gethostname()}:110:killed", beat_seconds_ago=DEAD + 5, hostname=socket.gethostname())
    run = make_execution(job, status="running", worker=killed.name)
    stranger = _child_named("not-tempora")  # the pid was reused since
    Execution.objects.filter(pk=run.pk).update(process_group=stranger.pid)
    try:
        recover_now(now)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
