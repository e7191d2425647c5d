"""Run tallies: finished runs counted once, per hour and per job-day, so statistics never walk history.

The fold (`fold`) takes finished executions not yet counted, marks them counted and adds them
to the tallies, in one transaction: a run is counted exactly once, whatever the number of
schedulers folding (the mark is conditional, and only the rows this fold marked are added). The
leader folds every round (engine/loop.py); bench/history.py folds what it bulk-inserts.

A finished run never changes status again (every engine write is conditional on an active
status), so a tally is never out of date. Retention prunes executions, not tallies: the
statistics keep KEEP_DAYS of figures whatever the history kept.

Durations are kept as a histogram of buckets STEPS to a doubling (each about 19 % wide), so a
percentile read from it is within 10 % of the exact one (clamped to the shortest and longest).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import CharField, DateField, DateTimeField, FloatField, IntegerField

from scheduler_app import permissions, triggers
from scheduler_app.models import DurationTally, Execution, Job, JobDayTally, RunTally
from scheduler_app.row_source import row_source

KEEP_DAYS = 400
BATCH = 1000
STEPS = 4  # buckets per doubling
SMALLEST = 0.001  # seconds: bucket 0 holds everything shorter
ENDED = frozenset((Execution.Status.SUCCEEDED, *Execution.FAILURES))
FAILED = frozenset(Execution.FAILURES)


def bucket(seconds: float) -> int:
    if seconds < SMALLEST:
        return 0
    return math.floor(STEPS * math.log2(seconds / SMALLEST)) + 1


def bucket_value(index: int) -> float:
    """A bucket's representative duration: the geometric middle of its bounds."""
    if index <= 0:
        return SMALLEST / 2
    return SMALLEST * 2 ** ((index - 0.5) / STEPS)


@dataclass
class Figures:
    """Counts by status and the durations of ended runs, over some window: what tallies add up to."""

    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Execution.Status.values, 0))
    retries: int = 0
    timed: int = 0
    seconds: float = 0.0
    shortest: float | None = None
    longest: float | None = None
    durations: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add_run(self, status: str, duration: float | None, *, retry: bool = False) -> None:
        self.by_status[status] += 1
        self.retries += retry
        if duration is not None and status in ENDED:
            self.add_durations(1, duration, duration, duration, {bucket(duration): 1})

    def add_durations(self, timed: int, seconds: float, shortest, longest, durations: dict) -> None:
        if not timed:
            return
        self.timed += timed
        self.seconds += seconds
        self.shortest = shortest if self.shortest is None else min(self.shortest, shortest)
        self.longest = longest if self.longest is None else max(self.longest, longest)
        for key, n in durations.items():
            self.durations[int(key)] += n

    def percentile(self, p: float) -> float | None:
        """Nearest rank over the histogram, within 10 % of the exact value."""
        if not self.timed:
            return None
        rank = max(math.ceil(p / 100 * self.timed), 1)
        seen = 0
        for index in sorted(self.durations):
            seen += self.durations[index]
            if seen >= rank:
                return min(max(bucket_value(index), self.shortest), self.longest)
        return self.longest


def duration_of(started_at: datetime | None, finished_at: datetime | None) -> float | None:
    if started_at is None or finished_at is None:
        return None
    return max((finished_at - started_at).total_seconds(), 0.0)


# The fold ----------------------------------------------------------------------------------


def fold(*, now: datetime, batch: int = BATCH) -> int:
    """Count up to `batch` finished, uncounted runs into the tallies; answers how many."""
    with transaction.atomic():
        rows = _mark(now, batch)
        if rows:
            _add(rows)
        return len(rows)


def fold_all(*, now: datetime, batch: int = 10_000) -> int:
    total = 0
    while done := fold(now=now, batch=batch):
        total += done
    return total


def _mark(now: datetime, batch: int) -> list[tuple]:
    table = connection.ops.quote_name(Execution._meta.db_table)
    finished = ", ".join(["%s"] * len(Execution.FINISHED))
    # Conditional twice over: the inner select picks candidates, the outer condition is checked
    # again under the row lock (PostgreSQL), so two folds never both mark, and so count, a row.
    # Any candidates will do: an order would sort the whole backlog after an upgrade.
    sql = (
        f"UPDATE {table} SET tallied_at = %s WHERE tallied_at IS NULL AND id IN "
        f"(SELECT id FROM {table} WHERE tallied_at IS NULL AND status IN ({finished}) LIMIT %s) "
        "RETURNING job_id, job_name, status, reason, started_at, finished_at"
    )
    stamp = now if connection.vendor != "sqlite" else now.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, *Execution.FINISHED, batch])
        return [
            (job_id, name, status, reason, _aware(started), _aware(finished_at))
            for job_id, name, status, reason, started, finished_at in cursor.fetchall()
        ]


