"""A running scheduler picks up changes written through the services within about a second."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django_apscheduler.models import DjangoJob

from scheduler_app import changes, services
from scheduler_app.models import Execution, Job
from tests.process.harness import PROCESS, every, seconds, utcnow

pytestmark = PROCESS

SECOND = timedelta(seconds=1)


def _finished(job: Job, **filters) -> Execution | None:
    return (
        Execution.objects.filter(job=job, status=Execution.Status.SUCCEEDED, **filters)
        .order_by("scheduled_for")
        .first()
    )


def test_it_fires_pauses_runs_now_resumes_and_deletes_a_job_while_running(schedulers):
    schedulers.start_leader()

    created_at = utcnow()
    job = every("tick", 1)
    first = schedulers.wait_for(lambda: _finished(job), timeout=5, what="the new job's first run")
    print(f"created -> first run started: {seconds(first.started_at - created_at):.3f}s")
    assert first.started_at - created_at <= 2 * SECOND

    # Pause: rows recorded before the pause (the pass looks 0.5 s ahead) may still run;
    # nothing scheduled more than a second after it does.
    paused_at = utcnow()
    services.job_pause(job=job)
    schedulers.wait_for(
        lambda: not DjangoJob.objects.filter(id=str(job.pk)).exists(), timeout=1.5, what="the paused job unscheduled"
    )
    schedulers.stays(
        lambda: not Execution.objects.filter(job=job, scheduled_for__gt=paused_at + SECOND).exists(),
        seconds=2.5,
        what="no runs after the pause",
    )

    # Run now works on a paused job: it is the user's explicit request.
    requested = services.job_run_now(job=job)
    manual = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=requested.pk, status=Execution.Status.SUCCEEDED).first(),
        timeout=3,
        what="the run-now request to finish",
    )
    print(f"run now requested -> started: {seconds(manual.started_at - requested.created_at):.3f}s")
    assert manual.started_at - requested.created_at <= 1.25 * SECOND
    assert manual.reason == Execution.Reason.MANUAL
    assert not Execution.objects.filter(job=job, reason="schedule", scheduled_for__gt=paused_at + SECOND).exists()

    resumed_at = utcnow()
    services.job_resume(job=job)
    again = schedulers.wait_for(
        lambda: _finished(job, reason="schedule", scheduled_for__gt=resumed_at), timeout=4, what="a run after resuming"
    )
    print(f"resumed -> next run started: {seconds(again.started_at - resumed_at):.3f}s")
    assert again.started_at - resumed_at <= 2 * SECOND
    # Resuming plans from now: the occurrences while paused are not caught up.
    assert not Execution.objects.filter(job=job, reason="catch_up").exists()

    name, deleted_at = job.name, utcnow()
    services.job_delete(job=job)
    schedulers.stays(
        lambda: not Execution.objects.filter(job_name=name, scheduled_for__gt=deleted_at + SECOND).exists(),
        seconds=3,
        what="no runs after the delete",
    )
    # History outlives the job.
    assert Execution.objects.filter(job_name=name, job__isnull=True, status="succeeded").count() >= 3


def test_it_replans_an_edited_schedule_within_a_second(schedulers):
    job = every("hourly-ish", 60)
    schedulers.start_leader()
    schedulers.wait_for(lambda: DjangoJob.objects.filter(id=str(job.pk)).exists(), timeout=2, what="the job scheduled")

    edited_at = utcnow()
    services.job_update(job=job, triggers=[{"kind": "interval", "interval_seconds": 1}])
    first = schedulers.wait_for(lambda: _finished(job), timeout=4, what="a run on the edited schedule")
    print(f"edited 60s -> 1s, first run started after: {seconds(first.started_at - edited_at):.3f}s")
    assert first.started_at - edited_at <= 2 * SECOND
    second = schedulers.wait_for(
        lambda: _finished(job, scheduled_for__gt=first.scheduled_for), timeout=3, what="a second run a second later"
    )
    assert second.scheduled_for - first.scheduled_for == SECOND


def test_it_stops_jobs_paused_by_a_bulk_update_that_stamps_updated_at(schedulers):
    jobs = [every(f"bulk-{n}", 1) for n in range(3)]
    schedulers.start_leader()
    schedulers.wait_for(lambda: all(_finished(job) for job in jobs), timeout=5, what="every job to run once")

    paused_at = utcnow()
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(paused=True, updated_at=paused_at)
    schedulers.stays(
        lambda: not Execution.objects.filter(job__in=jobs, scheduled_for__gt=paused_at + SECOND).exists(),
        seconds=3,
        what="no runs after the bulk pause",
    )
    assert not DjangoJob.objects.filter(id__in=[str(job.pk) for job in jobs]).exists()


def test_a_change_wakes_the_scheduler_without_waiting_for_its_poll(schedulers, settings):
    """Polling every 30 s, the scheduler still applies each change within a second: the service's
    commit wakes it (PostgreSQL: NOTIFY; SQLite: a datagram to its socket in VAR_DIR/wake).
    Without the wake-up each step waited for the poll."""
    settings.TEMPORA = {**getattr(settings, "TEMPORA", {}), "VAR_DIR": str(schedulers.var_dir)}  # as the scheduler's
    leader = schedulers.start_leader(args=("--poll", "30"))
    schedulers.wait_for(_listening, timeout=10, what="the scheduler to listen")
    job = every("tick", 1)
    schedulers.wait_for(lambda: DjangoJob.objects.filter(id=str(job.pk)).exists(), timeout=1, what="scheduled")
    services.job_pause(job=job)
    schedulers.wait_for(
        lambda: not DjangoJob.objects.filter(id=str(job.pk)).exists(), timeout=1, what="the paused job unscheduled"
    )
    requested = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=requested.pk, status=Execution.Status.SUCCEEDED).exists(),
        timeout=1.5,
        what="the run-now request to finish (started as soon as the job's run in flight ended)",
    )
    assert "not listening" not in leader.log() and "no wake-up socket" not in leader.log()


def _listening() -> bool:
    """Whether a scheduler listens: a session of this database sits on its LISTEN (its last
    statement), or a socket waits in the wake directory."""
    if connection.vendor != "postgresql":
        return any(changes.wake_directory().glob("*.sock"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            [f"LISTEN {changes.CHANNEL}"],
        )
        return cursor.fetchone()[0] > 0
