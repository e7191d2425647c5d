"""What the calendar shows: many jobs' runs per day, in work bounded whatever the number of jobs.

- Only jobs that can fire in the days shown are read (unpaused, with a trigger, a window that
  overlaps them).
- Jobs that share a schedule (one cron or one-off trigger, no jitter, no max_runs, the same zone,
  window and calendar) are grouped by the database and computed once per schedule, whatever
  their number; every other job is computed on its own, at most MAX_OWN of them per page.
- Per job and day at most `cap` runs are computed: more shows as "24+".
- A page computes at most BUDGET fire times afresh; a (schedule, days) answer is kept in a
  bounded per-process cache (its key holds everything the answer depends on, the calendar's
  dates included, so it is never stale). What the budget leaves out is said to be not counted.
- A schedule that cannot be computed degrades its own jobs, named as such, never the page.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from scheduler_app import triggers
from scheduler_app.models import MAX_JITTER_SECONDS, SCHEDULE_FAILURES, Calendar, Job, Trigger, trigger_spec

CAP = 24  # runs of one job on one day the month grid counts: more reads "24+"
DAY_CAP = 48  # runs of one job the day's panel lists
BUDGET = 1_500  # fire times one page computes afresh (about 60 ms)
MAX_OWN = 100  # jobs with a schedule of their own computed per page
MAX_RUNS_EXACT = 1_000  # a max_runs job with more runs left is counted as if it had none
CACHE_SIZE = 20_000
_ONE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Schedule:
    """Everything a job's fire times depend on (its runs left aside): a cache key."""

    specs: tuple[triggers.TriggerSpec, ...]
    zone: str
    start_at: datetime | None
    end_at: datetime | None


class Work:
    """The fire times a page may still compute afresh."""

    def __init__(self, budget: int | None = None):
        self.left = BUDGET if budget is None else budget
        self.computed = 0

    def spend(self, n: int) -> None:
        self.left -= n
        self.computed += n


class OverBudget(Exception):
    pass


_cache: OrderedDict[tuple, tuple[tuple[datetime, ...], bool]] = OrderedDict()


def clear_cache() -> None:
    _cache.clear()


def _keep(key: tuple, value: tuple[tuple[datetime, ...], bool]) -> None:
    # First in, first out (no reordering on reads, so threads sharing it need no lock).
    _cache[key] = value
    while len(_cache) > CACHE_SIZE:
        try:
            _cache.popitem(last=False)
        except KeyError:  # emptied meanwhile by another thread
            break


def walk(
    schedule: Schedule, viewer: ZoneInfo, first: date, last: date, cap: int, work: Work
) -> dict[date, tuple[tuple[datetime, ...], bool]]:
    """{viewer's day in first..last: (its first `cap` runs, more than cap?)} for days with runs.

    One computation gives cap + 1 runs, and every day they cover completely: a daily job costs
    two for the month, an hourly one a computation per day.
    Each day's answer is kept, so a page cut short by its budget resumes where it stopped.
    Raises OverBudget when the page's work is spent, or what SCHEDULE_FAILURES lists.
    """
    days: dict[date, tuple[tuple[datetime, ...], bool]] = {}
    day = first
    while day <= last:
        kept = _cache.get((schedule, viewer.key, day, cap))
        if kept is not None:
            if kept[0]:
                days[day] = kept
            day += timedelta(days=1)
            continue
        if work.left <= 0:
            raise OverBudget
        cursor = datetime.combine(day, time(), viewer)
        window = triggers.Window(schedule.start_at, schedule.end_at)
        runs = triggers.next_runs(schedule.specs, ZoneInfo(schedule.zone), cursor - _ONE, cap + 1, window)
        work.spend(len(runs) + 1)
        by_day: dict[date, list[datetime]] = {}
        for run in runs:
            by_day.setdefault(run.astimezone(viewer).date(), []).append(run)
        if len(runs) > cap and len(by_day) == 1:  # one day with more runs than the cap
            (found,) = by_day
            complete = found + timedelta(days=1)
        else:
            # Every day before the last run's is complete (all its runs came before it); all of
            # them up to the last day shown when the schedule ran out of runs first.
            complete = max(by_day) if len(runs) > cap else last + timedelta(days=1)
        while day < min(complete, last + timedelta(days=1)):
            found_runs = tuple(by_day.get(day, ()))
            answer = (found_runs[:cap], len(found_runs) > cap)
            _keep((schedule, viewer.key, day, cap), answer)
            if found_runs:
                days[day] = answer
            day += timedelta(days=1)
    return days


