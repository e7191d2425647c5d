"""Recovering what dead scheduler nodes left behind.

A node whose heartbeat is older than the lease is dead (even after `kill -9`). Its runs
still marked queued or running never finish here: `mark_lost` settles them — from the dead
node's journal when it is on this host (finished runs recorded as finished, runs that never
started planned again), else `lost`, run again or not as the job's lost policy says. Celery
runs are not touched here: they have no node, and their worker's death is found by their
own heartbeat (engine/worker_loss.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction

from scheduler_app.engine import journal, outcomes
from scheduler_app.engine.dispatch import lost_outcome
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import Outcome, apply_outcomes
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
            batch.append(_settled(row, lost) if row.job is None else
                         lost_outcome(RunRequest.for_execution(row), now=now, worker=row.worker, why=why))
            settled["lost"] += 1
    batch.extend(outcomes.replanned(never_started, now=now))
    apply_outcomes(batch)
    for name, replay in replays.items():
        if replay is not None:
            transaction.on_commit(lambda name=name: _forget_journal(name))
    if rows:
        logger.info("settled %d run(s) of %s: %s", len(rows), ", ".join(sorted(n for n in replays if n)),
                    ", ".join(f"{n} {what}" for what, n in settled.items()))
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
