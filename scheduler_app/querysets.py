"""The queries the scheduler and the interfaces share, named after what they ask."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.apps import apps
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Case, Count, Exists, ExpressionWrapper, OuterRef, Prefetch, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from scheduler_app import permissions, triggers

# How many finished runs a job list shows per job ("last results").
RECENT_RESULTS = 5


def _scoped(queryset: models.QuerySet, scope: Q | None) -> models.QuerySet:
    if scope is None:
        return queryset
    return queryset.none() if scope is permissions.NOTHING else queryset.filter(scope)


class CalendarQuerySet(models.QuerySet):
    def visible_to(self, user) -> CalendarQuerySet:
        """Their own and the shared ones (no owner); every one with view_calendar."""
        return _scoped(self, permissions.calendar_scope(user))

    def editable_by(self, user) -> CalendarQuerySet:
        """Their own; every one (shared ones included) with change_calendar."""
        return _scoped(self, permissions.calendar_scope(user, change=True))


def recent_results(count: int = RECENT_RESULTS) -> Prefetch:
    """Each job's last `count` finished runs, newest first, as `job.recent_results`: one query
    for a whole page of jobs (a window over the runs), whatever their history's length."""
    Execution = apps.get_model("scheduler_app", "Execution")  # models.py imports this module
    runs = (
        Execution.objects.filter(status__in=Execution.FINISHED)
        .order_by("-scheduled_for", "-id")
        .only("id", "job_id", "status", "reason", "attempt", "scheduled_for", "started_at", "finished_at")
    )
    return Prefetch("executions", queryset=runs[:count], to_attr="recent_results")


class JobQuerySet(models.QuerySet):
    def with_recent_results(self, count: int = RECENT_RESULTS) -> JobQuerySet:
        """See recent_results: what the console's jobs list and the API's jobs show."""
        return self.prefetch_related(recent_results(count))

    def active(self) -> JobQuerySet:
        return self.filter(paused=False)

    def due(self, now: datetime) -> JobQuerySet:
        """Unpaused jobs whose next run has come (index job_next_run_active)."""
        return self.filter(paused=False, next_run_at__lte=now)

    def changed_since(self, since: datetime) -> JobQuerySet:
        """Jobs that services wrote since `since` (index job_updated_at): the sync's question.

        Unordered: the default ordering by name made SQLite walk the name index through every
        row (30 ms at 100,000 jobs, twice a second) instead of seeking the few changed ones.
        """
        return self.filter(updated_at__gt=since).order_by()

    def with_tag(self, tag: str) -> JobQuerySet:
        # Tags are validated slugs stored as a JSON list, so the quoted tag appears in the
        # JSON text only as a whole element. This works the same on SQLite and PostgreSQL,
        # where JSON containment lookups differ.
        return self.filter(tags__icontains=json.dumps(tag.strip().lower()))

    def visible_to(self, user) -> JobQuerySet:
        """Their own jobs; every job with view_job; none for anonymous visitors."""
        return _scoped(self, permissions.job_scope(user, permissions.JobAction.VIEW))

    def allowing(self, user, action: permissions.JobAction) -> JobQuerySet:
        """The jobs `user` may do `action` to (scheduler_app/permissions.py)."""
        return _scoped(self, permissions.job_scope(user, action))

    def in_group(self, group: str) -> JobQuerySet:
        return self.filter(group=group)

    def in_state(self, state: str, *, now: datetime | None = None) -> JobQuerySet:
        """Jobs whose Job.schedule_state is `state` at `now`, decided by the database where it can.

        Job.schedule_state is the definition; this is the same rules as a query (tests check the
        two against each other over every kind of job, tests/test_job_state.py):
        - paused, no_schedule, ended by end_at, finished by max_runs: columns and counts only;
        - scheduled / not_started for a job that surely has a next run: no end_at, a zone that
          exists, every trigger computable, and one that fires forever (a cron expression known
          to fire, an interval, a one-off still ahead, none on a calendar), start_at before 9000;
        - finished for a job of one-off triggers all more than a day past (beyond any jitter).
        Python computes only what is left: jobs with an end_at still ahead, triggers all on
        calendars, a schedule that cannot be computed, and the like. Besides those, it checks
        each distinct cron expression and zone once (cached for the day), not each job.
        """
        now = now or timezone.now()
        rules = _StateRules(self, now)
        staged = self.annotate(_stage=rules.stage())
        if state in ("paused", "no_schedule"):
            return self.filter(pk__in=staged.filter(_stage=state).values("pk"))
        if state in ("scheduled", "not_started"):
            # Not paused, not finished by its run limit, surely a next run (so a trigger and no
            # end_at): the columns decide, with no CASE to evaluate.
            waiting = Q(start_at__gt=now) if state == "not_started" else Q(start_at__isnull=True) | Q(start_at__lte=now)
            by_sql = Q(paused=False) & rules.runs_left() & rules.surely() & waiting
        elif state == "finished":
            by_sql = Q(
                pk__in=staged.filter(Q(_stage="finished") | Q(_stage="computed") & rules.one_offs_long_past()).values(
                    "pk"
                )
            )
        else:
            by_sql = Q(pk__in=staged.filter(_stage=state).values("pk"))
        # What the database could not decide, narrowed by what the state needs: Python's part.
        left = (
            staged.filter(_stage="computed")
            .exclude(rules.surely() | rules.one_offs_long_past())
            .filter(rules.could_be(state))
        )
        rows = list(self.model.objects.filter(pk__in=left.values("pk")).prefetch_related("triggers__calendar"))
        self.model.count_runs_used(rows)
        by_python = [job.pk for job in rows if job.schedule_state(now=now).value == state]
        return self.filter(by_sql | Q(pk__in=by_python))


