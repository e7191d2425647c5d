"""Celery tasks: the "celery" executor. Thin: load the Execution by id, run it through the engine.

The scheduler queues the row (status `queued`) and sends its id; a worker claims it with a
conditional UPDATE (queued → running), so a redelivered message is a no-op, runs it exactly
as the scheduler's threads would (a child process when the job has a timeout), and writes
the outcome, retry and dead letter included, in one transaction.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

from celery import shared_task
from django.db import transaction

from scheduler_app.engine import outcomes
from scheduler_app.engine.runner import ChildRun, RunRequest, run_in_thread
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)


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
    result = ChildRun(request).run(started_at) if request.isolate else run_in_thread(request, started_at)
    with transaction.atomic():
        apply_outcomes([outcomes.finished(request, result, worker=worker)])
    return {"execution": execution_id, "status": result.status}
