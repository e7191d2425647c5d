"""One job in each state (Job.schedule_state), as a team would reach it, for the tests of every
interface that shows states: the model, the console, both APIs and the admin.

Every case is built at NOW through the services, then time moves on as it would: a one-off
fires and `next_run_at` is left as the scheduler left it (the stale value pages used to show).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler_app import services
from scheduler_app.models import Execution, Job, Trigger

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
BEFORE = NOW - timedelta(days=3)


def _ran(job: Job, at: datetime, *, reason: str = "schedule") -> None:
    Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=at,
        run_after=at,
        started_at=at,
        finished_at=at + timedelta(seconds=1),
        status="succeeded",
        reason=reason,
    )
    Job.objects.filter(pk=job.pk).update(run_count=job.run_count + 1, last_status="succeeded", last_run_at=at)


def build(owner) -> dict[str, Job]:
    """{case name: job}; the case names are the states they end in, with a suffix when several do."""

    def make(name: str, triggers: list, **fields) -> Job:
        return services.job_create(
            name=name, task="tempora.sample_job", owner=owner, triggers=triggers, now=BEFORE, **fields
        )

    cron = [{"kind": "cron", "cron_expression": "*/5 * * * *"}]
    jobs = {
        "scheduled": make("every-five-minutes", cron),
        "not_started": make("starts-tomorrow", cron, start_at=NOW + timedelta(days=1)),
        "paused": make("paused-one", cron, paused=True),
        "no_schedule": make("by-hand-only", []),
        "finished-one-off-that-ran": make("one-off-that-ran", [{"kind": "once", "run_at": NOW - timedelta(hours=1)}]),
        "finished-one-off-that-passed": make(
            "one-off-passed", [{"kind": "once", "run_at": NOW - timedelta(minutes=1)}]
        ),
        "finished-max-runs": make("two-runs-only", cron, max_runs=2),
        "ended": make("window-closed", cron, start_at=BEFORE, end_at=NOW - timedelta(days=1)),
    }
    _ran(jobs["finished-one-off-that-ran"], NOW - timedelta(hours=1))
    for minutes in (10, 5):
        _ran(jobs["finished-max-runs"], NOW - timedelta(minutes=minutes))
    weekends = services.calendar_create(name="weekdays only", business_days_only=True, owner=owner)
    jobs["no_upcoming_run"] = make(
        "saturdays-on-weekdays", [{"kind": "cron", "cron_expression": "0 9 * * SAT", "calendar": weekends.pk}]
    )
    broken = make("corrupt-cron", cron)
    # A row changed outside the services (a hand-written migration, a database console).
    Trigger.objects.filter(job=broken).update(cron_expression="61 * * * *")
    jobs["schedule_error"] = broken
    # What the scheduler left behind: the time each one was last planned for, now past.
    for job in jobs.values():
        if job.next_run_at is not None:
            Job.objects.filter(pk=job.pk).update(next_run_at=NOW - timedelta(minutes=1))
    return {case: Job.objects.get(pk=job.pk) for case, job in jobs.items()}


def state_of(case: str) -> str:
    return case.partition("-")[0]


# What each state reads as on a page (English).
LABELS = {
    "scheduled": "Scheduled",
    "not_started": "Not yet started",
    "paused": "Paused",
    "no_schedule": "No schedule",
    "finished": "Finished",
    "ended": "Ended",
    "no_upcoming_run": "No upcoming run",
    "schedule_error": "Schedule cannot be computed",
}

WITHOUT_NEXT_RUN = [
    "no_schedule",
    "finished-one-off-that-ran",
    "finished-one-off-that-passed",
    "finished-max-runs",
    "ended",
    "no_upcoming_run",
    "schedule_error",
]
