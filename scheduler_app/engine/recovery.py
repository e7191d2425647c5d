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
outliving its scheduler), then `mark_lost` settles them — from the dead node's journal when
it is on this host (finished runs recorded as finished, runs that never started planned
again), else `lost`, run again or not as the job's lost policy says. Celery runs are not
touched here: they have no node, and their worker's death is found by their own heartbeat
(engine/worker_loss.py).
"""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction

from scheduler_app.conf import tempora_settings
from scheduler_app.engine import journal, outcomes
from scheduler_app.engine.lease import NotLeading
from scheduler_app.engine.liveness import proven_dead
from scheduler_app.engine.runner import RunRequest, RunResult, kill_orphan
from scheduler_app.engine.writer import Outcome, apply_outcomes
from scheduler_app.models import Execution, SchedulerNode, SchedulerState

logger = logging.getLogger(__name__)
IN_FLIGHT = ("queued", "running")


def dead_nodes(
    *, now: datetime, lease_seconds: int, dead_seconds: int | None = None, exclude: str = ""
) -> list[SchedulerNode]:
    dead_seconds = tempora_settings.NODE_DEAD_SECONDS if dead_seconds is None else dead_seconds
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


def recover(
    *,
    now: datetime,
    lease_seconds: int,
    me: str,
    dead_seconds: int | None = None,
    fence: Callable[[], None] | None = None,
) -> int:
    """Mark dead nodes stopped and their in-flight runs lost (retrying where allowed).

    `fence` (Lease.fence) is called last in each node's transaction: a node that lost the
    lease meanwhile rolls the recovery back.
    """
    recovered = 0
    for node in dead_nodes(now=now, lease_seconds=lease_seconds, dead_seconds=dead_seconds, exclude=me):
        try:
            with transaction.atomic():
                if (
                    not SchedulerNode.objects.filter(pk=node.pk)
                    .exclude(state=SchedulerNode.State.STOPPED)
                    .update(state=SchedulerNode.State.STOPPED)
                ):
                    continue  # another node recovered it first
                runs = Execution.objects.filter(worker=node.name, task_id="", status__in=IN_FLIGHT)
                if node.hostname == socket.gethostname():
                    _kill_children(runs)
                lost = mark_lost(
                    runs,
                    now=now,
                    why=f"Lost: its scheduler {node.name} stopped sending heartbeats at {node.last_beat_at:%Y-%m-%d %H:%M:%S} UTC.",
                )
                if fence is not None:
                    fence()
        except NotLeading as exc:
            logger.warning("recovery rolled back: %s", exc)
            break
        recovered += lost
        logger.warning("node %s is dead; its runs were settled", node.name)
    return recovered


def _kill_children(runs) -> None:
    """Child runs of a dead node of this host that still run: killed before their rows say lost."""
    for execution_id, group in runs.filter(process_group__isnull=False).values_list("pk", "process_group"):
        if kill_orphan(execution_id, group):
            logger.warning("killed the process group %d of run %d: its scheduler is dead", group, execution_id)


def mark_lost(executions, *, now: datetime, why: str) -> int:
    """Settle runs whose scheduler or worker died (queued or running rows); answers how many.

    First what the dead node's journal proves, when it is on this host (journal.py): a run
    that finished is recorded as it finished; a queued run it never started is planned again
    (outcomes.replanned). Every other run is `lost`, with `why`, and the job's lost policy
    decides whether it runs again (outcomes.next_attempt). Idempotent: every change is
    conditional on the row's status. In the caller's transaction, rows locked in id order.
    """
    rows = sorted(executions.select_related("job"), key=lambda row: row.pk)
    replays = {name: journal.read(name) for name in {row.worker for row in rows if row.worker}}
    batch: list[Outcome] = []
    never_started: list[Execution] = []
    settled = defaultdict(int)
    for row in rows:
        replay = replays.get(row.worker)
        if replay is not None and row.pk in replay.finished:
            batch.append(_settled(row, replay.finished[row.pk]))
            settled["finished, from the journal"] += 1
        elif replay is not None and replay.complete and row.status == "queued" and row.pk not in replay.started:
            never_started.append(row)
            settled["never started, planned again"] += 1
        else:
            lost = RunResult("lost", now, now, error=why)
            batch.append(
                _settled(row, lost)
                if row.job is None
                else outcomes.lost(RunRequest.for_execution(row), now=now, worker=row.worker, why=why)
            )
            settled["lost"] += 1
    batch.extend(outcomes.replanned(never_started, now=now))
    apply_outcomes(batch)
    for name, replay in replays.items():
        if replay is not None:
            transaction.on_commit(lambda name=name: _forget_journal(name))
    if rows:
        logger.info(
            "settled %d run(s) of %s: %s",
            len(rows),
            ", ".join(sorted(n for n in replays if n)),
            ", ".join(f"{n} {what}" for what, n in settled.items()),
        )
    return len(rows)


def _settled(row: Execution, result: RunResult) -> Outcome:
    if row.job is not None:
        return outcomes.finished(RunRequest.for_execution(row), result, worker=row.worker)
    # Its job was deleted: the row alone, no counters, no next attempt.
    fields = {"status": result.status, "finished_at": result.finished_at, "error": result.error}
    return Outcome(execution_id=row.pk, from_statuses=("queued", "running"), fields=fields)


def _forget_journal(node: str) -> None:
    """A dead node's journal goes once none of its runs is left unsettled."""
    if not Execution.objects.filter(worker=node, task_id="", status__in=["queued", "running"]).exists():
        journal.remove(node)
