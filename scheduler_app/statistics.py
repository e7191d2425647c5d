"""Run statistics in a fixed number of queries whatever the size of the history.

Used by /api/stats/, /metrics, the FastScheduler-compatible /status and the console's dashboard.
Figures over time come from the tallies (`Tallied`, for one user); the functions that take an
Execution queryset (already narrowed to what the caller may see) count what is small: the runs
active now, the last hour's histograms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from django.db import DatabaseError, connection, transaction
from django.db.models import Count, FloatField, Func, Max, Min, Q, QuerySet, Sum

from scheduler_app import tallies, triggers
from scheduler_app.models import DurationTally, Execution, Job, JobDayTally, RunTally

PERCENTILES = (50, 90, 95, 99)
PENDING_LIMIT = 20_000
ENDED = Q(status__in=(Execution.Status.SUCCEEDED, *Execution.FAILURES))  # it ran to an end


def status_counts(executions: QuerySet[Execution]) -> dict[str, int]:
    """{status: count} for every status, zeros included (one query).

    Counted with one filtered count per status, not GROUP BY: to group, SQLite walked the whole
    status index instead of the few rows the queryset's own filter selects."""
    counts = {status: Count("id", filter=Q(status=status)) for status in Execution.Status.values}
    return executions.order_by().aggregate(**counts)


def success_rate(succeeded: int, failed: int) -> float | None:
    total = succeeded + failed
    return round(succeeded / total, 4) if total else None


def duration_summary(figures: tallies.Figures) -> dict[str, float | None]:
    """Percentiles (nearest rank, estimated within 10 % from the tallies' histogram), mean and max in seconds."""
    summary: dict[str, float | None] = {f"p{p}": figures.percentile(p) for p in PERCENTILES}
    mean = figures.seconds / figures.timed if figures.timed else None
    summary.update(count=figures.timed, mean=mean, max=figures.longest)
    return summary


@contextmanager
def snapshot() -> Iterator[None]:
    """The reads inside see the database as of one moment.

    A Tallied adds the runs not yet folded to the tallies, two reads: a fold committing between
    them would count its batch twice (read as pending, then in the tallies) or not at all. On
    PostgreSQL: a REPEATABLE READ, READ ONLY transaction; on SQLite (WAL) a deferred read
    transaction, which holds no lock (the project's atomic() is IMMEDIATE: a write lock). Inside
    a caller's transaction (tests, ATOMIC_REQUESTS), that transaction's view holds.
    """
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")  # nothing was written: this ends the read
        except DatabaseError:
            pass  # the connection broke inside: the read ended with it


