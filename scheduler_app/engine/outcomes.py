"""What a finished run means for the database: its final status, a retry, or a dead letter.

A `lost` run (its scheduler or worker died, or stopped, while it ran) follows the job's lost
policy (Job.lost_policy, like Quartz's "requests recovery"): `retry` runs it again — a retry
while retries are left, else one `recovery` run — so the body runs at least once; `record`
only records it, so a body never runs twice; `auto` is `retry` for a job with retries, else
`record`. A run that provably never started is no lost run: it is planned again (replanned).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from scheduler_app import triggers
from scheduler_app.engine import policies
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import Outcome
from scheduler_app.models import Execution, Job

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
        again = next_attempt(request, status=result.status, failed_at=result.finished_at)
        if again is not None:
            new_rows.append(again)
        else:
            dead_letter = True  # failed with no retries left, or lost under `record`
    # Failures are logged one by one; successes at DEBUG (the pass logs a summary of what it
    # fired): at a thousand runs a second, a line per success would flood the log.
    if result.status in FAILED or logger.isEnabledFor(logging.DEBUG):
        log = logger.warning if result.status in FAILED else logger.debug
        log(
            "run %s of %s (attempt %d) %s in %.3fs%s",
            request.execution_id,
            request.job_name,
            request.attempt,
            result.status,
            (result.finished_at - result.started_at).total_seconds(),
            f": {result.error}" if result.error else "",
        )
    return Outcome(
        execution_id=request.execution_id,
        from_statuses=("queued", "running"),
        fields={
            "status": result.status,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "result": result.result,
            "output": result.output,
            "error": result.error,
            "traceback": result.traceback,
            "worker": worker,
            "dead_letter": dead_letter,
        },
        job_id=request.job_id,
        counts_as_run=True,
        failed=result.status in FAILED,
        new_rows=new_rows,
    )


def lost(request: RunRequest, *, now: datetime, worker: str, why: str) -> Outcome:
    """A run that was in flight when its scheduler stopped or died: `lost`, run again or not
    as the job's lost policy says (next_attempt)."""
    outcome = finished(request, RunResult("lost", now, now, error=why), worker=worker)
    outcome.fields.pop("started_at")  # keep the real start time on the row
    return outcome


def cancelled_before_start(request: RunRequest, *, now: datetime, worker: str) -> Outcome:
    """A run cancelled while it waited for a worker: it never started, so no start time."""
    outcome = finished(request, RunResult("cancelled", now, now, error="Cancelled before it started."), worker=worker)
    outcome.fields.pop("started_at")
    return outcome


def lost_policy(request: RunRequest) -> str:
    """`retry` or `record`: what a lost run of this job means (`auto` decided by its retries)."""
    if request.lost_policy == Job.LostPolicy.AUTO:
        return Job.LostPolicy.RETRY if request.max_retries else Job.LostPolicy.RECORD
    return request.lost_policy


def next_attempt(request: RunRequest, *, status: str, failed_at: datetime) -> Execution | None:
    """The attempt after a failed one: a retry while retries are left; for a lost run, what
    the job's lost policy says."""
    if status != "lost":
        return retry_row(request, failed_at=failed_at)
    if lost_policy(request) == Job.LostPolicy.RECORD:
        return None  # at most once: a body cut short is never run again
    return retry_row(request, failed_at=failed_at) or recovery_row(request, failed_at=failed_at)


def recovery_row(request: RunRequest, *, failed_at: datetime) -> Execution | None:
    """At least once, with no retries left: one more attempt, at once. A recovery run that is
    lost in turn gets none, so a job that kills its scheduler every time cannot loop forever."""
    if request.reason == Execution.Reason.RECOVERY:
        return None
    return _next_row(request, failed_at=failed_at, run_after=failed_at, reason=Execution.Reason.RECOVERY)


def retry_row(request: RunRequest, *, failed_at: datetime) -> Execution | None:
    """The next attempt as a new row with its run_after, so retries survive restarts."""
    if not policies.should_retry(attempt=request.attempt, max_retries=request.max_retries):
        return None
    delay = policies.retry_delay(attempt=request.attempt, backoff=request.retry_backoff, cap=request.retry_backoff_max)
    return _next_row(request, failed_at=failed_at, run_after=failed_at + delay, reason=Execution.Reason.RETRY)


def _next_row(request: RunRequest, *, failed_at: datetime, run_after: datetime, reason: str) -> Execution:
    return Execution(
        job_id=request.job_id,
        job_name=request.job_name,
        trigger_id=request.trigger_id,
        scheduled_for=request.scheduled_for or failed_at,
        run_after=run_after,
        attempt=request.attempt + 1,
        reason=reason,
        created_at=failed_at,
        args=request.args_override,
        kwargs=request.kwargs_override,
    )


# Runs that never started ---------------------------------------------------------------


def replanned(rows: list[Execution], *, now: datetime) -> list[Outcome]:
    """Queued runs of a dead or stopping scheduler that provably never started (no body ran,
    so under either lost policy): claimable again at their time, for the next leader, or
    `missed` where the pass would have said so — past the job's grace time, by its catch-up
    policy. A run whose cancel was asked for, or whose job is gone, is cancelled instead.
    `rows` are Executions with their job loaded."""
    planned: list[Outcome] = []
    occurrences: dict[int, list[Execution]] = defaultdict(list)
    for row in rows:
        if row.job is None or row.cancel_requested_at is not None:
            why = "The job was deleted before this run started." if row.job is None else "Cancelled before it started."
            planned.append(_never_started(row, {"status": "cancelled", "finished_at": now, "error": why}))
        elif row.reason in (Execution.Reason.SCHEDULE, Execution.Reason.CATCH_UP):
            occurrences[row.job_id].append(row)
        else:
            planned.append(_never_started(row, AGAIN))  # run now, a retry: they wait in the database anyway
    for job_rows in occurrences.values():
        job = job_rows[0].job
        by_time = {row.scheduled_for: row for row in job_rows}
        plan = policies.plan_occurrences(
            sorted(by_time), now=now, grace_seconds=job.misfire_grace_time, catch_up=job.catch_up
        )
        for occurrence in plan:
            row = by_time[occurrence.scheduled_for]
            if occurrence.outcome == "missed":
                fields = {"status": "missed", "finished_at": now, "error": missed_error(job, row.scheduled_for, now)}
                planned.append(_never_started(row, fields))
            else:
                planned.append(_never_started(row, AGAIN))
    return planned


# A run that never started, handed back: claimable again by whichever node leads.
AGAIN = {"status": "scheduled", "worker": "", "queued_at": None}


def _never_started(row: Execution, fields: dict) -> Outcome:
    return Outcome(execution_id=row.pk, from_statuses=("queued",), fields=dict(fields))


def missed_error(job: Job, scheduled_for: datetime, now: datetime) -> str:
    late = int((now - scheduled_for).total_seconds())
    return (
        f"Missed: due at {triggers.format_utc(scheduled_for)}, {late}s late, past the {job.misfire_grace_time}s "
        f"grace time; catch-up policy '{job.catch_up}'."
    )
