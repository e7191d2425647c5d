"""The "django_tasks" executor: runs enqueued through Django's Tasks framework (django.tasks on
Django 6, the django-tasks backport on 5.2), on the backend TEMPORA['TASKS_BACKEND'] names.

The framework has no scheduler; this is it. The scheduler queues the row (status `queued`,
no node) and enqueues `run_execution` with the row's id on that backend. Whatever worker
the backend has (django-tasks-db's `manage.py db_worker`, an RQ worker, or the
ImmediateBackend, which runs it inline in the scheduler at once) then calls it, and it does
what a Celery worker does (engine/worker_run.py): claims the row (queued → running, so a
second delivery is a no-op), runs the job's task as the scheduler would, its own timeout,
cancel requests and heartbeat included, and records the outcome, retries and dead letter
included. The job's task is called as a plain function even when it is itself a Django
`@task` (registry.py): retries and outcomes are Tempora's, not the backend's; the backend's
own result says only that our wrapper ran.

A worker that dies mid-run stops beating: the leader marks the row `lost` after
SCHEDULER_CELERY_LOST_SECONDS, as for Celery (engine/worker_loss.py). A row whose enqueue
failed (no such backend, its queue refused it) is recorded `failed` at once with the reason,
so a job's retries still apply and nothing stays `queued` for a worker that never comes.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

from scheduler_app import tasks_framework
from scheduler_app.conf import tempora_settings
from scheduler_app.engine import outcomes
from scheduler_app.engine.outcomes import Outcome
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.worker_run import run_claimed

logger = logging.getLogger(__name__)

_framework = tasks_framework.framework()
if _framework is None:  # only imported when a run goes to this executor, or by a worker
    raise ImportError(tasks_framework.backend_problem())


# takes_context: the backend's own id of the result is kept on the row (Execution.task_id), so
# its record and ours can be matched; worker_loss.py also knows worker runs by it.
@_framework.task(takes_context=True, backend=tempora_settings.TASKS_BACKEND)
def run_execution(context, execution_id: int) -> dict:
    done = run_claimed(execution_id, worker=f"django_tasks@{socket.gethostname()}", task_id=str(context.task_result.id))
    # Not queued any more: a second delivery, or a run cancelled before it started.
    return done or {"execution": execution_id, "status": "not queued"}


def send_to_tasks_backend(requests: list[RunRequest]) -> list[Outcome]:
    """Enqueue each run on the configured backend; answer the outcomes of those that could not be."""
    failed = []
    alias = tempora_settings.TASKS_BACKEND
    for request in requests:
        try:
            backend = _framework.task_backends[alias]
            task = run_execution.using(backend=alias)
            if backend.supports_priority:
                task = task.using(priority=request.priority)  # 1-10, within the framework's -100..100
            task.enqueue(request.execution_id)
        except Exception as exc:  # any refusal of the backend: the row must not wait for nobody
            logger.exception("could not enqueue execution %s on Tasks backend %r", request.execution_id, alias)
            now = datetime.now(UTC)
            result = RunResult(
                "failed", now, now, error=f"Not enqueued on the Tasks backend {alias!r}: {type(exc).__name__}: {exc}"
            )
            failed.append(outcomes.finished(request, result, worker=""))
    return failed
