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


# The count rule looks at this many jobs per call, taking them in turn by id: run_count only
# grows, so a job whose history was already cut back stays a candidate for ever, and a fixed
# "first 50" would give every turn to the same 50 jobs and never reach the others.
JOBS_PER_PASS = 50
_count_cursor = 0  # the last job id the count rule finished with; 0 = start from the first


def _prune_by_count(*, per_job: int, batch: int) -> int:
    # Only jobs that can have more rows than the limit (run_count counts every finished run).
    deleted = 0
    candidates = Job.objects.filter(run_count__gt=per_job, pk__gt=_count_cursor).order_by("pk")
    job_ids = list(candidates.values_list("pk", flat=True)[:JOBS_PER_PASS])
    for job_id in job_ids:
        deleted += _prune_job(job_id, per_job=per_job, batch=batch - deleted)
        if deleted >= batch:
            return deleted  # the cursor stays before this job: it may have more to prune
        _cursor_to(job_id)
    if len(job_ids) < JOBS_PER_PASS:
        _cursor_to(0)  # past the last candidate: the next call starts from the first again
    return deleted


def _cursor_to(job_id: int) -> None:
    global _count_cursor
    _count_cursor = job_id


def _prune_job(job_id: int, *, per_job: int, batch: int) -> int:
    keep_after = (
        Execution.objects.filter(job_id=job_id)
        .order_by("-scheduled_for", "-id")
        .values_list("scheduled_for", flat=True)[per_job - 1 : per_job]
    )
    boundary = list(keep_after)
    if not boundary:
        return 0
    doomed = (
        Execution.objects.filter(job_id=job_id, scheduled_for__lt=boundary[0])
        .exclude(status__in=Execution.ACTIVE)
        .exclude(Q(dead_letter=True) & Q(acknowledged_at__isnull=True))
        .values_list("pk", flat=True)[:batch]
    )
    return Execution.objects.filter(pk__in=list(doomed)).delete()[0]
