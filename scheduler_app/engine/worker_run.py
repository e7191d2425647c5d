"""A run carried out by a worker outside the scheduler: a Celery worker (engine/celery_executor.py)
or a Django Tasks backend's worker (engine/tasks_executor.py). Both call `run_claimed`.

The scheduler queues the row (status `queued`, no node) and hands its id to the worker's
queue; the worker claims it with a conditional UPDATE (queued → running), so a redelivered
message is a no-op, runs it exactly as the scheduler's threads would (a child process when
the job has a timeout of its own, else under the default time limit), and writes the
outcome, retry and dead letter included, in one transaction (writer.apply_outcomes).

Cancelling: a queued row is cancelled by the service at once, and the claim then finds it
not queued. A running one is watched by this worker process: a watchdog thread reads the
row's `cancel_requested_at` every second and stops the run as the scheduler would (the
flag, then an exception raised into the body's thread, or a kill of its child process).

A worker that dies (docs/engine.md, "Celery runs when a worker dies"): the same watchdog
stamps `heartbeat_at` of the runs it executes every HEARTBEAT_SECONDS, and the scheduler's
leader marks a `running` row whose stamp went stale `lost` (engine/worker_loss.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from scheduler_app.engine import outcomes, recovery
from scheduler_app.engine.interrupt import RunControl, Watchdog, stuck_note
from scheduler_app.engine.runner import ChildRun, RunRequest, refused, run_in_thread
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 2.0  # well under SCHEDULER_CELERY_LOST_SECONDS (at least 5)
_watchdog: tuple[int, Watchdog] | None = None  # (pid, watchdog): a forked pool process starts its own
_watchdog_lock = threading.Lock()
_last_beat = 0.0  # monotonic time of this process's last heartbeat (only its watchdog thread writes it)
_gone: set[int] = set()  # runs being stopped because their row moved on (logged once)


def _to_stop(execution_ids: list[int]) -> list[int]:
    """The watchdog's poll, every second, over the runs this process executes: stamp their
    heartbeat (every HEARTBEAT_SECONDS, one UPDATE), and answer those to stop — asked to
    cancel, or no longer `running` because the scheduler recovered them as lost (their
    heartbeat went stale: a database outage, a body holding the GIL) and may be running
    them again: nothing keeps running once its row says `lost`."""
    global _last_beat
    try:
        now = time.monotonic()
        if now - _last_beat >= HEARTBEAT_SECONDS:
            Execution.objects.filter(pk__in=execution_ids, status="running").update(heartbeat_at=datetime.now(UTC))
            _last_beat = now
        rows = (
            Execution.objects.filter(pk__in=execution_ids)
            .filter(Q(cancel_requested_at__isnull=False) | ~Q(status="running"))
            .values_list("pk", "status")
        )
    except DatabaseError as exc:
        logger.warning("could not beat or read cancel requests (%s); trying again", exc)
        connection.close()
        return []
    for pk, status in rows:
        if status != "running" and pk not in _gone:
            _gone.add(pk)
            logger.warning("execution %s is %s in the database, no longer running here: stopping it", pk, status)
    return [pk for pk, _ in rows]


def _note_stuck(execution_id: int, control) -> None:
    # This worker cannot replace itself: the row says why the run goes on.
    Execution.objects.filter(pk=execution_id, status="running").update(error=stuck_note(control))


def watchdog() -> Watchdog:
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None or _watchdog[0] != os.getpid():
            dog = Watchdog(name="tempora-worker-watchdog", on_stuck=_note_stuck, poll=_to_stop)
            dog.start()
            _watchdog = (os.getpid(), dog)
        return _watchdog[1]


def record_lost(execution_id: int, why: str) -> None:
    """Mark a run this worker had claimed `lost` (its process died under it); the job's lost policy decides."""
    try:
        with transaction.atomic():
            recovery.mark_lost(
                Execution.objects.filter(pk=execution_id, status="running"), now=datetime.now(UTC), why=why
            )
    except DatabaseError:
        # The scheduler finds the row by its stale heartbeat instead.
        logger.exception("could not record execution %s lost; the scheduler will, from its heartbeat", execution_id)
        connection.close()


def run_claimed(execution_id: int, *, worker: str, task_id: str) -> dict | None:
    """Claim the queued row `execution_id` for `worker`, run it here, record its outcome.

    Answers {"execution": id, "status": ...}, or None when the row was not `queued` any more
    (a redelivery, or cancelled before it started): nothing was run or written then.
    `task_id` (the queue's own id of the message) is kept on the row; worker_loss.py knows
    worker runs by it.
    """
    started_at = datetime.now(UTC)
    claimed = Execution.objects.filter(pk=execution_id, status="queued").update(
        status="running",
        started_at=started_at,
        heartbeat_at=started_at,
        worker=worker,
        task_id=task_id,
    )
    if not claimed:
        logger.info("execution %s is not queued any more (redelivered or cancelled); nothing to do", execution_id)
        return None
    execution = Execution.objects.select_related("job").get(pk=execution_id)
    if execution.job is None:
        Execution.objects.filter(pk=execution_id).update(
            status="cancelled", finished_at=started_at, error="The job was deleted before it ran."
        )
        return {"execution": execution_id, "status": "cancelled"}
    request = RunRequest.for_execution(execution)
    result = refused(request, started_at)
    if result is None:
        dog = watchdog()
        stoppable = ChildRun(request) if request.isolate else RunControl(timeout=request.timeout)
        dog.watch(execution_id, stoppable)
        try:
            result = stoppable.run(started_at) if request.isolate else run_in_thread(request, started_at, stoppable)
        finally:
            dog.forget(execution_id)
            _gone.discard(execution_id)
    with transaction.atomic():
        apply_outcomes([outcomes.finished(request, result, worker=worker)])
    return {"execution": execution_id, "status": result.status}
