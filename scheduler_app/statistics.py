"""Run statistics over a set of executions, in a fixed number of queries whatever the size.

Used by /api/stats/, /metrics, the FastScheduler-compatible /status and the console's dashboard. Every function takes
an Execution queryset already narrowed to what the caller may see.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Q, QuerySet
from django.db.models.functions import TruncHour

from scheduler_app.models import Execution

PERCENTILES = (50, 90, 95, 99)
FAILED = Q(status__in=Execution.FAILURES)
SUCCEEDED = Q(status=Execution.Status.SUCCEEDED)
ENDED = Q(status__in=(Execution.Status.SUCCEEDED, *Execution.FAILURES))  # it ran to an end


def with_duration(executions: QuerySet[Execution]) -> QuerySet[Execution]:
    """Finished runs that started, annotated with `run_duration` (finished_at - started_at)."""
    return executions.filter(started_at__isnull=False, finished_at__isnull=False).annotate(
        run_duration=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    )


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite answers an average of microseconds


def status_counts(executions: QuerySet[Execution]) -> dict[str, int]:
    """{status: count} for every status, zeros included (one query)."""
    counts = dict.fromkeys(Execution.Status.values, 0)
    for row in executions.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def success_rate(succeeded: int, failed: int) -> float | None:
    total = succeeded + failed
    return round(succeeded / total, 4) if total else None


def duration_summary(executions: QuerySet[Execution]) -> dict[str, float | None]:
    """Percentiles (nearest rank), mean and max of run durations in seconds.

    One aggregate plus one indexed slice per percentile: the database sorts, Python never
    sees the rows.
    """
    timed = with_duration(executions).order_by()
    agg = timed.aggregate(n=Count("id"), mean=Avg("run_duration"), longest=Max("run_duration"))
    summary: dict[str, float | None] = {f"p{p}": None for p in PERCENTILES}
    summary.update(count=agg["n"], mean=_seconds(agg["mean"]), max=_seconds(agg["longest"]))
    if agg["n"]:
        ordered = timed.order_by("run_duration", "id").values_list("run_duration", flat=True)
        for p in PERCENTILES:
            rank = max(math.ceil(p / 100 * agg["n"]), 1) - 1
            summary[f"p{p}"] = _seconds(ordered[rank])
    return summary


def runs_per_hour(executions: QuerySet[Execution], *, now: datetime, hours: int = 24) -> list[dict]:
    """Finished runs per UTC hour for the last `hours` hours, oldest first, empty hours included."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(hours=hours - 1)
    rows = (
        executions.filter(finished_at__gte=start, finished_at__lte=now)
        .annotate(hour=TruncHour("finished_at", tzinfo=UTC))
        .order_by()
        .values("hour")
        .annotate(runs=Count("id"), succeeded=Count("id", filter=SUCCEEDED), failed=Count("id", filter=FAILED))
    )
    by_hour = {row["hour"].astimezone(UTC): row for row in rows}
    result = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        row = by_hour.get(hour, {})
        result.append(
            {
                "hour": hour,
                "runs": row.get("runs", 0),
                "succeeded": row.get("succeeded", 0),
                "failed": row.get("failed", 0),
            }
        )
    return result


def per_job(executions: QuerySet[Execution], *, limit: int = 100) -> list[dict]:
    """Per job: runs, successes, failures, success rate, mean duration; busiest first (one query)."""
    rows = (
        with_duration(executions)
        .order_by()
        .values("job_id")
        .annotate(
            job_name=Max("job_name"),
            runs=Count("id"),
            succeeded=Count("id", filter=SUCCEEDED),
            failed=Count("id", filter=FAILED),
            mean=Avg("run_duration"),
            last_finished_at=Max("finished_at"),
        )
        .order_by("-runs", "job_id")[:limit]
    )
    return [
        {
            "job": row["job_id"],
            "job_name": row["job_name"],
            "runs": row["runs"],
            "succeeded": row["succeeded"],
            "failed": row["failed"],
            "success_rate": success_rate(row["succeeded"], row["failed"]),
            "mean_duration_seconds": _seconds(row["mean"]),
            "last_finished_at": row["last_finished_at"],
        }
        for row in rows
    ]


DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


def histogram(executions: QuerySet[Execution], expression, buckets=DURATION_BUCKETS) -> dict:
    """Cumulative bucket counts, sum and count of an interval expression, in one query."""
    rows = executions.order_by().annotate(value=ExpressionWrapper(expression, output_field=DurationField()))
    rows = rows.filter(value__isnull=False)
    aggregates = {
        f"le_{index}": Count("id", filter=Q(value__lte=timedelta(seconds=bound))) for index, bound in enumerate(buckets)
    }
    result = rows.aggregate(count=Count("id"), mean=Avg("value"), **aggregates)
    count = result["count"]
    mean = _seconds(result["mean"]) or 0.0
    return {
        "buckets": [(bound, result[f"le_{index}"]) for index, bound in enumerate(buckets)],
        "count": count,
        "sum": mean * count,
    }
