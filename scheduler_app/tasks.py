"""Celery tasks: the "celery" executor. Thin: load the Execution by id, run it through the engine.

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
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime

from celery import shared_task
from django.db import DatabaseError, connection, transaction

from scheduler_app.engine import outcomes
from scheduler_app.engine.interrupt import RunControl, Watchdog, stuck_note
from scheduler_app.engine.runner import ChildRun, RunRequest, refused, run_in_thread
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)
_watchdog: tuple[int, Watchdog] | None = None  # (pid, watchdog): a forked pool process starts its own
_watchdog_lock = threading.Lock()


def _asked_to_cancel(execution_ids: list[int]) -> list[int]:
    try:
        return list(Execution.objects.cancel_requested().filter(pk__in=execution_ids).values_list("pk", flat=True))
    except DatabaseError as exc:
        logger.warning("could not read cancel requests (%s); trying again", exc)
        connection.close()
        return []


def _note_stuck(execution_id: int, control) -> None:
    # This worker cannot replace itself: the row says why the run goes on.
    Execution.objects.filter(pk=execution_id, status="running").update(error=stuck_note(control))


def watchdog() -> Watchdog:
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None or _watchdog[0] != os.getpid():
            dog = Watchdog(name="tempora-celery-watchdog", on_stuck=_note_stuck, poll=_asked_to_cancel)
            dog.start()
            _watchdog = (os.getpid(), dog)
        return _watchdog[1]


def send_to_celery(requests: list[RunRequest]) -> None:
    for request in requests:
        run_execution.apply_async(args=[request.execution_id], task_id=f"tempora-{request.execution_id}",
                                  priority=request.priority)


@shared_task(name="tempora.run_execution", acks_late=True, ignore_result=False)
def run_execution(execution_id: int) -> dict:
    worker = f"celery@{socket.gethostname()}"
    started_at = datetime.now(UTC)
    claimed = Execution.objects.filter(pk=execution_id, status="queued").update(
        status="running", started_at=started_at, worker=worker, task_id=f"tempora-{execution_id}"
    )
    if not claimed:
        logger.info("execution %s is not queued any more (redelivered or cancelled); nothing to do", execution_id)
        return {"execution": execution_id, "status": "not-claimed"}
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
    with transaction.atomic():
        apply_outcomes([outcomes.finished(request, result, worker=worker)])
    return {"execution": execution_id, "status": result.status}