def runs_after(
    schedule: Schedule, viewer: ZoneInfo, day: date, after: datetime, cap: int, work: Work
) -> tuple[tuple[datetime, ...], bool]:
    """The runs of `day` after `after` (today's rest), from the day's cached runs when they are
    complete, else computed afresh."""
    runs, capped = walk(schedule, viewer, day, day, cap, work).get(day, ((), False))
    if not capped:
        return tuple(run for run in runs if run > after), False
    if work.left <= 0:
        raise OverBudget
    day_end = datetime.combine(day + timedelta(days=1), time(), viewer)
    window = triggers.Window(schedule.start_at, schedule.end_at)
    fresh = triggers.next_runs(schedule.specs, ZoneInfo(schedule.zone), after, cap + 1, window)
    work.spend(len(fresh) + 1)
    inside = tuple(run for run in fresh if run < day_end)
    return inside[:cap], len(inside) > cap


def in_window(jobs: QuerySet, start: datetime, end: datetime) -> QuerySet:
    """Unpaused jobs whose window overlaps [start, end)."""
    return jobs.filter(
        Q(end_at__isnull=True) | Q(end_at__gte=start),
        Q(start_at__isnull=True) | Q(start_at__lt=end),
        paused=False,
    )


def can_fire(jobs: QuerySet, start: datetime, end: datetime) -> QuerySet:
    """The jobs that may fire in [start, end): in_window, with a trigger that is not a one-off
    outside those days (a day's slack for its jitter)."""
    slack = timedelta(seconds=MAX_JITTER_SECONDS)
    may_fire = ~Q(kind=Trigger.Kind.ONCE) | Q(run_at__gte=start - slack, run_at__lt=end)
    return in_window(jobs, start, end).filter(Exists(Trigger.objects.filter(may_fire, job=OuterRef("pk"))))


# The jobs by number of triggers, as one uncorrelated subquery each (SQLite and PostgreSQL
# read the trigger table once, instead of probing it once per job).
def _jobs_with_triggers(single: bool) -> QuerySet:
    counts = Trigger.objects.order_by().values("job_id").annotate(n=Count("pk"))
    return (counts.filter(n=1) if single else counts.filter(n__gt=1)).values("job_id")


def _own_schedule() -> Q:
    """A job whose fire times depend on more than columns the database can group by: a run
    limit, an interval (anchored at its own start), jitter (seeded by the job), several triggers."""
    irregular = Trigger.objects.filter(Q(kind=Trigger.Kind.INTERVAL) | Q(jitter_seconds__gt=0)).values("job_id")
    return Q(max_runs__isnull=False) | Q(pk__in=irregular) | Q(pk__in=_jobs_with_triggers(single=False))


@dataclass
class Row:
    """One job, or a group of jobs sharing one schedule, and its runs per day."""

    pk: int
    name: str
    last_status: str
    jobs: int = 1  # jobs of the group (this one is the first by name)
    schedule: Schedule | None = None
    error: str = ""
    runs_left: int | None = None  # for a job with max_runs
    days: dict[date, tuple[tuple[datetime, ...], bool]] = field(default_factory=dict)
    counted: bool = False
    max_runs_ignored: bool = False


def _calendars(ids) -> dict[int, Calendar]:
    return Calendar.objects.in_bulk([pk for pk in set(ids) if pk is not None])


def _schedule(specs, zone: str, start_at, end_at) -> Schedule:
    ZoneInfo(zone)  # raises for a zone that no longer exists
    return Schedule(tuple(specs), zone, start_at, end_at)