def _aware(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _add(rows: list[tuple]) -> None:
    job_ids = {job_id for job_id, *_ in rows if job_id is not None}
    owners = dict(Job.objects.filter(pk__in=job_ids).values_list("pk", "owner_id"))
    hours: dict[tuple[int, datetime, str], Figures] = defaultdict(Figures)
    days: dict[tuple[date, int], _Day] = {}
    for job_id, name, status, reason, started_at, finished_at in rows:
        owner = owners.get(job_id)
        moment = finished_at or started_at
        if moment is None:
            continue  # a finished row always has finished_at; guard against hand-made rows
        duration = duration_of(started_at, finished_at)
        hour = triggers.utc_hour(moment)
        for key in (RunTally.EVERYONE, owner):
            if key is not None:
                hours[(key, hour, status)].add_run(status, duration, retry=reason == Execution.Reason.RETRY)
        _add_to_day(days, job_id or 0, owner, name, status, moment, duration)
    _upsert(
        RunTally,
        keys=("owner", "hour", "status"),
        add=("count", "retries", "timed", "seconds"),
        least=("shortest",),
        greatest=("longest",),
        rows=[
            (owner, hour, status, f.by_status[status], f.retries, f.timed, f.seconds, f.shortest, f.longest)
            for (owner, hour, status), f in hours.items()
        ],
    )
    buckets: dict[tuple[int, datetime, int], int] = defaultdict(int)
    for (owner, hour, _status), figures in hours.items():
        for index, n in figures.durations.items():
            buckets[(owner, hour, index)] += n
    _upsert(
        DurationTally,
        keys=("owner", "hour", "bucket"),
        add=("count",),
        rows=[(*key, n) for key, n in buckets.items()],
    )
    _upsert(
        JobDayTally,
        keys=("day", "job_id"),
        add=("runs", "succeeded", "failed", "timed", "seconds"),
        greatest=("last_finished_at",),
        replace=("owner", "job_name"),
        rows=[
            (day, job_id, d.runs, d.succeeded, d.failed, d.timed, d.seconds, d.last_finished_at, d.owner, d.job_name)
            for (day, job_id), d in days.items()
        ],
    )


@dataclass
class _Day:
    owner: int
    job_name: str
    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    timed: int = 0
    seconds: float = 0.0
    last_finished_at: datetime | None = None


def _add_to_day(days, job_id, owner, name, status, moment, duration) -> None:
    key = (triggers.utc_day(moment), job_id)
    day = days.get(key)
    if day is None:
        day = days[key] = _Day(owner=owner or RunTally.NO_OWNER, job_name=name)
    if status not in ENDED:
        return
    day.runs += 1
    day.succeeded += status == Execution.Status.SUCCEEDED
    day.failed += status in FAILED
    if duration is not None:
        day.timed += 1
        day.seconds += duration
    if day.last_finished_at is None or moment > day.last_finished_at:
        day.last_finished_at = moment


def _converter(field):
    """A column's value as the driver takes it, chosen once per column (a fold writes thousands)."""
    if isinstance(field, DateTimeField) and connection.vendor == "sqlite":
        return lambda value: None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(field, DateTimeField | DateField | IntegerField | FloatField | CharField):
        return lambda value: value  # both drivers take these as they are (SQLite: a date as ISO text)
    return lambda value: field.get_db_prep_save(value, connection)


def _upsert(model, *, keys, add=(), least=(), greatest=(), replace=(), rows) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, adding `add`, keeping the least of `least`, the
    greatest of `greatest` and the new `replace` (one statement, many rows; SQLite and PostgreSQL)."""
    if not rows:
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in (*keys, *add, *least, *greatest, *replace)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    def keep(name: str, better: str) -> str:
        old, new = f"{table}.{column(name)}", f"excluded.{column(name)}"
        choice = (
            f"CASE WHEN {new} IS NULL THEN {old} WHEN {old} IS NULL OR {new} {better} {old} THEN {new} ELSE {old} END"
        )
        return f"{column(name)} = {choice}"

    assignments = [f"{column(name)} = {table}.{column(name)} + excluded.{column(name)}" for name in add]
    assignments += [keep(name, "<") for name in least] + [keep(name, ">") for name in greatest]
    assignments += [f"{column(name)} = excluded.{column(name)}" for name in replace]
    head = "INSERT INTO {} ({})".format(table, ", ".join(quote(f.column) for f in fields))
    conflict = "ON CONFLICT ({}) DO UPDATE SET {}".format(
        ", ".join(column(name) for name in keys), ", ".join(assignments)
    )
    converters = [_converter(f) for f in fields]
    params = [[convert(value) for convert, value in zip(converters, row, strict=True)] for row in rows]
    # In key order, so two folds lock rows in the same order (PostgreSQL) and cannot deadlock.
    params.sort(key=lambda row: tuple(str(value) for value in row[: len(keys)]))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement of one array per column (see row_source.py): a fold's thousand
            # per-job rows, one statement each, held the GIL for tens of milliseconds.
            source, flat = row_source(fields, params)
            cursor.execute(f"{head} {source} {conflict}", flat)
        else:
            cursor.executemany(f"{head} VALUES ({', '.join(['%s'] * len(fields))}) {conflict}", params)


def prune(*, now: datetime) -> int:
    """Drop tallies older than KEEP_DAYS (a handful of rows an hour)."""
    horizon = now - timedelta(days=KEEP_DAYS)
    deleted = RunTally.objects.filter(hour__lt=triggers.utc_hour(horizon)).delete()[0]
    deleted += DurationTally.objects.filter(hour__lt=triggers.utc_hour(horizon)).delete()[0]
    return deleted + JobDayTally.objects.filter(day__lt=horizon.date()).delete()[0]


# Reading ------------------------------------------------------------------------------------


def owner_key(user) -> int | None:
    """Whose tallies `user` reads: EVERYONE's, their own, or none (permissions.job_scope decides)."""
    scope = permissions.job_scope(user, permissions.JobAction.VIEW)
    if scope is None:
        return RunTally.EVERYONE
    if scope is permissions.NOTHING:
        return None
    return user.pk