# Far enough from the end of time (year 9999) that a firing schedule still has a run after it.
FAR_START = datetime(9000, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)
def _fires(expression: str, zone: str, day: date) -> bool:
    """Whether a cron expression computes a next run in `zone` from `day` (kept for the day)."""
    try:
        spec = triggers.TriggerSpec(kind="cron", cron_expression=expression)
        after = datetime.combine(day, datetime.min.time(), UTC)
        return bool(triggers.next_runs([spec], ZoneInfo(zone), after, 1))
    except (ValueError, OverflowError, ZoneInfoNotFoundError):
        return False


class _StateRules:
    """Job.schedule_state's rules as query expressions (see JobQuerySet.in_state)."""

    def __init__(self, jobs: JobQuerySet, now: datetime):
        self.jobs, self.now = jobs, now
        self.Trigger = apps.get_model("scheduler_app", "Trigger")
        self.Execution = apps.get_model("scheduler_app", "Execution")
        # The longest jitter a trigger may have: its field's bound (MAX_JITTER_SECONDS).
        bounds = self.Trigger._meta.get_field("jitter_seconds").validators
        self.max_jitter = timedelta(seconds=max(v.limit_value for v in bounds if isinstance(v, MaxValueValidator)))
        self._sound: Q | None = None

    def triggers(self):
        return self.Trigger.objects.filter(job=OuterRef("pk"))

    def runs_used(self) -> Coalesce:
        """Job.runs_used() as a subquery (evaluated only for jobs with max_runs)."""
        counted = (
            self.Execution.objects.filter(job=OuterRef("pk"))
            .counting_against_max_runs()
            .order_by()
            .values("job")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(counted), 0)

    def runs_left(self) -> Q:
        return Q(max_runs__isnull=True) | Q(max_runs__gt=self.runs_used())

    def stage(self) -> Case:
        """The first rules of Job.schedule_state, in its order; "computed" when the next run decides."""
        return Case(
            When(paused=True, then=Value("paused")),
            When(~Exists(self.triggers()), then=Value("no_schedule")),
            When(end_at__lte=self.now, then=Value("ended")),
            When(Q(max_runs__isnull=False) & Q(max_runs__lte=self.runs_used()), then=Value("finished")),
            default=Value("computed"),
            output_field=models.CharField(),
        )

    def sound(self) -> Q:
        """Jobs whose fire times compute without error: a zone that exists, cron expressions
        that fire, calendars whose dates read. Checked once per distinct value, not per job."""
        if self._sound is None:
            self._sound = self._check_sound(self.jobs)
        return self._sound

    def _check_sound(self, jobs) -> Q:
        Calendar = apps.get_model("scheduler_app", "Calendar")
        pairs = (
            self.Trigger.objects.filter(kind="cron", job__in=jobs.order_by().values("pk"))
            .order_by()
            .values_list("cron_expression", "job__timezone")
            .distinct()
        )
        good = Q(pk__in=[])
        by_zone: dict[str, list[str]] = {}
        for expression, zone in pairs:
            if _fires(expression, zone, self.now.date()):
                by_zone.setdefault(zone, []).append(expression)
        for zone, expressions in by_zone.items():
            good |= Q(job_zone=zone, cron_expression__in=expressions)
        bad_calendars = []
        for calendar in Calendar.objects.all():
            try:
                calendar.excluded  # noqa: B018 - reading the dates is the check
            except (ValueError, TypeError):
                bad_calendars.append(calendar.pk)
        zones = jobs.order_by().values_list("timezone", flat=True).distinct()
        bad_zones = [zone for zone in zones if not _zone_exists(zone)]
        unsound = (
            self.triggers()
            .annotate(job_zone=ExpressionWrapper(OuterRef("timezone"), output_field=models.CharField()))
            .filter((Q(kind="cron") & ~good) | Q(calendar_id__in=bad_calendars))
        )
        return ~Q(timezone__in=bad_zones) & ~Exists(unsound)

    def surely(self) -> Q:
        """Jobs that surely have a next run: unlimited in time, computable, one trigger firing forever."""
        forever = Q(calendar__isnull=True) & (
            Q(kind="cron")  # sound() checked that it fires
            | Q(kind="interval")
            # A one-off still ahead, not behind the job's start nor at the very end of time.
            | Q(kind="once", run_at__gt=self.now, run_at__lt=FAR_START, job_start__isnull=True)
            | Q(kind="once", run_at__gt=self.now, run_at__lt=FAR_START, job_start__lte=self.now)
        )
        return (
            Q(end_at__isnull=True)
            & (Q(start_at__isnull=True) | Q(start_at__lt=FAR_START))
            & self.sound()
            & Exists(
                self.triggers()
                .annotate(job_start=ExpressionWrapper(OuterRef("start_at"), output_field=models.DateTimeField()))
                .filter(forever)
            )
        )

    def one_offs_long_past(self) -> Q:
        """Jobs of one-off triggers only, each further past than any jitter reaches: finished."""
        recent = self.triggers().filter(
            ~Q(kind="once") | Q(run_at__gt=self.now - self.max_jitter) | Q(jitter_seconds__gt=self.max_jitter.seconds)
        )
        return self.sound() & ~Exists(recent)

    def could_be(self, state: str) -> Q:
        """What a job needs for Job.schedule_state to answer `state` once its next run is known."""
        now = self.now
        return {
            "scheduled": Q(start_at__isnull=True) | Q(start_at__lte=now),
            "not_started": Q(start_at__gt=now),
            "finished": ~Exists(self.triggers().exclude(kind="once")),
            "ended": Q(end_at__isnull=False),
            "no_upcoming_run": Q(end_at__isnull=True),
            "schedule_error": Q(),
        }.get(state, Q(pk__in=[]))


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


