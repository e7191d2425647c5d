"""Tempora's tables: jobs, their triggers, their executions, calendars and the scheduler's own rows.

Behaviour that belongs to one row lives here (a job knows its next runs; an execution its
duration). State changes go through scheduler_app/services/; time arithmetic through triggers.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from scheduler_app import triggers, validators
from scheduler_app.conf import tempora_settings
from scheduler_app.querysets import CalendarQuerySet, ExecutionQuerySet, JobQuerySet

# What computing one job's fire times can raise when its rows were changed outside the
# services (a cron that no longer parses, a zone that no longer exists): that job's schedule
# "cannot be computed", and every page shows it so instead of failing (ScheduleError is a ValueError).
SCHEDULE_FAILURES = (ValueError, OverflowError, ZoneInfoNotFoundError)

# Field bounds: the validators below are their one definition; the console's form, the API's
# serializers and the admin read them from the fields (validators.field_bounds).
WEEK_SECONDS = 7 * 86_400
MAX_RETRIES = 100
MAX_RUNS = 2_000_000_000
MAX_INTERVAL_SECONDS = 10 * 366 * 86_400  # ten years
MAX_JITTER_SECONDS = 86_400
MAX_TRIGGERS = 20  # per job, in the console's form and the API


class Calendar(models.Model):
    """Local dates on which linked triggers do not fire (holidays), optionally weekends too."""

    name = models.CharField(max_length=100, unique=True, help_text=_("e.g. 'UK bank holidays'"))
    description = models.TextField(blank=True)
    excluded_dates = models.JSONField(
        default=list,
        blank=True,
        validators=[validators.validate_date_list],
        help_text=_('Local dates as ISO strings, e.g. ["2026-12-25", "2026-12-26"]'),
    )
    business_days_only = models.BooleanField(
        default=False, help_text=_("Also skip Saturdays and Sundays (in the job's zone).")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    objects = CalendarQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def excluded(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d) for d in self.excluded_dates)


@dataclass(frozen=True)
class ScheduleState:
    """What a job does next (Job.schedule_state): one of Job.State and, if it can run, when."""

    value: str
    next_run: datetime | None = None  # for a paused job: the run it would make once resumed
    error: str = ""  # why the schedule cannot be computed

    @property
    def label(self) -> str:
        return str(Job.State(self.value).label)

    @property
    def upcoming(self) -> datetime | None:
        """The next run, only when it will really happen: no "next run" for a paused or finished job."""
        return self.next_run if self.value in (Job.State.SCHEDULED, Job.State.NOT_STARTED) else None


class Job(models.Model):
    """What to run and how. When it runs is its triggers' business."""

    class State(models.TextChoices):
        """Where a job stands; see schedule_state for when each applies."""

        SCHEDULED = "scheduled", _("Scheduled")
        NOT_STARTED = "not_started", _("Not yet started")
        PAUSED = "paused", _("Paused")
        NO_SCHEDULE = "no_schedule", _("No schedule")
        FINISHED = "finished", pgettext_lazy("job state", "Finished")  # not a run's "finished at"
        ENDED = "ended", _("Ended")
        NO_UPCOMING_RUN = "no_upcoming_run", _("No upcoming run")
        SCHEDULE_ERROR = "schedule_error", _("Schedule cannot be computed")

    class Overlap(models.TextChoices):
        SKIP = "skip", _("Skip the new run while one is running")
        QUEUE_ONE = "queue_one", _("Queue one run behind the running one")
        ALLOW = "allow", _("Allow up to max_instances at once")
        REPLACE = "replace", _("Cancel the running one and start the new one")

    class CatchUp(models.TextChoices):
        NONE = "none", _("Skip missed runs")
        ONCE = "once", _("Run once for all missed runs")
        ALL = "all", _("Run every missed run (at most 100)")

    class Executor(models.TextChoices):
        THREAD = "thread", _("In the scheduler process (thread pool)")
        CELERY = "celery", _("On a Celery worker")
        DJANGO_TASKS = "django_tasks", _("On a Django Tasks backend's worker")

    class LostPolicy(models.TextChoices):
        # What a run whose scheduler or worker died mid-run means (Quartz's "requests recovery").
        AUTO = "auto", _("Run it again if the job has retries, else record it")
        RETRY = "retry", _("Run it again (at least once)")
        RECORD = "record", _("Record it and move on (at most once)")

    name = models.CharField(max_length=200, unique=True, help_text=_("e.g. 'nightly-backup'"))
    # TextField's max_length only sizes form widgets: the validator enforces it.
    description = models.TextField(blank=True, max_length=10_000, validators=[MaxLengthValidator(10_000)])
    task = models.CharField(
        max_length=200,
        validators=[validators.validate_task_name],
        help_text=_("A registered task, e.g. 'tempora.sample_job'"),
    )
    args = models.JSONField(default=list, blank=True, validators=[validators.validate_args])
    kwargs = models.JSONField(default=dict, blank=True, validators=[validators.validate_kwargs])
    group = models.CharField(max_length=100, default="default", validators=[validators.validate_group])
    tags = models.JSONField(
        default=list, blank=True, validators=[validators.validate_tags], help_text=_('e.g. ["etl", "nightly"]')
    )
    priority = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("1 (lowest) to 10 (highest): the order when many runs are due at once."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validators.validate_timezone_name],
        help_text=_("e.g. 'Europe/Berlin'"),
    )
    timeout = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[validators.validate_timeout],
        help_text=_(
            "Seconds; the run is stopped after this long. Empty: the default limit (SCHEDULER_DEFAULT_TIMEOUT)."
        ),
    )
    max_retries = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(MAX_RETRIES)])
    retry_backoff = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(WEEK_SECONDS)],
        help_text=_("Seconds before the first retry; doubles each attempt (with jitter)."),
    )
    retry_backoff_max = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(1), MaxValueValidator(WEEK_SECONDS)],
        help_text=_("The longest wait between retries."),
    )
    overlap_policy = models.CharField(max_length=10, choices=Overlap.choices, default=Overlap.SKIP)
    max_instances = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("Concurrent runs under 'allow'."),
    )
    misfire_grace_time = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(WEEK_SECONDS)],
        help_text=_("Seconds a run may start late; later than that it is recorded as missed."),
    )
    catch_up = models.CharField(max_length=4, choices=CatchUp.choices, default=CatchUp.ONCE)
    executor = models.CharField(max_length=12, choices=Executor.choices, default=Executor.THREAD)
    lost_policy = models.CharField(
        max_length=6,
        choices=LostPolicy.choices,
        default=LostPolicy.AUTO,
        help_text=_("A run cut short by a dead scheduler or worker: run it again, or only record it as lost."),
    )
    start_at = models.DateTimeField(null=True, blank=True, help_text=_("No run before this instant."))
    end_at = models.DateTimeField(null=True, blank=True, help_text=_("No run after this instant."))
    max_runs = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RUNS)],
        help_text=_("Stop after this many runs."),
    )
    paused = models.BooleanField(default=False)
    code_defined = models.BooleanField(
        default=False, editable=False, help_text=_("Defined in a jobs.py: the code owns its definition.")
    )
    import_error = models.TextField(blank=True, editable=False, help_text=_("Why the task cannot be loaded, if so."))

    # Counters kept current by the scheduler so lists need no aggregate queries.
    run_count = models.PositiveIntegerField(default=0, editable=False)
    failure_count = models.PositiveIntegerField(default=0, editable=False)
    last_status = models.CharField(max_length=10, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    # Stamped by every service, bulk ones included: the scheduler's sync reads it.
    updated_at = models.DateTimeField(default=dj_timezone.now)

    objects = JobQuerySet.as_manager()

    # Executors whose runs a worker outside the scheduler claims and records (engine/worker_run.py):
    # their rows name no node until claimed, and their runs in flight are counted from the database.
    WORKER_EXECUTORS = (Executor.CELERY, Executor.DJANGO_TASKS)

    class Meta:
        ordering = ["name"]
        # Django's view/change/delete_job mean "everyone's jobs": a user's own need none
        # (scheduler_app/permissions.py).
        permissions = [
            ("run_job", _("Can run any job now")),
            ("pause_job", _("Can pause and resume any job")),
            ("use_network_tasks", _("Can schedule tasks that reach the network (tempora.http_request)")),
            ("use_mail_tasks", _("Can schedule tasks that send mail (tempora.send_email)")),
            ("use_file_tasks", _("Can schedule tasks that read or write files (backups, data files)")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=10), name="job_priority_1_10"),
            models.CheckConstraint(condition=Q(max_instances__gte=1), name="job_max_instances_positive"),
            # The bounds the engine's retry and misfire arithmetic relies on (see the fields' validators).
            models.CheckConstraint(condition=Q(max_retries__lte=MAX_RETRIES), name="job_max_retries_bounded"),
            models.CheckConstraint(condition=Q(retry_backoff_max__gte=1), name="job_retry_backoff_max_positive"),
            models.CheckConstraint(condition=Q(misfire_grace_time__gte=1), name="job_misfire_grace_positive"),
            models.CheckConstraint(
                condition=Q(max_runs__isnull=True) | Q(max_runs__gte=1), name="job_max_runs_positive"
            ),
            models.CheckConstraint(condition=Q(timeout__isnull=True) | Q(timeout__gt=0), name="job_timeout_positive"),
            models.CheckConstraint(
                condition=Q(start_at__isnull=True) | Q(end_at__isnull=True) | Q(end_at__gt=models.F("start_at")),
                name="job_window_ordered",
            ),
        ]
        indexes = [
            # engine/sync.py: "which jobs changed since the last pass?" every second.
            models.Index(fields=["updated_at"], name="job_updated_at"),
            # engine/dispatch.py and the dashboard's "next runs": due, unpaused jobs by time.
            models.Index(fields=["next_run_at"], condition=Q(paused=False), name="job_next_run_active"),
            # Group pages and group pause/resume/cancel.
            models.Index(fields=["group"], name="job_group"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def runs_on_workers(self) -> bool:
        return self.executor in self.WORKER_EXECUTORS

    def clean(self) -> None:
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValidationError({"end_at": gettext("The window must end after it starts.")})

    @property
    def effective_timeout(self) -> int:
        """The time limit of this job's runs: its own, else SCHEDULER_DEFAULT_TIMEOUT."""
        return self.timeout if self.timeout is not None else tempora_settings.DEFAULT_TIMEOUT

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def window(self) -> triggers.Window:
        runs_left = None if self.max_runs is None else max(self.max_runs - self.runs_used(), 0)
        return triggers.Window(start_at=self.start_at, end_at=self.end_at, runs_left=runs_left)

    def runs_used(self) -> int:
        """Scheduled runs that count against max_runs: started or about to, not missed or skipped.

        Counted from the rows (one query, only for jobs with max_runs), not from run_count,
        which lags behind runs still in flight. List pages count for all their jobs at once
        (count_runs_used).
        """
        if self.pk is None:
            return 0
        if "_runs_used" in self.__dict__:
            return self._runs_used
        # Not kept: the scheduler holds Job rows across passes, and the count moves every run.
        return self.executions.counting_against_max_runs().count()

    @staticmethod
    def count_runs_used(jobs: Iterable[Job]) -> None:
        """runs_used() for many jobs in one query (a page of them), instead of one query each.

        Only for rows read to be shown: the count is kept on them until refresh_from_db.
        """
        limited = {job.pk: job for job in jobs if job.max_runs is not None and job.pk is not None}
        if not limited:
            return
        counts = dict(
            Execution.objects.filter(job_id__in=list(limited))
            .counting_against_max_runs()
            .order_by()
            .values("job_id")
            .annotate(n=Count("id"))
            .values_list("job_id", "n")
        )
        for pk, job in limited.items():
            job._runs_used = counts.get(pk, 0)

    def refresh_from_db(self, *args, **kwargs) -> None:
        # What was worked out from the old values must not outlive them.
        for name in ("_runs_used", "current_state"):
            self.__dict__.pop(name, None)
        super().refresh_from_db(*args, **kwargs)

    def schedule_state(self, *, now: datetime | None = None) -> ScheduleState:
        """Where the job stands at `now`: the one answer every page, both APIs and the admin show.

        - paused: someone paused it (it keeps the run it would make once resumed);
        - no_schedule: no trigger, it runs only when started by hand;
        - ended: its window's end_at has passed, or no run is left before it;
        - finished: max_runs are used up, or it has only one-off triggers whose time has passed;
        - schedule_error: its fire times cannot be computed (e.g. a row changed outside the services);
        - no_upcoming_run: none within the bounded search (e.g. a calendar that excludes every day);
        - not_started: it waits for start_at; scheduled: it runs next at next_run.
        """
        now = now or dj_timezone.now()
        state = self._state_unpaused(list(self.triggers.all()), now)
        if self.paused:
            return ScheduleState(self.State.PAUSED, next_run=state.next_run, error=state.error)
        return state

    def _state_unpaused(self, rows: list[Trigger], now: datetime) -> ScheduleState:
        if not rows:
            return ScheduleState(self.State.NO_SCHEDULE)
        if self.end_at is not None and self.end_at <= now:
            return ScheduleState(self.State.ENDED)
        if self.max_runs is not None and self.runs_used() >= self.max_runs:
            return ScheduleState(self.State.FINISHED)
        runs, error = self.next_runs_or_error(after=now, count=1)
        if error:
            return ScheduleState(self.State.SCHEDULE_ERROR, error=error)
        next_run = runs[0] if runs else None
        if next_run is not None:
            waiting = self.start_at is not None and self.start_at > now
            return ScheduleState(self.State.NOT_STARTED if waiting else self.State.SCHEDULED, next_run=next_run)
        if all(row.kind == Trigger.Kind.ONCE and row.run_at is not None and row.run_at <= now for row in rows):
            return ScheduleState(self.State.FINISHED)
        return ScheduleState(self.State.ENDED if self.end_at is not None else self.State.NO_UPCOMING_RUN)

    @cached_property
    def current_state(self) -> ScheduleState:
        """schedule_state() now, worked out once: a page or an API answer reads it several times."""
        return self.schedule_state()

    @property
    def state(self) -> str:
        return self.current_state.value

    def trigger_specs(self) -> list[triggers.TriggerSpec]:
        return [trigger.spec() for trigger in self.triggers.all()]

    def next_runs(self, *, after: datetime | None = None, count: int = 10) -> list[datetime]:
        """The next `count` fire times (UTC), the union of every trigger, honouring the window."""
        return triggers.next_runs(self.trigger_specs(), self.zone, after or dj_timezone.now(), count, self.window)

    def next_runs_or_error(self, *, after: datetime | None = None, count: int = 10) -> tuple[list[datetime], str]:
        """next_runs, or none and why they cannot be computed: one bad job never breaks a page."""
        try:
            return self.next_runs(after=after, count=count), ""
        except SCHEDULE_FAILURES as exc:
            return [], str(exc) or exc.__class__.__name__

    def next_run(self, *, after: datetime | None = None) -> datetime | None:
        runs = self.next_runs(after=after, count=1)
        return runs[0] if runs else None

    def schedule_description(self) -> str:
        parts = [trigger.describe() for trigger in self.triggers.all()]
        return "; ".join(parts) if parts else str(_("No trigger: runs only when started by hand"))


def trigger_spec(row, *, job_start_at: datetime | None, calendar: Calendar | None) -> triggers.TriggerSpec:
    """The TriggerSpec of a Trigger row — or of any object with its columns as attributes, so
    the scheduler's full sync can build specs for 100,000 jobs without model instances.

    Intervals count from the job's start, else from the trigger's creation plus one interval.
    """
    anchor = None
    if row.kind == "interval":
        # Whole seconds: "every 60 s" should fire at :00 of a second, not at .173978.
        anchor = job_start_at or row.created_at.replace(microsecond=0) + timedelta(seconds=row.interval_seconds or 0)
    return triggers.TriggerSpec(
        kind=row.kind,
        cron_expression=row.cron_expression,
        interval_seconds=row.interval_seconds,
        anchor=anchor,
        run_at=row.run_at,
        preset=row.preset,
        jitter_seconds=row.jitter_seconds,
        seed=f"job:{row.job_id}",
        excluded_dates=calendar.excluded if calendar else frozenset(),
        business_days_only=calendar.business_days_only if calendar else False,
        calendar_name=calendar.name if calendar else "",
    )


class Trigger(models.Model):
    """When a job fires. A job fires at the union of its triggers."""

    class Kind(models.TextChoices):
        CRON = "cron", _("Cron expression")
        INTERVAL = "interval", _("Every N seconds")
        ONCE = "once", _("Once")

    class Preset(models.TextChoices):
        NONE = "", _("None")
        DAILY = "daily", _("Daily at HH:MM")
        WEEKLY = "weekly", _("Weekly on days at HH:MM")
        HOURLY = "hourly", _("Hourly at :MM")

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="triggers")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    cron_expression = models.CharField(
        max_length=200, blank=True, help_text=_("e.g. '0 9 * * MON-FRI' (0 and 7 are Sunday)")
    )
    interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_INTERVAL_SECONDS)],
        help_text=_("e.g. 300 for every 5 minutes"),
    )
    run_at = models.DateTimeField(null=True, blank=True, help_text=_("For kind 'once': the instant to run."))
    preset = models.CharField(
        max_length=6,
        choices=Preset.choices,
        blank=True,
        default="",
        help_text=_("How the cron was entered, for display."),
    )
    jitter_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_JITTER_SECONDS)],
        help_text=_("Spread runs by up to this many seconds (the same offset for the same occurrence)."),
    )
    calendar = models.ForeignKey(
        Calendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="triggers",
        help_text=_("Skip the dates of this calendar."),
    )
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_seconds__isnull=True) | Q(interval_seconds__gt=0), name="trigger_interval_positive"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="cron") & ~Q(cron_expression="")
                    | Q(kind="interval", interval_seconds__isnull=False)
                    | Q(kind="once", run_at__isnull=False)
                ),
                name="trigger_kind_has_its_field",
            ),
        ]

    def __str__(self) -> str:
        return self.describe()

    def spec(self) -> triggers.TriggerSpec:
        return trigger_spec(self, job_start_at=self.job.start_at, calendar=self.calendar)

    def describe(self) -> str:
        try:
            return triggers.describe(self.spec(), self.job.zone)
        except (triggers.ScheduleError, ValueError):
            return f"{self.kind} (invalid)"

    def clean(self) -> None:
        try:
            triggers.validate_spec(self.spec())
        except triggers.ScheduleError as exc:
            raise ValidationError({exc.field: exc.message}) from None


