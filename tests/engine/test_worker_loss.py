"""Celery runs whose worker died, found by their heartbeat, with the clock passed in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.engine import worker_run
from scheduler_app.engine.worker_loss import GRACE_SECONDS, WorkerLossCheck
from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db
LOST = 30


@pytest.fixture
def job(make_job):
    return make_job(name="on-a-worker", executor="celery", max_retries=1, retry_backoff=10)


@pytest.fixture
def celery_run(job, make_execution, now):
    """celery_run(beat_seconds_ago): a run a worker claimed, last stamped that long before now."""

    made = []

    def make(beat_seconds_ago: float, **fields):
        fields.setdefault("status", "running")
        made.append(1)  # one occurrence each, a minute apart
        row = make_execution(
            job,
            worker="celery@host",
            started_at=now - timedelta(seconds=beat_seconds_ago + 60),
            heartbeat_at=now - timedelta(seconds=beat_seconds_ago),
            scheduled_for=now - timedelta(minutes=len(made)),
            **fields,
        )
        if row.status != "queued":
            Execution.objects.filter(pk=row.pk).update(task_id=f"tempora-{row.pk}")
        return row

    return make


def watching(now) -> WorkerLossCheck:
    """A check that has watched for longer than its grace, as on a leader that runs for a while."""
    check = WorkerLossCheck(lost_seconds=LOST)
    start = now - timedelta(seconds=GRACE_SECONDS + 1)
    at = start
    while at < now - check.every:
        check.check(at)
        at += check.every
    return check


def test_a_running_celery_run_with_a_stale_heartbeat_is_lost_and_retried(celery_run, now):
    run = celery_run(LOST + 1)
    assert watching(now).check(now) == 1
    run.refresh_from_db()
    assert (run.status, run.finished_at) == ("lost", now)
    assert run.error == (
        f"Lost: its Celery worker stopped sending heartbeats for more than {LOST}s (SCHEDULER_CELERY_LOST_SECONDS)."
    )
    retry = Execution.objects.get(job=run.job, attempt=2)
    assert retry.status == "scheduled" and retry.scheduled_for == run.scheduled_for


def test_a_recent_heartbeat_keeps_a_long_run_alive(celery_run, now):
    run = celery_run(LOST - 1)
    assert watching(now).check(now) == 0
    run.refresh_from_db()
    assert run.status == "running"


def test_thread_runs_queued_rows_and_runs_without_a_heartbeat_are_left_alone(job, celery_run, make_execution, now):
    thread_run = make_execution(job, worker="host:1:node", started_at=now - timedelta(hours=1))  # recovery.py's
    queued = celery_run(LOST + 1, status="queued")  # waits in the broker for a worker, maybe for long
    old_worker = make_execution(
        job,
        worker="celery@old",
        task_id="tempora-x",
        started_at=now - timedelta(hours=1),
        scheduled_for=now - timedelta(hours=1),
    )
    assert watching(now).check(now) == 0
    assert set(
        Execution.objects.filter(pk__in=[thread_run.pk, queued.pk, old_worker.pk]).values_list("status", flat=True)
    ) == {"running", "queued"}


def test_nothing_is_declared_before_the_grace_after_a_gap(celery_run, now):
    run = celery_run(LOST + 10)
    check = WorkerLossCheck(lost_seconds=5)  # checks every second
    assert check.check(now) == 0  # just took the lead: workers may have been unable to write
    assert check.check(now + timedelta(seconds=GRACE_SECONDS - 1)) == 0
    assert check.check(now + timedelta(seconds=GRACE_SECONDS)) == 1
    run.refresh_from_db()
    assert run.status == "lost"


def test_a_gap_in_the_checks_starts_the_grace_again(celery_run, now):
    check = watching(now)
    later = now + timedelta(minutes=2)  # the database was away meanwhile, for the workers too
    run = celery_run(LOST + 10)
    Execution.objects.filter(pk=run.pk).update(heartbeat_at=later - timedelta(seconds=LOST + 10))
    assert check.check(later) == 0
    assert check.check(later + timedelta(seconds=GRACE_SECONDS)) == 1


def test_the_worker_beats_its_runs_and_stops_those_recovered_or_asked_to_cancel(job, celery_run, now, monkeypatch):
    beating, recovered, cancelled = celery_run(40), celery_run(40), celery_run(40)
    Execution.objects.filter(pk=recovered.pk).update(status="lost")
    Execution.objects.filter(pk=cancelled.pk).update(cancel_requested_at=now)
    monkeypatch.setattr(worker_run, "_last_beat", 0.0)
    ids = [beating.pk, recovered.pk, cancelled.pk]

    assert sorted(worker_run._to_stop(ids)) == sorted([recovered.pk, cancelled.pk])
    beats = dict(Execution.objects.filter(pk__in=ids).values_list("pk", "heartbeat_at"))
    assert beats[beating.pk] > now and beats[cancelled.pk] > now  # one UPDATE, for the running ones
    assert beats[recovered.pk] == now - timedelta(seconds=40)
