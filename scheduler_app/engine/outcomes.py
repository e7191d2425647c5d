"""What a finished run means for the database: its final status, a retry, or a dead letter."""

from __future__ import annotations

import logging
from datetime import datetime

from scheduler_app.engine import policies
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import Outcome
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)
FAILED = ("failed", "timed_out", "lost")


def started(request: RunRequest, *, started_at: datetime, worker: str) -> Outcome:
    return Outcome(
        execution_id=request.execution_id,
        from_statuses=("queued",),
        fields={"status": "running", "started_at": started_at, "worker": worker},
    )


def finished(request: RunRequest, result: RunResult, *, worker: str) -> Outcome:
    """The final status of a run, plus the next attempt when it failed with retries left."""
    new_rows: list[Execution] = []
    dead_letter = False
    if result.status in FAILED:
        retry = retry_row(request, failed_at=result.finished_at)
        if retry is not None:
            new_rows.append(retry)
        else:
            dead_letter = True  # failed with no retries left
    # Failures are logged one by one; successes at DEBUG (the pass logs a summary of what it
    # fired): at a thousand runs a second, a line per success would flood the log.
    if result.status in FAILED or logger.isEnabledFor(logging.DEBUG):
        log = logger.warning if result.status in FAILED else logger.debug
        log("run %s of %s (attempt %d) %s in %.3fs%s", request.execution_id, request.job_name, request.attempt,
            result.status, (result.finished_at - result.started_at).total_seconds(),
            f": {result.error}" if result.error else "")
    return Outcome(
        execution_id=request.execution_id,
        from_statuses=("queued", "running"),
        fields={
            "status": result.status, "started_at": result.started_at, "finished_at": result.finished_at,
            "result": result.result, "output": result.output, "error": result.error,
            "traceback": result.traceback, "worker": worker, "dead_letter": dead_letter,
        },
        job_id=request.job_id,
        counts_as_run=True,
        failed=result.status in FAILED,
        new_rows=new_rows,
    )


def cancelled_before_start(request: RunRequest, *, now: datetime, worker: str) -> Outcome:
    """A run cancelled while it waited for a worker: it never started, so no start time."""
    outcome = finished(request, RunResult("cancelled", now, now, error="Cancelled before it started."), worker=worker)
    outcome.fields.pop("started_at")
    return outcome


def retry_row(request: RunRequest, *, failed_at: datetime) -> Execution | None:
    """The next attempt as a new row with its run_after, so retries survive restarts."""
    if not policies.should_retry(attempt=request.attempt, max_retries=request.max_retries):
        return None
    delay = policies.retry_delay(attempt=request.attempt, backoff=request.retry_backoff, cap=request.retry_backoff_max)
    return Execution(
        job_id=request.job_id, job_name=request.job_name, trigger_id=request.trigger_id,
        scheduled_for=request.scheduled_for or failed_at, run_after=failed_at + delay,
        attempt=request.attempt + 1, reason=Execution.Reason.RETRY, created_at=failed_at,
        args=request.args_override, kwargs=request.kwargs_override,
    )
