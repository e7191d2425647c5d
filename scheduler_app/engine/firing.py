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
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.executors.base import BaseExecutor
from django.db import IntegrityError, transaction
from django.db.models import Count
from django_apscheduler.models import DjangoJob

from scheduler_app import triggers
from scheduler_app.engine import outcomes, policies
from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.runner import RunRequest
from scheduler_app.engine.sql import insert_many, update_many
from scheduler_app.models import Execution, Job

logger = logging.getLogger(__name__)
_STATUS_FOR = {"start": "queued", "replace": "queued", "follow": "queued", "wait": "scheduled", "skip": "skipped"}


class TemporaExecutor(BaseExecutor):
    def __init__(self, *, dispatcher: Dispatcher, node: str, is_paused) -> None:
        super().__init__()
        self.dispatcher = dispatcher
        self.node = node
        self.is_paused = is_paused
        self._fires: list[tuple[object, list[datetime]]] = []
        self._ready: list[tuple[RunRequest, str]] = []
        self.exhausted: list[int] = []
        self.jobs = JobCache()

    def submit_job(self, job, run_times) -> None:
        self._fires.append((job, list(run_times)))

    def _do_submit_job(self, job, run_times) -> None:  # required by BaseExecutor; submit_job replaces it
        raise NotImplementedError

    def flush(self, now: datetime | None = None) -> None:
        """Inside the pass's transaction: write the rows for everything that came due."""
        fires, self._fires = self._fires, []
        if fires:
            ready, exhausted = record_fires(
                fires,
                now=now or datetime.now(UTC),
                dispatcher=self.dispatcher,
                node=self.node,
                paused=self.is_paused(),
                jobs=self.jobs,
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


@dataclass(slots=True)
class NewRow:
    """One Execution row to insert, as plain values (model instances cost too much here)."""

    job: Job
    scheduled_for: datetime
    status: str
    reason: str
    now: datetime
    worker: str = ""
    error: str = ""
    decision: str = ""
    pk: int | None = None

    COLUMNS = (
        "job",
        "job_name",
        "scheduled_for",
        "run_after",
        "queued_at",
        "finished_at",
        "status",
        "attempt",
        "reason",
        "output",
        "error",
        "traceback",
        "worker",
        "task_id",
        "dead_letter",
        "created_at",
    )

    def values(self) -> tuple:
        queued = self.now if self.status == "queued" else None
        finished = self.now if self.status in ("missed", "skipped") else None
        return (
            self.job.pk,
            self.job.name,
            self.scheduled_for,
            self.scheduled_for,
            queued,
            finished,
            self.status,
            1,
            self.reason,
            "",
            self.error,
            "",
            self.worker,
            "",
            False,
            self.now,
        )


class JobCache:
    """Job rows for the pass, re-read only when their `updated_at` moved.

    Every pass must see deletions and pauses at once, so it always asks the database which
    jobs exist and when each last changed (a light query); full rows, with their JSON
    arguments, are loaded only for jobs that changed since they were cached.
    """

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}

    def load(self, ids: list[int]) -> dict[int, Job]:
        stamps = dict(Job.objects.filter(pk__in=ids).values_list("pk", "updated_at"))
        stale = [pk for pk, at in stamps.items() if pk not in self._jobs or self._jobs[pk].updated_at != at]
        if stale:
            self._jobs.update(Job.objects.in_bulk(stale))
        for pk in set(self._jobs) - set(stamps):
            if pk in ids:
                del self._jobs[pk]  # deleted
        return {pk: self._jobs[pk] for pk in stamps if pk in self._jobs}


def record_fires(
    fires, *, now: datetime, dispatcher: Dispatcher, node: str, paused: bool, jobs: JobCache | None = None
):
    """Insert the Execution rows for one pass; answer (runs to start, jobs that reached max_runs)."""
    jobs = (jobs or JobCache()).load([int(apjob.id) for apjob, _ in fires])
    elsewhere = worker_runs_in_flight([job for job in jobs.values() if job.runs_on_workers])
    waiting = _waiting([job for job in jobs.values() if job.overlap_policy == "queue_one"])
    rows: list[NewRow] = []
    gone: list[str] = []
    next_runs: list[tuple[datetime | None, int]] = []
    exhausted: list[int] = []
    for apjob, run_times in fires:
        job = jobs.get(int(apjob.id))
        if job is None:
            gone.append(apjob.id)  # deleted: it never fires; its stored schedule goes too
            continue
        if job.paused or paused:
            next_runs.append((apjob.next_run_time, job.pk))
            continue
        gap = getattr(apjob, "gap", None)
        if gap is not None:
            rows.append(_gap(job, gap, now))
        runs_left = job.window.runs_left
        plan = policies.plan_occurrences(
            run_times, now=now, grace_seconds=job.misfire_grace_time, catch_up=job.catch_up
        )
        # Only a run from before this pass can make the overlap policy skip one: several runs
        # due in one pass (catch-up, a backlog within the grace time) queue behind each other.
        busy_before = dispatcher.in_flight(job.pk) + elsewhere.get(job.pk, 0) > 0
        head = None  # the decision for this job's first run in this pass
        for occurrence in plan:
            if occurrence.outcome == "missed":
                rows.append(_missed(job, occurrence.scheduled_for, now))
                continue
            if runs_left is not None and runs_left <= 0:
                exhausted.append(job.pk)
                break
            if head in ("start", "replace", "follow") and job.executor == Job.Executor.THREAD:
                # More runs of this job due in this pass (a backlog, catch-up): they follow
                # the first in the same worker, one after another, never skipped.
                decision = "follow"
                dispatcher.reserve(job.pk)
            else:
                decision = dispatcher.admit(
                    job_id=job.pk,
                    policy=job.overlap_policy,
                    max_instances=job.max_instances,
                    elsewhere=elsewhere.get(job.pk, 0),
                    waiting=waiting.get(job.pk, 0),
                )
                if decision == "skip" and (occurrence.outcome == "catch_up" or not busy_before):
                    decision = "wait"  # due together with a run of this pass: queue, not skip
            head = decision
            if decision == "wait":
                waiting[job.pk] = waiting.get(job.pk, 0) + 1
            rows.append(_occurrence(job, occurrence, decision, now, node))
            if runs_left is not None and decision != "skip":  # a skipped run does not count (Job.runs_used)
                runs_left -= 1
        if runs_left is not None and runs_left <= 0:
            # Its last allowed run is recorded: no next run, whatever the trigger says.
            next_runs.append((None, job.pk))
            if job.pk not in exhausted:
                exhausted.append(job.pk)
        else:
            next_runs.append((apjob.next_run_time, job.pk))
    inserted = _insert(rows)
    if gone:
        DjangoJob.objects.filter(id__in=gone).delete()
    for row in rows:
        if row.pk is None and row.decision in ("start", "replace", "follow"):
            dispatcher.unreserve(row.job.pk)
    update_many(Job, ["next_run_at"], next_runs)
    ready = [
        (
            RunRequest.for_job(row.job, execution_id=row.pk, scheduled_for=row.scheduled_for, reason=row.reason),
            row.decision,
        )
        for row in inserted
        if row.status == "queued"
    ]
    _log_pass(inserted)
    return ready, exhausted


