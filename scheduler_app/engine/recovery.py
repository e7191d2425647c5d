"""Recovering what dead scheduler nodes left behind.

A node whose heartbeat is older than the lease is dead (even after `kill -9`). Its runs
still marked queued or running never finish: they become `lost`, and are retried when the
job has retries left. Celery runs are not touched here: they have no node, and their
worker's death is found by their own heartbeat (engine/worker_loss.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction

from scheduler_app.engine.dispatch import lost_outcome
from scheduler_app.engine.runner import RunRequest
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution, SchedulerNode

logger = logging.getLogger(__name__)


def dead_nodes(*, now: datetime, lease_seconds: int, exclude: str = "") -> list[SchedulerNode]:
    cutoff = now - timedelta(seconds=lease_seconds)
    return list(
        SchedulerNode.objects.filter(last_beat_at__lt=cutoff)
        .exclude(state=SchedulerNode.State.STOPPED)
        .exclude(name=exclude)
    )


def recover(*, now: datetime, lease_seconds: int, me: str) -> int:
    """Mark dead nodes stopped and their in-flight runs lost (retrying where allowed)."""
    recovered = 0
    for node in dead_nodes(now=now, lease_seconds=lease_seconds, exclude=me):
        with transaction.atomic():
            if not SchedulerNode.objects.filter(pk=node.pk).exclude(state=SchedulerNode.State.STOPPED).update(
                state=SchedulerNode.State.STOPPED
            ):
                continue  # another node recovered it first
            recovered += mark_lost(
                Execution.objects.filter(worker=node.name, task_id="", status__in=["queued", "running"]),
                now=now,
                why=f"Lost: its scheduler {node.name} stopped sending heartbeats at {node.last_beat_at:%Y-%m-%d %H:%M:%S} UTC.",
            )
        logger.warning("node %s is dead; its runs were marked lost", node.name)
    return recovered


def mark_lost(executions, *, now: datetime, why: str) -> int:
    rows = list(executions.select_related("job"))
    batch = []
    for row in rows:
        if row.job is None:
            Execution.objects.filter(pk=row.pk, status__in=["queued", "running"]).update(
                status="lost", finished_at=now, error=why
            )
            continue
        batch.append(lost_outcome(RunRequest.for_execution(row), now=now, worker=row.worker, why=why))
    apply_outcomes(batch)
    return len(rows)
