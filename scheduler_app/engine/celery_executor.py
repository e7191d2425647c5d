"""The "celery" executor: its Celery task, thin: the row's id in, engine/worker_run.py does the run.

The scheduler queues the row (status `queued`) and sends its id; a worker claims it, runs it
and records its outcome (`worker_run.run_claimed`: the claim, the watchdog that reads cancel
requests and stamps heartbeats, the outcome). Celery's `revoke(terminate=True)` is not used
to cancel: it signals the whole pool process, which then cannot record what happened to the
run.

A worker that dies (docs/engine.md, "Celery runs when a worker dies"): a pool process killed
under a live worker is seen by the worker's main process, which marks its row `lost` at once
(ExecutionRequest); a worker killed whole stops beating, and the scheduler's leader marks its
runs `lost` (engine/worker_loss.py). Either way recovery.mark_lost applies the job's lost
policy; the message itself is never what runs a body again.
"""

from __future__ import annotations

import logging
import socket

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import shared_task
from celery.exceptions import Ignore
from celery.signals import worker_init
from celery.worker.request import Request

from scheduler_app.engine.runner import RunRequest
from scheduler_app.engine.worker_run import record_lost, run_claimed, watchdog

logger = logging.getLogger(__name__)

__all__ = ["ExecutionRequest", "run_execution", "send_to_celery", "watchdog"]


def send_to_celery(requests: list[RunRequest]) -> None:
    for request in requests:
        run_execution.apply_async(
            args=[request.execution_id], task_id=f"tempora-{request.execution_id}", priority=request.priority
        )


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
            record_lost(self.args[0], f"Lost: the Celery worker process running it died ({why})")
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


@worker_init.connect
def _check_worker_settings(sender=None, **_) -> None:
    prefetch = getattr(sender, "prefetch_multiplier", 1)
    if prefetch != 1:
        logger.warning(
            "worker_prefetch_multiplier is %s: runs this worker holds but has not started wait for it, "
            "and for the broker's visibility timeout if it dies; Tempora expects 1 "
            '(README, "Celery workers")',
            prefetch,
        )


# acks_late: a message whose worker died before the claim is delivered again, so a queued row
# is never stranded; a redelivery of a claimed row is a no-op (the claim needs `queued`).
# reject_on_worker_lost: the same for a pool process that died (Celery would ack it otherwise).
# Re-running a body that was cut short is recovery's decision (the job's lost policy), never
# the broker's.
@shared_task(
    name="tempora.run_execution",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=False,
    Request=ExecutionRequest,
)
def run_execution(execution_id: int) -> dict:
    done = run_claimed(execution_id, worker=f"celery@{socket.gethostname()}", task_id=f"tempora-{execution_id}")
    if done is None:
        raise Ignore()  # acknowledged, and Celery's record of the task (the real run's) left alone
    return done
