"""The "celery" executor: its Celery task, thin: load the Execution by id, run it through the engine.

The scheduler queues the row (status `queued`) and sends its id; a worker claims it with a
conditional UPDATE (queued → running), so a redelivered message is a no-op, runs it exactly
as the scheduler's threads would (a child process when the job has a timeout of its own,
else under the default time limit), and writes the outcome, retry and dead letter included,
in one transaction.

Cancelling: a queued row is cancelled by the service at once, and the claim then finds it
not queued. A running one is watched by this worker process: a watchdog thread reads the
row's `cancel_requested_at` every second and stops the run as the scheduler would (the
flag, then an exception raised into the body's thread, or a kill of its child process).
Celery's `revoke(terminate=True)` is not used: it signals the whole pool process, which
then cannot record what happened to the run.

A worker that dies (docs/engine.md, "Celery runs when a worker dies"): the same watchdog
stamps `heartbeat_at` of the runs it executes every HEARTBEAT_SECONDS, and the scheduler's
leader marks a `running` row whose stamp went stale `lost` (engine/worker_loss.py). A pool
process killed under a live worker is seen by the worker's main process, which marks its
row `lost` at once (ExecutionRequest). Either way recovery.mark_lost applies the job's lost
policy; the message itself is never what runs a body again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import shared_task
from celery.exceptions import Ignore
from celery.signals import worker_init
from celery.worker.request import Request
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
        rows = Execution.objects.filter(pk__in=execution_ids).filter(
            Q(cancel_requested_at__isnull=False) | ~Q(status="running")
        ).values_list("pk", "status")
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
            dog = Watchdog(name="tempora-celery-watchdog", on_stuck=_note_stuck, poll=_to_stop)
            dog.start()
            _watchdog = (os.getpid(), dog)
        return _watchdog[1]


def send_to_celery(requests: list[RunRequest]) -> None:
    for request in requests:
        run_execution.apply_async(args=[request.execution_id], task_id=f"tempora-{request.execution_id}",
                                  priority=request.priority)


class ExecutionRequest(Request):
    """A run_execution message as the worker's main process holds it.

    When the pool process running it dies (`kill -9`, the OOM killer, a cold shutdown), the
    main process learns it at once (WorkerLostError) and marks the row `lost` then, rather
    than after SCHEDULER_CELERY_LOST_SECONDS. The message is then requeued
    (reject_on_worker_lost): a row still `queued` (the process died before its claim) runs
    from it; a claimed one is not claimed again.
    """

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        exc = exc.exc if isinstance(exc, ExceptionWithTraceback) else exc
        died = isinstance(exc, WorkerLostError) or (
            isinstance(exc, SystemExit | KeyboardInterrupt) and not (self._already_cancelled or self._already_revoked)
        )
        if died:
            why = str(exc) or type(exc).__name__
            _record_lost(self.args[0], f"Lost: the Celery worker process running it died ({why})")
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def _record_lost(execution_id: int, why: str) -> None:
    try:
        with transaction.atomic():
            recovery.mark_lost(Execution.objects.filter(pk=execution_id, status="running"),
                               now=datetime.now(UTC), why=why)
    except DatabaseError:
        # The scheduler finds the row by its stale heartbeat instead.
        logger.exception("could not record execution %s lost; the scheduler will, from its heartbeat", execution_id)
        connection.close()


@worker_init.connect
def _check_worker_settings(sender=None, **_) -> None:
    prefetch = getattr(sender, "prefetch_multiplier", 1)
    if prefetch != 1:
        logger.warning("worker_prefetch_multiplier is %s: runs this worker holds but has not started wait for it, "
                       "and for the broker's visibility timeout if it dies; Tempora expects 1 "
                       "(README, \"Celery workers\")", prefetch)


# acks_late: a message whose worker died before the claim is delivered again, so a queued row
# is never stranded; a redelivery of a claimed row is a no-op (the claim needs `queued`).
# reject_on_worker_lost: the same for a pool process that died (Celery would ack it otherwise).
# Re-running a body that was cut short is recovery's decision (the job's lost policy), never
# the broker's.
@shared_task(name="tempora.run_execution", acks_late=True, reject_on_worker_lost=True, ignore_result=False,
             Request=ExecutionRequest)
def run_execution(execution_id: int) -> dict:
    worker = f"celery@{socket.gethostname()}"
    started_at = datetime.now(UTC)
    claimed = Execution.objects.filter(pk=execution_id, status="queued").update(
        status="running", started_at=started_at, heartbeat_at=started_at, worker=worker,
        task_id=f"tempora-{execution_id}",
    )
    if not claimed:
        logger.info("execution %s is not queued any more (redelivered or cancelled); nothing to do", execution_id)
        raise Ignore()  # acknowledged, and Celery's record of the task (the real run's) left alone
    execution = Execution.objects.select_related("job").get(pk=execution_id)
    if execution.job is None:
        Execution.objects.filter(pk=execution_id).update(status="cancelled", finished_at=started_at,
                                                          error="The job was deleted before it ran.")
        return {"execution": execution_id, "status": "cancelled"}
    request = RunRequest.for_execution(execution)
    result = refused(request, started_at)
    if result is not None:
        with transaction.atomic():
            apply_outcomes([outcomes.finished(request, result, worker=worker)])
        return {"execution": execution_id, "status": result.status}
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