def shared_rows(jobs: QuerySet, start: datetime, end: datetime) -> list[Row]:
    """One row per schedule the shared jobs among `jobs` have, largest group first: one GROUP BY."""
    groups = list(
        Trigger.objects.filter(
            job__in=in_window(jobs, start, end).filter(max_runs__isnull=True).values("pk"),
            job_id__in=_jobs_with_triggers(single=True),
            jitter_seconds=0,
        )
        .exclude(kind=Trigger.Kind.INTERVAL)
        # A one-off outside the days shown cannot fire in them (it has no jitter).
        .exclude(Q(kind=Trigger.Kind.ONCE) & (Q(run_at__lt=start) | Q(run_at__gte=end)))
        .order_by()
        .values(
            "kind",
            "cron_expression",
            "run_at",
            "preset",
            "calendar_id",
            "job__timezone",
            "job__start_at",
            "job__end_at",
        )
        .annotate(jobs=Count("job_id"), first=Min("job__name"))
        .order_by("-jobs", "first")
    )
    firsts = {
        name: (pk, status)
        for name, pk, status in Job.objects.filter(name__in=[g["first"] for g in groups]).values_list(
            "name", "pk", "last_status"
        )
    }
    calendars = _calendars(g["calendar_id"] for g in groups)
    rows = []
    for group in groups:
        pk, status = firsts.get(group["first"], (0, ""))
        row = Row(pk=pk, name=group["first"], last_status=status, jobs=group["jobs"])
        columns = SimpleNamespace(
            kind=group["kind"],
            cron_expression=group["cron_expression"],
            interval_seconds=None,
            run_at=group["run_at"],
            preset=group["preset"],
            jitter_seconds=0,
            job_id="",  # the seed only moves jittered runs: none here
            created_at=None,
        )
        try:
            spec = trigger_spec(
                columns, job_start_at=group["job__start_at"], calendar=calendars.get(group["calendar_id"])
            )
            row.schedule = _schedule([spec], group["job__timezone"], group["job__start_at"], group["job__end_at"])
        except SCHEDULE_FAILURES as exc:
            row.error = str(exc) or exc.__class__.__name__
        rows.append(row)
    return rows


def own_rows(jobs: QuerySet) -> tuple[list[Row], int]:
    """(A row for each of the first MAX_OWN of `jobs` (can_fire) by name with a schedule of their
    own, how many there are)."""
    limit = MAX_OWN
    own = jobs.filter(_own_schedule()).order_by("name")
    rows = [job_row(job) for job in with_triggers(own[:limit])]
    return rows, own.count() if len(rows) == limit else len(rows)


def with_triggers(jobs) -> list[Job]:
    rows = list(jobs.prefetch_related("triggers__calendar"))
    Job.count_runs_used(rows)
    return rows


def job_row(job: Job) -> Row:
    row = Row(pk=job.pk, name=job.name, last_status=job.last_status)
    try:
        row.schedule = _schedule(job.trigger_specs(), job.timezone, job.start_at, job.end_at)
        if job.max_runs is not None:
            row.runs_left = max(job.max_runs - job.runs_used(), 0)
    except SCHEDULE_FAILURES as exc:
        row.error = str(exc) or exc.__class__.__name__
    return row


def count(row: Row, viewer: ZoneInfo, first: date, last: date, now: datetime, cap: int, work: Work) -> None:
    """Fill row.days with its runs after `now` on the viewer's days first..last; row.counted
    says whether the work budget allowed it, row.error why its schedule cannot be computed."""
    if row.schedule is None:
        return
    today = now.astimezone(viewer).date()
    first = max(first, today)
    if first > last:
        row.counted = True
        return
    try:
        days = dict(walk(row.schedule, viewer, first, last, cap, work))
        if today == first and today in days:
            days[today] = runs_after(row.schedule, viewer, today, now, cap, work)
        if row.runs_left is not None:
            days = _within_max_runs(row, days, viewer, first, now, work)
    except OverBudget:
        return
    except SCHEDULE_FAILURES as exc:
        row.error = str(exc) or exc.__class__.__name__
        return
    row.days = {day: runs for day, runs in days.items() if runs[0]}
    row.counted = True


def _within_max_runs(row: Row, days, viewer: ZoneInfo, first: date, now: datetime, work: Work):
    """Cut the days' runs at the job's runs left (counted from now)."""
    left = row.runs_left
    if left > MAX_RUNS_EXACT:
        row.max_runs_ignored = True
        return days
    start = datetime.combine(first, time(), viewer)
    if start > now:  # runs between now and the first day shown use up some
        if work.left <= 0:
            raise OverBudget
        window = triggers.Window(row.schedule.start_at, start - _ONE)
        before = triggers.next_runs(row.schedule.specs, ZoneInfo(row.schedule.zone), now, left, window)
        work.spend(len(before) + 1)
        left -= len(before)
    kept = {}
    ordered = sorted(days)
    for index, day in enumerate(ordered):
        runs, capped = days[day]
        if left <= 0:
            break
        if capped and left > len(runs):
            # More runs that day than counted: how many are left after it is unknown, so the
            # days from here are shown as if the job had no max_runs, and said so.
            row.max_runs_ignored = True
            kept.update((later, days[later]) for later in ordered[index:])
            break
        kept[day] = (runs[:left], False)
        left -= len(kept[day][0])
    return kept
