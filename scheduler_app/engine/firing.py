"""Turning APScheduler's run times into Execution rows: the executor APScheduler calls.

APScheduler calls `submit_job(job, run_times)` for every due job during a pass. We only
collect them; at the end of the pass, inside the pass's transaction, `record_fires` applies
the job's policies (misfire and catch-up, overlap, max runs) and inserts every row in one
batch. The unique (job, scheduled_for, attempt) constraint makes a second scheduler's
insert of the same occurrence a no-op: that, not the lease, is why nothing fires twice.
Runs start after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.executors.base import BaseExecutor
from django.db import IntegrityError, transaction
from django.db.models import Count

from scheduler_app import triggers
from scheduler_app.engine import policies
from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.runner import RunRequest
from scheduler_app.models import Execution, Job

logger = logging.getLogger(__name__)
_STATUS_FOR = {"start": "queued", "replace": "queued", "wait": "scheduled", "skip": "skipped"}


class TemporaExecutor(BaseExecutor):
    def __init__(self, *, dispatcher: Dispatcher, node: str, is_paused) -> None:
        super().__init__()
        self.dispatcher = dispatcher
        self.node = node
        self.is_paused = is_paused
        self._fires: list[tuple[object, list[datetime]]] = []
        self._ready: list[tuple[RunRequest, str]] = []
        self.exhausted: list[int] = []

    def submit_job(self, job, run_times) -> None:
        self._fires.append((job, list(run_times)))

    def _do_submit_job(self, job, run_times) -> None:  # required by BaseExecutor; submit_job replaces it
        raise NotImplementedError

    def flush(self) -> None:
        """Inside the pass's transaction: write the rows for everything that came due."""
        fires, self._fires = self._fires, []
        if fires:
            ready, exhausted = record_fires(
                fires, now=datetime.now(UTC), dispatcher=self.dispatcher, node=self.node, paused=self.is_paused()
            )
            self._ready.extend(ready)
            self.exhausted.extend(exhausted)

    def discard(self) -> None:
        self._fires, self._ready = [], []
        self.dispatcher.release_reservations()

    def launch_ready(self) -> None:
        """After commit: start what was admitted."""
        ready, self._ready = self._ready, []
        if ready:
            self.dispatcher.launch(ready)


def record_fires(fires, *, now: datetime, dispatcher: Dispatcher, node: str, paused: bool):
    """Insert the Execution rows for one pass; answer (runs to start, jobs that reached max_runs)."""
    jobs = Job.objects.in_bulk([int(apjob.id) for apjob, _ in fires])
    elsewhere = _celery_in_flight([job for job in jobs.values() if job.executor == "celery"])
    waiting = _waiting([job for job in jobs.values() if job.overlap_policy == "queue_one"])
    rows: list[Execution] = []
    decisions: dict[int, str] = {}
    next_runs: list[Job] = []
    exhausted: list[int] = []
    for apjob, run_times in fires:
        job = jobs.get(int(apjob.id))
        if job is None:
            continue  # deleted: the sync removes it from the store
        job.next_run_at = apjob.next_run_time
        next_runs.append(job)
        if job.paused or paused:
            continue
        runs_left = job.window.runs_left
        plan = policies.plan_occurrences(
            run_times, now=now, grace_seconds=job.misfire_grace_time, catch_up=job.catch_up
        )
        for occurrence in plan:
            if occurrence.outcome == "missed":
                rows.append(_missed(job, occurrence.scheduled_for, now))
                continue
            if runs_left is not None and runs_left <= 0:
                exhausted.append(job.pk)
                break
            decision = dispatcher.admit(
                job_id=job.pk, policy=job.overlap_policy, max_instances=job.max_instances,
                elsewhere=elsewhere.get(job.pk, 0), waiting=waiting.get(job.pk, 0),
            )
            if decision == "wait":
                waiting[job.pk] = waiting.get(job.pk, 0) + 1
            row = _occurrence(job, occurrence, decision, now, node)
            decisions[id(row)] = decision
            rows.append(row)
            if runs_left is not None:
                runs_left -= 1
    inserted = _insert(rows)
    if len(inserted) < len(rows):
        kept = {id(row) for row in inserted}
        for row in rows:
            if id(row) not in kept and decisions.get(id(row)) in ("start", "replace"):
                dispatcher.unreserve(row.job_id)
    if next_runs:
        Job.objects.bulk_update(next_runs, ["next_run_at"], batch_size=500)
    ready = [
        (_request(row, jobs[row.job_id]), decisions[id(row)])
        for row in inserted
        if row.status == "queued"
    ]
    skipped = sum(1 for row in inserted if row.status == "skipped")
    if skipped:
        logger.info("%d run(s) skipped by their overlap policy", skipped)
    return ready, exhausted


def _occurrence(job: Job, occurrence: policies.Occurrence, decision: str, now: datetime, node: str) -> Execution:
    status = _STATUS_FOR[decision]
    row = Execution(
        job=job, job_name=job.name, scheduled_for=occurrence.scheduled_for, run_after=occurrence.scheduled_for,
        status=status, created_at=now,
        reason=Execution.Reason.CATCH_UP if occurrence.outcome == "catch_up" else Execution.Reason.SCHEDULE,
    )
    if status == "queued":
        row.queued_at, row.worker = now, node
    elif status == "skipped":
        row.finished_at = now
        row.error = f"Skipped: the previous run is still going (overlap policy '{job.overlap_policy}')."
    return row


def _missed(job: Job, scheduled_for: datetime, now: datetime) -> Execution:
    late = int((now - scheduled_for).total_seconds())
    return Execution(
        job=job, job_name=job.name, scheduled_for=scheduled_for, run_after=scheduled_for,
        status=Execution.Status.MISSED, finished_at=now, created_at=now,
        error=(
            f"Missed: due at {triggers.format_utc(scheduled_for)}, {late}s late, past the {job.misfire_grace_time}s "
            f"grace time; catch-up policy '{job.catch_up}'."
        ),
    )


def _insert(rows: list[Execution]) -> list[Execution]:
    """One INSERT for the batch; if another scheduler already wrote some occurrence, row by row."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            return Execution.objects.bulk_create(rows)
    except IntegrityError:
        pass
    inserted = []
    for row in rows:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
            inserted.append(row)
        except IntegrityError:
            logger.info("occurrence %s of %s was already recorded; not firing it again", row.scheduled_for, row.job_name)
    return inserted


def _request(row: Execution, job: Job) -> RunRequest:
    row.job = job
    return RunRequest.for_execution(row)


def _waiting(jobs: list[Job]) -> dict[int, int]:
    """Runs queued behind a running one (overlap policy queue_one): one query, only if needed."""
    if not jobs:
        return {}
    counts = Execution.objects.filter(job__in=jobs, status="scheduled").values("job_id").annotate(n=Count("id"))
    return {entry["job_id"]: entry["n"] for entry in counts}


def _celery_in_flight(jobs: list[Job]) -> dict[int, int]:
    """Runs of Celery jobs queued or running anywhere: one query, only if the pass has any."""
    if not jobs:
        return {}
    counts = (
        Execution.objects.filter(job__in=jobs, status__in=["queued", "running"])
        .values("job_id").annotate(n=Count("id"))
    )
    return {entry["job_id"]: entry["n"] for entry in counts}
