"""Recovering what dead scheduler nodes left behind.

Only the truly dead are recovered. A node is dead when
- it ran on this host and its lock file is free (liveness.proven_dead: the process is gone,
  even after `kill -9`), or
- it holds no valid lease and has been silent for SCHEDULER_NODE_DEAD_SECONDS, well beyond
  the lease: a node that is merely slow or cut off from the database for a while is not
  dead, and one cut off for nearly that long stops its own runs first (liveness.py,
  self-fencing).
A draining node keeps beating, so it is never recovered. Its runs still marked queued or
running never finish: on this host their process groups are killed first (a child run
outliving its scheduler), then they become `lost`, retried where allowed. Celery runs are
not touched here: their messages are acknowledged late, so the broker redelivers them.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from scheduler_app.engine.dispatch import lost_outcome
from scheduler_app.engine.lease import NotLeading
from scheduler_app.engine.liveness import proven_dead
from scheduler_app.engine.runner import RunRequest, kill_orphan
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution, SchedulerNode, SchedulerState

logger = logging.getLogger(__name__)
IN_FLIGHT = ("queued", "running")


def dead_nodes(*, now: datetime, lease_seconds: int, dead_seconds: int | None = None,
               exclude: str = "") -> list[SchedulerNode]:
    dead_seconds = settings.SCHEDULER_NODE_DEAD_SECONDS if dead_seconds is None else dead_seconds
    nodes = list(SchedulerNode.objects.exclude(state=SchedulerNode.State.STOPPED).exclude(name=exclude))
    if not nodes:
        return []
    leader, expires = SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).values_list(
        "leader", "lease_expires_at"
    ).first() or ("", None)
    silent_since = now - timedelta(seconds=max(dead_seconds, lease_seconds))

    def silent(node: SchedulerNode) -> bool:
        holds_lease = node.name == leader and expires is not None and expires > now
        return node.last_beat_at < silent_since and not holds_lease

    return [node for node in nodes if silent(node) or proven_dead(node)]


def recover(*, now: datetime, lease_seconds: int, me: str, dead_seconds: int | None = None,
            fence: Callable[[], None] | None = None) -> int:
    """Mark dead nodes stopped and their in-flight runs lost (retrying where allowed).

    `fence` (Lease.fence) is called last in each node's transaction: a node that lost the
    lease meanwhile rolls the recovery back.
    """
    recovered = 0
    for node in dead_nodes(now=now, lease_seconds=lease_seconds, dead_seconds=dead_seconds, exclude=me):
        try:
            with transaction.atomic():
                if not SchedulerNode.objects.filter(pk=node.pk).exclude(state=SchedulerNode.State.STOPPED).update(
                    state=SchedulerNode.State.STOPPED
                ):
                    continue  # another node recovered it first
                runs = Execution.objects.filter(worker=node.name, task_id="", status__in=IN_FLIGHT)
                if node.hostname == socket.gethostname():
                    _kill_children(runs)
                lost = mark_lost(
                    runs, now=now,
                    why=f"Lost: its scheduler {node.name} stopped sending heartbeats at {node.last_beat_at:%Y-%m-%d %H:%M:%S} UTC.",
                )
                if fence is not None:
                    fence()
        except NotLeading as exc:
            logger.warning("recovery rolled back: %s", exc)
            break
        recovered += lost
        logger.warning("node %s is dead; its runs were marked lost", node.name)
    return recovered


def _kill_children(runs) -> None:
    """Child runs of a dead node of this host that still run: killed before their rows say lost."""
    for execution_id, group in runs.filter(process_group__isnull=False).values_list("pk", "process_group"):
        if kill_orphan(execution_id, group):
            logger.warning("killed the process group %d of run %d: its scheduler is dead", group, execution_id)


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