class Execution(models.Model):
    """One run attempt of a job; the row outlives its job until retention removes it."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        TIMED_OUT = "timed_out", _("Timed out")
        CANCELLED = "cancelled", _("Cancelled")
        LOST = "lost", _("Lost")
        SKIPPED = "skipped", _("Skipped")
        MISSED = "missed", _("Missed")

    class Reason(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Run now")
        RETRY = "retry", _("Retry")
        CATCH_UP = "catch_up", _("Catch-up")
        DEPENDENCY = "dependency", _("Dependency")
        RECOVERY = "recovery", _("Recovery")

    PENDING = (Status.SCHEDULED, Status.QUEUED)
    ACTIVE = (Status.SCHEDULED, Status.QUEUED, Status.RUNNING)
    FINISHED = (
        Status.SUCCEEDED,
        Status.FAILED,
        Status.TIMED_OUT,
        Status.CANCELLED,
        Status.LOST,
        Status.SKIPPED,
        Status.MISSED,
    )
    FAILURES = (Status.FAILED, Status.TIMED_OUT, Status.LOST)
    # Occurrence rows the scheduler creates; the unique constraint guards these.
    SCHEDULED_REASONS = (Reason.SCHEDULE, Reason.CATCH_UP, Reason.RETRY, Reason.RECOVERY)

    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions")
    job_name = models.CharField(
        max_length=200, help_text=_("The job's name when it ran; kept after the job is deleted.")
    )
    trigger = models.ForeignKey(Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    scheduled_for = models.DateTimeField(help_text=_("The occurrence this run is for."))
    run_after = models.DateTimeField(help_text=_("Not started before this instant (later for retries)."))
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    attempt = models.PositiveSmallIntegerField(default=1)
    reason = models.CharField(max_length=10, choices=Reason.choices, default=Reason.SCHEDULE)
    # A run now with argument overrides: what this run was given instead of the job's own.
    args = models.JSONField(
        null=True,
        blank=True,
        validators=[validators.validate_args],
        help_text=_("Positional arguments this run used instead of the job's; empty: the job's own."),
    )
    kwargs = models.JSONField(
        null=True,
        blank=True,
        validators=[validators.validate_kwargs],
        help_text=_("Keyword arguments this run used instead of the job's; empty: the job's own."),
    )
    result = models.JSONField(null=True, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text=_("The node or Celery worker that ran it."))
    task_id = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("The Celery task id (celery executor) or the Tasks backend's result id (django_tasks executor)."),
    )
    # Liveness of a run, for recovery (engine/recovery.py): the process group of a run in a
    # child process (killed when its scheduler is recovered on the same host), and the last
    # sign of life of a run on a Celery worker (a dead worker leaves it stale).
    process_group = models.PositiveIntegerField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    dead_letter = models.BooleanField(default=False, help_text=_("Failed with no retries left."))
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    # When the statistics' fold (tallies.py) counted this finished run into the tallies; NULL
    # until then. Nullable, so adding it to a big table is instant.
    tallied_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        permissions = [
            ("retry_execution", _("Can retry any run and acknowledge any dead letter")),
            ("cancel_execution", _("Can cancel any run")),
        ]
        constraints = [
            # The guarantee that nothing fires twice, whatever the leader lease does.
            models.UniqueConstraint(
                fields=["job", "scheduled_for", "attempt"],
                condition=Q(reason__in=["schedule", "catch_up", "retry", "recovery"]),
                name="execution_once_per_occurrence",
            ),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="execution_attempt_positive"),
        ]
        indexes = [
            # engine/loop.py: Execution.objects.claimable(now), every round.
            models.Index(fields=["run_after"], condition=Q(status="scheduled"), name="execution_claimable"),
            # engine/recovery.py and the overlap policy: what is running or queued now.
            models.Index(
                fields=["job", "status"], condition=Q(status__in=["queued", "running"]), name="execution_active"
            ),
            # The run-history lists walk these in their order (-scheduled_for, -id), a page at a
            # time from a cursor, so no list sorts or counts the table (tests/test_query_plans.py):
            # /executions/ and /api/executions/ (every run, or an owner's: a join to their jobs),
            models.Index(fields=["-scheduled_for", "-id"], name="execution_recent"),
            # the same filtered by one status (?status=failed),
            models.Index(fields=["status", "-scheduled_for", "-id"], name="execution_status_recent"),
            # a job's history (its page, /api/jobs/{id}/executions/), retention by count per job
            # (engine/retention.py) and the sync's last occurrence (engine/sync.py).
            models.Index(fields=["job", "-scheduled_for", "-id"], name="execution_job_history"),
            # Retention by age and the executions page's date filter.
            models.Index(fields=["finished_at"], name="execution_finished_at"),
            # The dead-letter lists (/dead-letters/, /api/dead-letters/), newest failure first.
            models.Index(fields=["-finished_at", "-id"], condition=Q(dead_letter=True), name="execution_dead_letters"),
            # engine/loop.py: Execution.objects.cancel_requested(), every round (almost always empty).
            models.Index(
                fields=["cancel_requested_at"],
                condition=Q(status__in=["queued", "running"], cancel_requested_at__isnull=False),
                name="execution_cancel_pending",
            ),
            # tallies.py: the runs not yet counted (the fold's work, and what reads add to the tallies).
            # Status first: a query for the finished ones probes it per status, where an index of
            # ids alone lost to a walk of the whole table in id order (SQLite).
            models.Index(fields=["status", "id"], condition=Q(tallied_at__isnull=True), name="execution_untallied"),
        ]

    def __str__(self) -> str:
        return f"{self.job_name} @ {triggers.format_utc(self.scheduled_for)} #{self.attempt} ({self.status})"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def lag(self) -> timedelta | None:
        """How late it started against its plan: `started_at - scheduled_for`."""
        return self.started_at - self.scheduled_for if self.started_at else None

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def can_retry(self) -> bool:
        return self.status in (*self.FAILURES, self.Status.CANCELLED, self.Status.MISSED) and self.job_id is not None

    @property
    def can_cancel(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def cancel_pending(self) -> bool:
        """Asked to cancel, and its scheduler or worker has not stopped it yet."""
        return self.cancel_requested_at is not None and self.status in self.ACTIVE


class SchedulerNode(models.Model):
    """One row per runscheduler process: its heartbeat, role and state."""

    class Role(models.TextChoices):
        LEADER = "leader", _("Leader")
        STANDBY = "standby", _("Standby")

    class State(models.TextChoices):
        STARTING = "starting", _("Starting")
        RUNNING = "running", _("Running")
        DRAINING = "draining", _("Draining")
        STOPPED = "stopped", _("Stopped")

    name = models.CharField(max_length=200, unique=True, help_text=_("host:pid:start, unique per process"))
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=dj_timezone.now)
    last_beat_at = models.DateTimeField(default=dj_timezone.now)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.STANDBY)
    state = models.CharField(max_length=8, choices=State.choices, default=State.STARTING)

    class Meta:
        ordering = ["-last_beat_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, {self.state})"

    def is_alive(self, *, now: datetime | None = None, lease_seconds: int | None = None) -> bool:
        lease = lease_seconds or tempora_settings.LEASE_SECONDS
        now = now or dj_timezone.now()
        return self.state != self.State.STOPPED and now - self.last_beat_at <= timedelta(seconds=lease)


class SchedulerState(models.Model):
    """The single row of global scheduler state: the leader lease, the global pause, settings."""

    SINGLETON_ID = 1

    leader = models.CharField(max_length=200, blank=True, help_text=_("The node name holding the lease."))
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Fencing: incremented by every take-over, so a deposed leader's pass can tell it no
    # longer holds the lease it started with (engine/lease.py).
    lease_epoch = models.PositiveBigIntegerField(default=0)
    paused = models.BooleanField(default=False, help_text=_("Nothing fires while set."))
    paused_at = models.DateTimeField(null=True, blank=True)
    shutdown_requested_at = models.DateTimeField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text=_("Runtime settings that override SCHEDULER_*."))
    synced_until = models.DateTimeField(
        null=True, blank=True, help_text=_("The scheduler's store reflects every job changed up to here.")
    )
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name = _("scheduler state")
        verbose_name_plural = _("scheduler state")
        permissions = [("control_scheduler", _("Can pause, resume, stop and configure the scheduler"))]
        constraints = [models.CheckConstraint(condition=Q(id=1), name="scheduler_state_singleton")]

    def __str__(self) -> str:
        return "Scheduler paused" if self.paused else "Scheduler running"

    @classmethod
    def load(cls) -> SchedulerState:
        state, _created = cls.objects.get_or_create(id=cls.SINGLETON_ID)
        return state

    @staticmethod
    def next_wakeup() -> datetime | None:
        """When a scheduler next has something to start: the earliest planned run of an unpaused
        job (the scheduler keeps next_run_at true: NULL once a job has no further run), or a run
        waiting in the database that may start (run now, a retry). A paused job's retries wait
        for it to resume, and a deleted job's requests are cancelled: neither counts."""
        planned = Job.objects.filter(paused=False).aggregate(at=models.Min("next_run_at"))["at"]
        waiting = (
            Execution.objects.filter(status=Execution.Status.SCHEDULED, job__isnull=False)
            .filter(Q(job__paused=False) | Q(reason=Execution.Reason.MANUAL))
            .aggregate(at=models.Min("run_after"))["at"]
        )
        return min((at for at in (planned, waiting) if at is not None), default=None)


