"""The numbers and series the dashboard and the job page show, read for one user."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from scheduler_app import services, statistics, triggers
from scheduler_app.models import Execution, Job, SchedulerNode, SchedulerState

FAILED = list(Execution.FAILURES)


@dataclass
class Totals:
    jobs: int
    active: int
    paused: int
    running: int
    runs_24h: int
    succeeded_24h: int
    failed_24h: int
    dead_letters: int

    @property
    def success_rate(self) -> float | None:
        decided = self.succeeded_24h + self.failed_24h
        return round(100 * self.succeeded_24h / decided, 1) if decided else None


def totals(jobs, executions, figures: statistics.Tallied) -> Totals:
    """The counts for the dashboard: jobs now, runs over the last 24 whole hours (from the tallies)."""
    job_counts = jobs.aggregate(total=Count("id"), paused=Count("id", filter=Q(paused=True)))
    day = figures.figures(triggers.utc_hour(figures.now) - timedelta(hours=23)).by_status
    succeeded = day[Execution.Status.SUCCEEDED]
    failed = sum(day[status] for status in FAILED)
    return Totals(
        jobs=job_counts["total"],
        paused=job_counts["paused"],
        active=job_counts["total"] - job_counts["paused"],
        running=executions.running().count(),
        runs_24h=succeeded + failed,
        succeeded_24h=succeeded,
        failed_24h=failed,
        dead_letters=executions.dead_letters().count(),
    )


@dataclass
class SchedulerSummary:
    state: SchedulerState
    leader: SchedulerNode | None
    heartbeat_age: timedelta | None
    alive_nodes: int
    next_wakeup: datetime | None = None

    status: str = "down"  # services.Liveness.status


def scheduler_summary(now: datetime) -> SchedulerSummary:
    liveness = services.scheduler_liveness()
    leader = liveness.leader
    age = now - leader.last_beat_at if leader else None
    return SchedulerSummary(
        state=liveness.state,
        leader=leader,
        heartbeat_age=age,
        alive_nodes=len(liveness.alive),
        next_wakeup=SchedulerState.next_wakeup(),
        status=liveness.status,
    )


@dataclass
class Bar:
    label: str
    title: str
    succeeded: int
    failed: int
    # Heights in chart units (0-100), set by scale().
    ok_height: float = 0.0
    bad_height: float = 0.0
    x: float = 0.0
    ok_y: float = 100.0
    bad_y: float = 100.0


def scale(bars: list[Bar], *, height: float = 100.0, width: float = 10.0) -> int:
    """Set each bar's heights and position; answers the largest total (the axis maximum)."""
    top = max((bar.succeeded + bar.failed for bar in bars), default=0)
    for index, bar in enumerate(bars):
        bar.x = index * width
        if top:
            bar.ok_height = round(height * bar.succeeded / top, 2)
            bar.bad_height = round(height * bar.failed / top, 2)
        bar.ok_y = round(height - bar.ok_height, 2)
        bar.bad_y = round(bar.ok_y - bar.bad_height, 2)
    return top


def runs_per_hour(figures: statistics.Tallied, zone: ZoneInfo) -> list[Bar]:
    """24 hourly buckets (UTC hours, labelled in the viewer's zone), oldest first: the API's
    series (statistics.Tallied.runs_per_hour), drawn as bars."""
    bars = []
    for row in figures.runs_per_hour():
        local = row["hour"].astimezone(zone)
        bars.append(
            Bar(
                label=f"{local:%H}",
                title=f"{local:%Y-%m-%d %H:%M %Z}",
                succeeded=row["succeeded"],
                failed=row["failed"],
            )
        )
    return bars


def upcoming(jobs, now: datetime, count: int = 10) -> tuple[list[tuple[datetime, Job]], list[Job]]:
    """The next `count` runs across jobs (only the jobs due soonest can hold them), and those
    of these jobs whose schedule cannot be computed: shown as such, never breaking the page."""
    candidates = list(
        jobs.filter(paused=False, next_run_at__isnull=False)
        .order_by("next_run_at")
        .prefetch_related("triggers__calendar")[: count * 3]
    )
    Job.count_runs_used(candidates)
    streams, unplanned = [], []
    for job in candidates:
        runs, error = job.next_runs_or_error(after=now, count=count)
        if error:
            unplanned.append(job)
        else:
            streams.append([(run, job.pk, job) for run in runs])
    merged = heapq.merge(*streams, key=lambda item: (item[0], item[1]))
    return [(run, job) for run, _pk, job in list(merged)[:count]], unplanned


def success_rate(executions) -> tuple[float | None, int]:
    counts = executions.aggregate(
        ok=Count("id", filter=Q(status="succeeded")), bad=Count("id", filter=Q(status__in=FAILED))
    )
    decided = counts["ok"] + counts["bad"]
    return (round(100 * counts["ok"] / decided, 1) if decided else None), decided


@dataclass
class DurationBar:
    execution: Execution
    seconds: float
    height: float = 0.0
    x: float = 0.0
    y: float = 100.0


def durations(
    executions, limit: int = 40, *, height: float = 100.0, width: float = 10.0
) -> tuple[list[DurationBar], float]:
    """The last `limit` finished runs' durations, oldest first, scaled; and the longest."""
    rows = list(executions.filter(started_at__isnull=False, finished_at__isnull=False).order_by("-finished_at")[:limit])
    bars = [DurationBar(row, row.duration.total_seconds()) for row in reversed(rows)]
    top = max((bar.seconds for bar in bars), default=0.0)
    # Right-aligned in a chart `limit` bars wide, so a few runs draw thin bars, not wide blocks.
    offset = limit - len(bars)
    for index, bar in enumerate(bars):
        bar.x = (offset + index) * width
        bar.height = max(round(height * bar.seconds / top, 2), 0.5) if top else 0.5
        bar.y = round(height - bar.height, 2)
    return bars, top
