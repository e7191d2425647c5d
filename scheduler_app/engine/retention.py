"""Keeping history useful: prune executions by age and by count per job, in small batches.

Each call deletes at most `batch` rows, so the scheduler's pass stays short however much
history has piled up; it is called again on the next round until nothing is left to prune.
Dead letters are kept until acknowledged or past the age limit. Rows still in flight never go.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from scheduler_app.models import Execution, Job

BATCH = 500


def prune(*, now: datetime, days: int, per_job: int, batch: int = BATCH) -> int:
    deleted = _prune_by_age(now=now, days=days, batch=batch)
    if deleted < batch:
        deleted += _prune_by_count(per_job=per_job, batch=batch - deleted)
    return deleted


def _prune_by_age(*, now: datetime, days: int, batch: int) -> int:
    old = Execution.objects.filter(finished_at__lt=now - timedelta(days=days)).values_list("pk", flat=True)[:batch]
    return Execution.objects.filter(pk__in=list(old)).delete()[0]


def _prune_by_count(*, per_job: int, batch: int) -> int:
    # Only jobs that can have more rows than the limit (run_count counts every finished run).
    deleted = 0
    for job_id in Job.objects.filter(run_count__gt=per_job).values_list("pk", flat=True)[:50]:
        keep_after = (
            Execution.objects.filter(job_id=job_id).order_by("-scheduled_for", "-id")
            .values_list("scheduled_for", flat=True)[per_job - 1 : per_job]
        )
        boundary = list(keep_after)
        if not boundary:
            continue
        doomed = (
            Execution.objects.filter(job_id=job_id, scheduled_for__lt=boundary[0])
            .exclude(status__in=Execution.ACTIVE)
            .exclude(Q(dead_letter=True) & Q(acknowledged_at__isnull=True))
            .values_list("pk", flat=True)[: batch - deleted]
        )
        deleted += Execution.objects.filter(pk__in=list(doomed)).delete()[0]
        if deleted >= batch:
            break
    return deleted
