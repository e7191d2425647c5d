"""Keeping APScheduler's job store in step with the Job rows.

Every pass reads the jobs whose `updated_at` moved since the last one (services stamp it on
every write, bulk ones included) — no signals, no restart. A full reconcile at start-up and
every few minutes catches what the incremental pass cannot see (rows deleted by raw SQL).
A job that cannot fire (paused, no trigger left, window over, task not importable) has no
APScheduler job; its Job row is kept, flagged with the reason where there is one.
"""

from __future__ import annotations

import logging
import pickle
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import CharField
from django.db.models.functions import Cast
from django_apscheduler.models import DjangoJob

from scheduler_app.engine.apscheduler_glue import BoundedJob, TemporaTrigger, fire
from scheduler_app.models import Job, SchedulerState
from scheduler_app.registry import registry

logger = logging.getLogger(__name__)

# Rows committed late (a web request's clock read before a slow commit) are still seen.
OVERLAP = timedelta(seconds=10)
BATCH = 2000


def trigger_for(job: Job) -> TemporaTrigger:
    return TemporaTrigger(job.trigger_specs(), job.timezone, job.start_at, job.end_at)


def _why_not_schedulable(job: Job) -> str:
    """'' if the job should have an APScheduler job, else why not (stored in import_error if a fault)."""
    if job.task not in registry:
        return f"The task {job.task!r} cannot be imported: it is not registered in this deployment."
    return ""


class Sync:
    def __init__(self, scheduler, *, alias: str = "default") -> None:
        self.scheduler = scheduler
        self.alias = alias
        self.cursor: datetime | None = None
        self._seen: dict[int, datetime] = {}

    # Incremental ----------------------------------------------------------------------

    def changed(self, *, now: datetime) -> int:
        """Apply the jobs changed since the last pass; answers how many were applied."""
        if self.cursor is None:
            return self.full(now=now)
        since = self.cursor - OVERLAP
        jobs = list(Job.objects.changed_since(since).prefetch_related("triggers__calendar").order_by("updated_at"))
        applied = 0
        for job in jobs:
            if self._seen.get(job.pk) == job.updated_at:
                continue
            self.apply(job, now=now)
            self._seen[job.pk] = job.updated_at
            applied += 1
        if jobs:
            self.cursor = max(self.cursor, jobs[-1].updated_at)
        self._seen = {pk: at for pk, at in self._seen.items() if at > self.cursor - OVERLAP}
        if applied:
            SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).update(synced_until=self.cursor)
        return applied

    def apply(self, job: Job, *, now: datetime) -> None:
        """Make the store match one job: add or replace its APScheduler job, or remove it."""
        problem = _why_not_schedulable(job)
        if problem != job.import_error:
            Job.objects.filter(pk=job.pk).update(import_error=problem)
        next_run = None if (job.paused or problem) else job.next_run(after=now)
        if next_run is None:
            self._remove(str(job.pk))
            if job.next_run_at is not None:
                Job.objects.filter(pk=job.pk).update(next_run_at=None)
            return
        trigger = trigger_for(job)
        existing = self.scheduler.get_job(str(job.pk), self.alias)
        if existing is not None and existing.trigger.__getstate__() == trigger.__getstate__():
            return  # same schedule: keep the planned run time (a due occurrence is not skipped)
        self.scheduler.add_job(
            fire, trigger=trigger, id=str(job.pk), name=job.name, jobstore=self.alias, executor="default",
            replace_existing=True, next_run_time=next_run, misfire_grace_time=None, coalesce=False,
            max_instances=1_000_000,
        )
        Job.objects.filter(pk=job.pk).update(next_run_at=next_run)
        logger.info("scheduled %s: next run %s", job.name, next_run.isoformat())

    def _remove(self, job_id: str) -> None:
        if DjangoJob.objects.filter(id=job_id).exists():
            self.scheduler.remove_job(job_id, self.alias)
            logger.info("unscheduled job %s", job_id)

    # Full reconcile -------------------------------------------------------------------

    def full(self, *, now: datetime) -> int:
        """Rebuild what differs between the Job rows and the store, in batches.

        At start-up with 100,000 jobs this must take seconds: rows are written with bulk
        INSERTs, and a job's stored `next_run_at` is reused when it is still in the future.
        """
        state = SchedulerState.load()
        cursor = max(Job.objects.order_by("-updated_at").values_list("updated_at", flat=True)[:1], default=now)
        stored = set(DjangoJob.objects.values_list("id", flat=True))
        # Stored APScheduler jobs whose Job row is gone.
        live_ids = Job.objects.annotate(sid=Cast("id", CharField())).values("sid")
        orphans = DjangoJob.objects.exclude(id__in=live_ids)
        removed = orphans.count()
        orphans.delete()
        since = (state.synced_until - OVERLAP) if state.synced_until else None
        applied = 0
        pending: list[DjangoJob] = []
        queryset = Job.objects.prefetch_related("triggers__calendar").order_by("pk")
        for job in queryset.iterator(chunk_size=BATCH):
            if str(job.pk) in stored and since is not None and job.updated_at <= since:
                continue  # unchanged since the last sync: the stored job is right
            if str(job.pk) in stored:
                self.apply(job, now=now)
                applied += 1
                continue
            row = self._new_row(job, now)
            if row is not None:
                pending.append(row)
            applied += 1
            if len(pending) >= BATCH:
                self._write(pending)
        self._write(pending)
        self.cursor = cursor
        SchedulerState.objects.filter(pk=state.pk).update(synced_until=cursor)
        self.scheduler.wakeup()
        logger.info("full sync: %d job(s) applied, %d stale stored job(s) removed", applied, removed)
        return applied

    def _new_row(self, job: Job, now: datetime) -> DjangoJob | None:
        problem = _why_not_schedulable(job)
        if problem != job.import_error:
            Job.objects.filter(pk=job.pk).update(import_error=problem)
        if job.paused or problem:
            return None
        next_run = job.next_run_at if job.next_run_at and job.next_run_at > now else job.next_run(after=now)
        if next_run is None:
            return None
        if next_run != job.next_run_at:
            Job.objects.filter(pk=job.pk).update(next_run_at=next_run)
        apjob = BoundedJob(
            self.scheduler, id=str(job.pk), func=fire, args=(), kwargs={}, name=job.name,
            trigger=trigger_for(job), executor="default", misfire_grace_time=None, coalesce=False,
            max_instances=1_000_000, next_run_time=next_run,
        )
        store = self.scheduler._lookup_jobstore(self.alias)
        return DjangoJob(id=apjob.id, next_run_time=next_run, job_state=pickle.dumps(apjob.__getstate__(), store.pickle_protocol))

    @staticmethod
    def _write(rows: list[DjangoJob]) -> None:
        if rows:
            with transaction.atomic():
                DjangoJob.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
            rows.clear()