class Tallied:
    """What one user may see of the run figures, from the tallies plus the runs not yet folded.

    The tallies hold what the fold counted (tallies.py); the few finished runs it has not reached
    yet are read raw (index execution_untallied), once per instance, and added, so every figure is
    exact at `now`. Only a backlog (after an upgrade, or while no scheduler runs) larger than
    PENDING_LIMIT is not read whole: that many of its runs are added, and `up_to_date` says the
    rest are not. Windows start on a whole UTC hour (`since`). Runs count for the owner their job had
    when they were counted. Read its figures inside `snapshot()`.
    """

    def __init__(self, user, *, now: datetime) -> None:
        self.key = tallies.owner_key(user)
        self.now = now
        self.up_to_date = True  # False once `pending` finds more than PENDING_LIMIT runs to add

    @classmethod
    def everyone(cls, *, now: datetime) -> Tallied:
        """Every run's figures, for callers that are not a user (a Prometheus scraper on an allowed address)."""
        tallied = cls(None, now=now)
        tallied.key = RunTally.EVERYONE
        return tallied

    @cached_property
    def pending(self) -> list[tuple]:
        """(job_id, job_name, status, reason, started_at, finished_at) of finished runs not yet counted."""
        if self.key is None:
            return []
        rows = list(
            Execution.objects.untallied()
            .order_by()  # no order: a backlog past the limit is not sorted whole, any part of it is as true
            .values_list("job_id", "job_name", "status", "reason", "started_at", "finished_at")[: PENDING_LIMIT + 1]
        )
        self.up_to_date = len(rows) <= PENDING_LIMIT
        del rows[PENDING_LIMIT:]
        if self.key != RunTally.EVERYONE:
            mine = set(
                Job.objects.filter(pk__in={row[0] for row in rows}, owner_id=self.key).values_list("pk", flat=True)
            )
            rows = [row for row in rows if row[0] in mine]
        return [row for row in rows if row[5] is not None]

    def _hours(self, since: datetime | None):
        if self.key is None:
            return RunTally.objects.none()
        rows = RunTally.objects.filter(owner=self.key)
        return rows.filter(hour__gte=since) if since else rows

    def figures(self, since: datetime | None = None) -> tallies.Figures:
        """Counts by status and durations of the runs that finished since `since` (None: the tallies' whole span)."""
        figures = tallies.Figures()
        sums = self._hours(since).order_by().values_list("status")
        sums = sums.annotate(
            Sum("count"), Sum("retries"), Sum("timed"), Sum("seconds"), Min("shortest"), Max("longest")
        )
        for status, count, retries, timed, seconds, shortest, longest in sums:
            figures.by_status[status] += count
            figures.retries += retries
            figures.add_durations(timed, seconds, shortest, longest, {})
        if self.key is not None:
            buckets = DurationTally.objects.filter(owner=self.key)
            buckets = buckets.filter(hour__gte=since) if since else buckets
            for index, n in buckets.order_by().values_list("bucket").annotate(n=Sum("count")):
                figures.durations[index] += n
        for _job, _name, status, reason, started_at, finished_at in self.pending:
            if since is None or finished_at >= since:
                figures.add_run(status, tallies.duration_of(started_at, finished_at), retry=reason == "retry")
        return figures

    def runs_per_hour(self, hours: int = 24) -> list[dict]:
        """Runs that ended per UTC hour for the last `hours` hours, oldest first, empty hours included."""
        start = triggers.utc_hour(self.now) - timedelta(hours=hours - 1)
        by_hour: dict[datetime, dict[str, int]] = defaultdict(lambda: {"runs": 0, "succeeded": 0, "failed": 0})

        def add(hour: datetime, status: str, n: int) -> None:
            if status in tallies.ENDED:
                counts = by_hour[hour]
                counts["runs"] += n
                counts["succeeded" if status == Execution.Status.SUCCEEDED else "failed"] += n

        for hour, status, count in self._hours(start).values_list("hour", "status", "count"):
            add(hour.astimezone(UTC), status, count)
        for *_head, status, _reason, _started_at, finished_at in self.pending:
            if finished_at >= start:
                add(triggers.utc_hour(finished_at), status, 1)
        return [
            {"hour": hour, **by_hour.get(hour, {"runs": 0, "succeeded": 0, "failed": 0})}
            for hour in (start + timedelta(hours=index) for index in range(hours))
        ]

    def per_job(self, since: date, *, limit: int = 100) -> list[dict]:
        """Per job, over the UTC days from `since`: runs that ended, successes, failures, success
        rate, mean duration; busiest first. The tallies' top `limit`, and the jobs with runs not
        yet counted, are summed; then the busiest `limit` of those are answered."""
        if self.key is None:
            return []
        days = JobDayTally.objects.filter(day__gte=since)
        if self.key != RunTally.EVERYONE:
            days = days.filter(owner=self.key)
        sums = dict(
            job_name=Max("job_name"),
            runs=Sum("runs"),
            succeeded=Sum("succeeded"),
            failed=Sum("failed"),
            timed=Sum("timed"),
            seconds=Sum("seconds"),
            last_finished_at=Max("last_finished_at"),
        )
        grouped = days.order_by().values("job_id").annotate(**sums).filter(runs__gt=0)  # skipped or missed only: no row
        start = triggers.utc_midnight(since)
        pending = [row for row in self.pending if row[5] >= start and row[2] in tallies.ENDED]
        rows = {row["job_id"]: row for row in grouped.order_by("-runs", "job_id")[:limit]}
        extra = {row[0] or 0 for row in pending} - set(rows)
        if extra:
            rows.update({row["job_id"]: row for row in grouped.filter(job_id__in=extra)})
        for job_id, name, status, _reason, started_at, finished_at in pending:
            row = rows.setdefault(
                job_id or 0,
                {"job_id": job_id or 0, "job_name": name, "runs": 0, "succeeded": 0, "failed": 0}
                | {"timed": 0, "seconds": 0.0, "last_finished_at": None},
            )
            row["runs"] += 1
            row["succeeded" if status == Execution.Status.SUCCEEDED else "failed"] += 1
            if (duration := tallies.duration_of(started_at, finished_at)) is not None:
                row["timed"] += 1
                row["seconds"] += duration
            if row["last_finished_at"] is None or finished_at > row["last_finished_at"]:
                row["last_finished_at"] = finished_at
        busiest = sorted(rows.values(), key=lambda row: (-row["runs"], row["job_id"]))[:limit]
        existing = set(Job.objects.filter(pk__in=[row["job_id"] for row in busiest]).values_list("pk", flat=True))
        return [
            {
                "job": row["job_id"] if row["job_id"] in existing else None,
                "job_name": row["job_name"],
                "runs": row["runs"],
                "succeeded": row["succeeded"],
                "failed": row["failed"],
                "success_rate": success_rate(row["succeeded"], row["failed"]),
                "mean_duration_seconds": row["seconds"] / row["timed"] if row["timed"] else None,
                "last_finished_at": row["last_finished_at"],
            }
            for row in busiest
        ]


DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


class Seconds(Func):
    """`end - start` in seconds, computed by the database itself: Django spells a difference of
    datetimes on SQLite as a Python function called per row, which made the last hour's
    histograms cost a second at ten thousand runs an hour."""

    arity = 2
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra):
        end, start = (compiler.compile(expression) for expression in self.get_source_expressions())
        return f"((julianday({end[0]}) - julianday({start[0]})) * 86400.0)", (*end[1], *start[1])

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL
        end, start = (compiler.compile(expression) for expression in self.get_source_expressions())
        return f"EXTRACT(EPOCH FROM ({end[0]} - {start[0]}))", (*end[1], *start[1])


def histogram(executions: QuerySet[Execution], end: str, start: str, buckets=DURATION_BUCKETS) -> dict:
    """Cumulative bucket counts, sum and count of `end - start` (two datetime fields), in one query."""
    rows = executions.order_by().filter(**{f"{end}__isnull": False, f"{start}__isnull": False})
    rows = rows.annotate(value=Seconds(end, start))
    aggregates = {f"le_{index}": Count("id", filter=Q(value__lte=bound)) for index, bound in enumerate(buckets)}
    result = rows.aggregate(count=Count("id"), total=Sum("value"), **aggregates)
    return {
        "buckets": [(bound, result[f"le_{index}"]) for index, bound in enumerate(buckets)],
        "count": result["count"],
        "sum": result["total"] or 0.0,
    }