def _log_pass(inserted: list[NewRow]) -> None:
    """One line per pass: what fired, what was skipped or missed, naming a few jobs."""
    if not inserted:
        return
    counts: dict[str, int] = {}
    for row in inserted:
        counts[row.status] = counts.get(row.status, 0) + 1
    names = sorted({row.job.name for row in inserted})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    logger.info("fired %s: %s", shown, summary)


def _occurrence(job: Job, occurrence: policies.Occurrence, decision: str, now: datetime, node: str) -> NewRow:
    status = _STATUS_FOR[decision]
    reason = Execution.Reason.CATCH_UP if occurrence.outcome == "catch_up" else Execution.Reason.SCHEDULE
    row = NewRow(job, occurrence.scheduled_for, status, reason, now, decision=decision)
    if status == "queued" and job.executor == Job.Executor.THREAD:
        row.worker = node  # recovery marks this node's thread runs lost if it dies; Celery's are the broker's
    elif status == "skipped":
        row.error = f"Skipped: the previous run is still going (overlap policy '{job.overlap_policy}')."
    return row


def _missed(job: Job, scheduled_for: datetime, now: datetime) -> NewRow:
    error = outcomes.missed_error(job, scheduled_for, now)
    return NewRow(job, scheduled_for, Execution.Status.MISSED, Execution.Reason.SCHEDULE, now, error=error)


def _gap(job: Job, gap: tuple[datetime, datetime], now: datetime) -> NewRow:
    first, resume = gap
    error = (
        f"Missed: the occurrences from {triggers.format_utc(first)} until before {triggers.format_utc(resume)} "
        "passed while no scheduler was running; this row stands for all of them."
    )
    return NewRow(job, first, Execution.Status.MISSED, Execution.Reason.SCHEDULE, now, error=error)


def _insert(rows: list[NewRow]) -> list[NewRow]:
    """One INSERT for the batch; if another scheduler already wrote some occurrence, row by row."""
    if not rows:
        return []
    # In (job, time) order: two passes inserting the same occurrences (a deposed leader's and
    # the new one's) wait on each other's unique-index entries in one order, never in a cycle.
    rows = sorted(rows, key=lambda row: (row.job.pk, row.scheduled_for))
    try:
        with transaction.atomic():
            ids = insert_many(Execution, NewRow.COLUMNS, [row.values() for row in rows])
        for row, pk in zip(rows, ids, strict=True):
            row.pk = pk
        return rows
    except IntegrityError:
        pass
    inserted = []
    for row in rows:
        try:
            with transaction.atomic():
                row.pk = insert_many(Execution, NewRow.COLUMNS, [row.values()])[0]
            inserted.append(row)
        except IntegrityError:
            logger.info(
                "occurrence %s of %s was already recorded; not firing it again", row.scheduled_for, row.job.name
            )
    return inserted


def _waiting(jobs: list[Job]) -> dict[int, int]:
    """Runs queued behind a running one (overlap policy queue_one): one query, only if needed."""
    if not jobs:
        return {}
    counts = Execution.objects.filter(job__in=jobs, status="scheduled").values("job_id").annotate(n=Count("id"))
    return {entry["job_id"]: entry["n"] for entry in counts}


def worker_runs_in_flight(jobs: list[Job]) -> dict[int, int]:
    """Runs of worker jobs (Celery, Django Tasks) queued or running anywhere: one query, only if the pass has any."""
    if not jobs:
        return {}
    counts = (
        Execution.objects.filter(job__in=jobs, status__in=["queued", "running"])
        .values("job_id")
        .annotate(n=Count("id"))
    )
    return {entry["job_id"]: entry["n"] for entry in counts}