class ExecutionQuerySet(models.QuerySet):
    def claimable(self, now: datetime) -> ExecutionQuerySet:
        """Rows waiting to start whose time has come, oldest first (index execution_claimable)."""
        return self.filter(status="scheduled", run_after__lte=now).order_by("run_after")

    def cancel_requested(self) -> ExecutionQuerySet:
        """Queued or running rows someone asked to cancel, which a scheduler or worker has yet
        to stop (index execution_cancel_requested)."""
        return self.filter(status__in=["queued", "running"], cancel_requested_at__isnull=False).order_by()

    def running(self) -> ExecutionQuerySet:
        return self.filter(status="running")

    def active_counts(self) -> dict[str, int]:
        """{scheduled, queued, running: count} now (index execution_status_recent: a few rows)."""
        counts = dict.fromkeys(["scheduled", "queued", "running"], 0)
        rows = self.filter(status__in=list(counts)).order_by().values_list("status").annotate(n=Count("id"))
        counts.update(dict(rows))
        return counts

    def untallied(self) -> ExecutionQuerySet:
        """Finished runs the statistics' fold has not counted yet (index execution_untallied)."""
        finished = ["succeeded", "failed", "timed_out", "cancelled", "lost", "skipped", "missed"]
        return self.filter(tallied_at__isnull=True, status__in=finished)

    def active(self) -> ExecutionQuerySet:
        return self.filter(status__in=["scheduled", "queued", "running"])

    def dead_letters(self) -> ExecutionQuerySet:
        """Failed with no retries left and not yet acknowledged."""
        return self.filter(dead_letter=True, acknowledged_at__isnull=True)

    def visible_to(self, user) -> ExecutionQuerySet:
        """Runs of the jobs `user` sees (runs of deleted jobs: only with view_job)."""
        return _scoped(self, permissions.execution_scope(user, permissions.JobAction.VIEW))

    def listed_for(self, user) -> ExecutionQuerySet:
        """visible_to(user) for the run-history lists: the same runs, with the owner's scope as
        "its job is one they see" (a correlated EXISTS on the job's primary key) instead of a join.

        Given the join, SQLite's planner starts from the owner's jobs and sorts all their runs
        (0.3 s at a million runs); given EXISTS, it walks the list's ordering index and stops
        at a page (tests/test_query_plans.py).
        """
        scope = permissions.job_scope(user, permissions.JobAction.VIEW)
        if scope is None or scope is permissions.NOTHING:
            return _scoped(self, scope)
        Job = apps.get_model("scheduler_app", "Job")  # models.py imports this module
        return self.filter(Exists(Job.objects.filter(scope, pk=OuterRef("job_id"))))

    def counting_against_max_runs(self) -> ExecutionQuerySet:
        """Scheduled runs that use up a job's max_runs: started or about to, not missed or skipped."""
        return self.filter(reason__in=["schedule", "catch_up"]).exclude(status__in=["missed", "skipped", "cancelled"])

    def failures(self) -> ExecutionQuerySet:
        return self.filter(Q(status__in=["failed", "timed_out", "lost"]))
