"""Celery workers that die: a real runscheduler, real workers killed with `kill -9`, a real Redis.

What must hold (issue 9): the row of a run whose worker died becomes `lost` within a bound
and is retried per the job's policy, later occurrences run again (not `skipped` behind a
row that stays `running`), a redelivered message of a recovered row runs nothing, and a
queue_one job whose workers are absent does not pile up rows.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import transaction
from kombu import Connection

from scheduler_app import services
from scheduler_app.engine import recovery
from scheduler_app.models import Execution
from tests.process.celery_workers import CeleryWorkers
from tests.process.harness import PROCESS, every, utcnow

pytestmark = PROCESS

BROKER = "redis://127.0.0.1:6379/12"  # these tests' own Redis database
LOST_SECONDS = 5  # SCHEDULER_CELERY_LOST_SECONDS for the scheduler under test (its minimum)
SCHEDULER_ENV = {"CELERY_BROKER_URL": BROKER, "SCHEDULER_CELERY_LOST_SECONDS": str(LOST_SECONDS)}


@pytest.fixture
def workers(schedulers):
    harness = CeleryWorkers(schedulers, BROKER, empty=True)
    try:
        yield harness
    finally:
        harness.stop_all()


def naps(schedulers, label: str) -> list[int]:
    """The pids noted by tests.nap_noting_pid runs with this label, oldest first."""
    if not schedulers.pid_dir.exists():
        return []
    notes = sorted(schedulers.pid_dir.glob(f"{label}-*"), key=lambda path: int(path.name.split("-")[-2]))
    return [int(path.read_text()) for path in notes]


def napping_job(name: str, *, seconds: float):
    # Every 3 s, a run of `seconds`, overlap `skip` (the default): while a row stays
    # `running`, every later occurrence is skipped.
    return every(
        name,
        3,
        task="tests.nap_noting_pid",
        kwargs={"seconds": seconds, "label": name},
        executor="celery",
        max_retries=1,
        retry_backoff=1,
    )


def assert_retried_and_runs_again(schedulers, job, lost: Execution, *, timeout: float) -> None:
    retry = schedulers.wait_for(
        lambda: Execution.objects.filter(
            job=job, attempt__gt=1, scheduled_for=lost.scheduled_for, status="succeeded"
        ).first(),
        timeout=timeout,
        what="the lost run's retry to succeed on a worker",
    )
    assert retry.reason in ("retry", "recovery")
    assert retry.worker.startswith("celery@")
    later = schedulers.wait_for(
        lambda: Execution.objects.filter(
            job=job, reason="schedule", scheduled_for__gt=lost.finished_at, status="succeeded"
        ).first(),
        timeout=timeout,
        what="a later occurrence to run (not be skipped)",
    )
    assert later.attempt == 1
    # One row per occurrence and attempt: the lost one, its retry, nothing else for it.
    assert sorted(
        Execution.objects.filter(job=job, scheduled_for=lost.scheduled_for).values_list("status", flat=True)
    ) == ["lost", "succeeded"]


def test_a_killed_pool_process_is_recorded_lost_at_once_retried_and_its_requeued_message_runs_nothing(
    schedulers, workers
):
    job = napping_job("nap-in-a-pool-process", seconds=5)
    worker = workers.start()
    # The scheduler's own check would take a minute: only the worker can be this quick.
    schedulers.start_leader(env={**SCHEDULER_ENV, "SCHEDULER_CELERY_LOST_SECONDS": "60"})
    row = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="running").first(), timeout=30, what="a run on the worker"
    )
    pid = schedulers.wait_for(lambda: naps(schedulers, job.name), timeout=10, what="the run's pid note")[0]
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    lost = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=row.pk, status="lost").first(),
        timeout=LOST_SECONDS + 10,
        what="the run to be recorded lost",
    )
    took = time.monotonic() - killed
    print(f"pool process kill -9 -> lost row: {took:.2f}s")
    # The worker's main process notices a dead pool process at once, or at its pool's next
    # check (billiard's maintain_pool, every 5 s) when the exit status was not ready yet.
    assert took < 7, f"the worker's main process saw its pool process die; recording that took {took:.1f}s"
    assert lost.error.startswith("Lost: the Celery worker process running it died (Worker exited prematurely")
    assert lost.started_at == row.started_at
    # reject_on_worker_lost requeued the message; the worker took it again and ran nothing.
    workers.wait_log(worker, f"execution {row.pk} is not queued any more", timeout=15)
    assert_retried_and_runs_again(schedulers, job, lost, timeout=40)
    lost.refresh_from_db()
    assert (lost.status, lost.started_at) == ("lost", row.started_at)


def test_a_killed_worker_is_recorded_lost_within_the_bound_retried_and_its_redelivered_message_runs_nothing(
    schedulers, workers
):
    # Runs of 7 s outlast SCHEDULER_CELERY_LOST_SECONDS: only the heartbeat keeps them alive.
    job = napping_job("nap-on-a-dying-worker", seconds=7)
    first = workers.start()
    schedulers.start_leader(env=SCHEDULER_ENV)
    row = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="running").first(), timeout=30, what="a run on the worker"
    )
    beating = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=row.pk, heartbeat_at__gt=row.started_at + timedelta(seconds=1)).first(),
        timeout=10,
        what="the worker to beat the run's heartbeat",
    )
    assert beating.status == "running"
    first.kill_whole()
    killed, killed_at = time.monotonic(), utcnow()

    lost = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=row.pk, status="lost").first(),
        timeout=LOST_SECONDS + 15,
        what="the run to be recorded lost",
    )
    took = time.monotonic() - killed
    print(f"whole worker kill -9 -> lost row: {took:.2f}s (SCHEDULER_CELERY_LOST_SECONDS={LOST_SECONDS})")
    # The threshold from the last beat (at most 2 s before the kill), plus one check (every
    # fifth of the threshold, at least 1 s), plus slack for the loop's rounds on a busy machine.
    assert took <= LOST_SECONDS + max(LOST_SECONDS / 5, 1) + 3, f"recording the dead worker's run lost took {took:.1f}s"
    assert lost.error == (
        f"Lost: its Celery worker stopped sending heartbeats for more than {LOST_SECONDS}s "
        "(SCHEDULER_CELERY_LOST_SECONDS)."
    )
    assert lost.finished_at > killed_at

    # The dead worker never acknowledged its message: Redis gives it back after the
    # visibility timeout, here at once, as kombu's sweep does it (restore_by_tag).
    with Connection(BROKER) as connection:
        channel = connection.default_channel
        unacked = channel.client.hgetall(channel.unacked_key)
        tags = [tag for tag, value in unacked.items() if json.loads(value)[0]["headers"]["id"] == row.task_id]
        assert len(tags) == 1, f"the dead worker's unacknowledged message of {row.task_id}: {list(unacked.values())}"
        channel.qos.restore_by_tag(tags[0])
    second = workers.start()
    workers.wait_log(second, f"execution {row.pk} is not queued any more", timeout=30)
    assert_retried_and_runs_again(schedulers, job, lost, timeout=60)
    lost.refresh_from_db()
    assert (lost.status, lost.started_at, lost.worker) == ("lost", row.started_at, row.worker)


def test_a_run_recorded_lost_while_its_worker_lives_is_stopped_there(schedulers, workers):
    busy = services.job_create(name="busy-then-lost", task="tests.busy", kwargs={"seconds": 60}, executor="celery")
    after = services.job_create(name="after-the-lost-one", task="tempora.noop", executor="celery")
    worker = workers.start(concurrency=1)
    schedulers.start_leader(env=SCHEDULER_ENV)
    run = services.job_run_now(job=busy)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists(),
        timeout=30,
        what="the run to be running on the worker",
    )
    # What the leader does when a live worker's heartbeats could not get through for the
    # whole threshold (a database outage, a body holding the GIL).
    with transaction.atomic():
        recovery.mark_lost(Execution.objects.filter(pk=run.pk), now=utcnow(), why="Lost: no heartbeat.")
    workers.wait_log(
        worker, f"execution {run.pk} is lost in the database, no longer running here: stopping it", timeout=10
    )
    # The only pool process is free again long before the 60 s body would have ended.
    next_run = services.job_run_now(job=after)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=next_run.pk, status="succeeded").exists(),
        timeout=20,
        what="the next run to get the worker the lost one held",
    )
    assert Execution.objects.get(pk=run.pk).status == "lost"


def test_a_queue_one_job_without_workers_waits_with_one_queued_and_one_scheduled_row(schedulers, workers):
    schedulers.start_leader(env=SCHEDULER_ENV)  # and no worker at all
    # Created once the leader runs: occurrences due together in one pass (a start-up backlog)
    # would all wait behind the first, as a backlog does.
    job = every("queue-one-no-worker", 2, executor="celery", overlap_policy="queue_one")
    schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="skipped").count() >= 2,
        timeout=30,
        what="occurrences past the cap to be skipped",
    )

    def capped() -> bool:
        rows = Execution.objects.filter(job=job)
        counts = {status: rows.filter(status=status).count() for status in ("queued", "scheduled")}
        return counts == {"queued": 1, "scheduled": 1}

    schedulers.stays(capped, seconds=5, what="one queued and one scheduled row")
    # A worker that comes up runs them one after the other.
    workers.start()
    schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="succeeded").count() >= 2,
        timeout=30,
        what="the waiting runs to run",
    )