class ApiToken(models.Model):
    """A per-user key for programs calling the REST API.

    Only the SHA-256 of the key is stored: the plaintext is shown once, when the token is
    created (services.token_create), and cannot be recovered. `prefix` keeps the key's first
    characters so a person can tell their tokens apart.
    """

    KEY_PREFIX = "tmp_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text=_("What the token is for, e.g. 'ci-deploy'"))
    # The authentication's lookup: one indexed equality per request (unique makes the index).
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=16, editable=False, help_text=_("The key's first characters, e.g. 'tmp_3fA9c2'")
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RunTally(models.Model):
    """Finished runs of one UTC hour, status and owner, counted by the fold (tallies.py).

    The statistics read these instead of the executions: a week is 168 rows per status, whatever
    the number of runs. `owner` is the job owner's user id when the run was counted (0: no owner),
    or EVERYONE for the row every run is also counted into. The durations of ended runs are kept
    as a histogram beside (DurationTally), from which percentiles are estimated within 10 %.
    """

    EVERYONE = -1
    NO_OWNER = 0

    hour = models.DateTimeField()
    owner = models.IntegerField()
    status = models.CharField(max_length=10, choices=Execution.Status.choices)
    count = models.PositiveIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0, help_text=_("Ended runs with a start and an end."))
    retries = models.PositiveIntegerField(default=0, help_text=_("Of `count`, the runs that were retries."))
    seconds = models.FloatField(default=0.0, help_text=_("The sum of the timed runs' durations."))
    shortest = models.FloatField(null=True)
    longest = models.FloatField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "hour", "status"], name="run_tally_key")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.status} owner={self.owner}: {self.count}"


class DurationTally(models.Model):
    """How many runs that ended in one UTC hour, for one owner (as RunTally), took a duration in
    one histogram bucket (tallies.bucket): a row per bucket seen, so a fold only ever adds."""

    hour = models.DateTimeField()
    owner = models.IntegerField()
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "hour", "bucket"], name="duration_tally_key")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} bucket {self.bucket} owner={self.owner}: {self.count}"


class JobDayTally(models.Model):
    """One job's finished runs of one UTC day, counted by the fold: the per-job statistics.

    `job_id` is a plain number, not a key: the figures outlive the job (0: runs whose job was gone).
    """

    day = models.DateField()
    job_id = models.IntegerField()
    owner = models.IntegerField()
    job_name = models.CharField(max_length=200)
    runs = models.PositiveIntegerField(default=0, help_text=_("Runs that ended (succeeded or failed)."))
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    last_finished_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "job_id"], name="job_day_tally_key")]
        indexes = [models.Index(fields=["owner", "day"], name="job_day_tally_owner")]

    def __str__(self) -> str:
        return f"{self.job_name} {self.day}: {self.runs}"
