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

from apscheduler.util import obj_to_ref
from django.db import transaction
from django.db.models import CharField, Count, Max
from django.db.models.functions import Cast
from django_apscheduler.models import DjangoJob

from scheduler_app.engine.apscheduler_glue import TemporaTrigger, fire
from scheduler_app.engine.sql import insert_ignore_many, select, update_many, upsert_many
from scheduler_app.models import SCHEDULE_FAILURES, Calendar, Execution, Job, SchedulerState, Trigger, trigger_spec
from scheduler_app.registry import registry

logger = logging.getLogger(__name__)

# Rows committed late (a web request's clock read before a slow commit) are still seen.
OVERLAP = timedelta(seconds=10)
BATCH = 2000
WRITE_BATCH = 20_000  # store rows per transaction at start-up: each commit is an fsync
# How often the incremental pass looks for deleted jobs (deleted jobs never fire meanwhile:
# firing skips a job whose row is gone; this only clears them out of the store).
DELETION_CHECK = timedelta(seconds=60)
EPSILON = timedelta(microseconds=1)  # next_run(after=t - EPSILON) answers t itself when t is a run time


_FIRE_REF = obj_to_ref(fire)
_JOB_COLUMNS = (
    "pk",
    "name",
    "task",
    "paused",
    "import_error",
    "timezone",
    "start_at",
    "end_at",
    "next_run_at",
    "max_runs",
)
_TRIGGER_COLUMNS = (
    "job_id",
    "kind",
    "cron_expression",
    "interval_seconds",
    "run_at",
    "preset",
    "jitter_seconds",
    "calendar_id",
    "created_at",
)


def _among(queryset, field: str, ids: list[int]):
    """Rows whose `field` is in the sorted `ids`, or a superset: a range when the ids are dense
    (start-up: every job), which spares building a 2,000-value IN list per batch; the caller
    drops rows it did not ask for."""
    if ids and ids[-1] - ids[0] < 2 * len(ids):
        return queryset.filter(**{f"{field}__gte": ids[0], f"{field}__lte": ids[-1]})
    return queryset.filter(**{f"{field}__in": ids})


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
        # A deleted job leaves no updated_at behind: the incremental pass notices deletions
        # by the number of Job rows instead (see _jobs_were_deleted).
        self._rows: tuple[int, int] | None = None  # (Job rows, highest Job id) at the last look
        self._next_deletion_check: datetime | None = None
        self._last_look: datetime | None = None

    # Incremental ----------------------------------------------------------------------

    def changed(self, *, now: datetime) -> int:
        """Apply the jobs changed since the last pass; answers how many were applied.

        Cheap when nothing changed (every pass, four times a second): one indexed query for
        (id, updated_at) pairs; rows are loaded only for pairs not applied yet.
        """
        if self.cursor is None:
            return self.full(now=now)
        # Look back OVERLAP from the later of the newest stamp seen and our previous look, so
        # the window moves on with time even when nothing changes (assumes clocks in step
        # within OVERLAP; the periodic full reconcile backs that up).
        since = max(self.cursor, self._last_look or self.cursor) - OVERLAP
        self._last_look = now
        stamps = dict(Job.objects.changed_since(since).values_list("pk", "updated_at"))
        fresh = [pk for pk, at in stamps.items() if self._seen.get(pk) != at]
        applied = 0
        if fresh:
            jobs = list(Job.objects.filter(pk__in=fresh).prefetch_related("triggers__calendar"))
            self.apply(jobs, now=now)
            self._seen.update((job.pk, job.updated_at) for job in jobs)
            applied = len(jobs)
        if stamps:
            self.cursor = max(self.cursor, *stamps.values())
        self._seen = {pk: at for pk, at in self._seen.items() if at > since}
        if applied:
            SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).update(synced_until=self.cursor)
        if self._next_deletion_check is None or now >= self._next_deletion_check:
            self._next_deletion_check = now + DELETION_CHECK
            if self._jobs_were_deleted():
                removed = self._remove_orphans()
                applied += removed
                if removed:
                    logger.info("unscheduled %d deleted job(s)", removed)
        return applied

    def _jobs_were_deleted(self) -> bool:
        """Whether a Job row vanished since the last look: two cheap queries, no scan of the store.

        Ids only grow, so rows now < rows then + rows with a higher id than then means a
        deletion, even when a job was created in the same interval.
        """
        if self._rows is None:
            self._rows = self._count_rows()
            return False
        last_count, last_top = self._rows
        new = Job.objects.filter(pk__gt=last_top).aggregate(n=Count("pk"), top=Max("pk"))
        count = Job.objects.count()
        self._rows = (count, new["top"] or last_top)
        return count < last_count + new["n"]

    @staticmethod
    def _count_rows() -> tuple[int, int]:
        rows = Job.objects.aggregate(n=Count("pk"), top=Max("pk"))
        return rows["n"], rows["top"] or 0

    @staticmethod
    def _remove_orphans() -> int:
        """Delete stored APScheduler jobs whose Job row is gone; answers how many."""
        live_ids = Job.objects.annotate(sid=Cast("id", CharField())).values("sid")
        orphans = DjangoJob.objects.exclude(id__in=live_ids)
        removed = orphans.count()
        if removed:
            orphans.delete()
        return removed

    def apply(self, jobs: list[Job], *, now: datetime) -> None:
        """Make the store match these jobs: add or replace their APScheduler jobs, or remove them.

        In one transaction and a handful of statements whatever the number: a bulk change of a
        thousand jobs, applied one by one through APScheduler, took 8.6 s on PostgreSQL (a
        commit per statement), all of it inside the job-store lock, so nothing fired meanwhile.
        The stored rows are written as `_state_row` builds them, exactly what APScheduler's
        add_job would store, without its per-job callable inspection.
        """
        if not jobs:
            return
        stored = self._stored_states([str(job.pk) for job in jobs])
        problems: dict[int, str] = {}
        decided: dict[int, datetime | None] = {}  # the next run per job; None: not in the store
        kept: set[int] = set()  # the stored row is right as it is
        replanned: list[Job] = []
        for job in jobs:
            problems[job.pk] = _why_not_schedulable(job)
            existing = stored.get(str(job.pk))
            try:
                if job.paused or problems[job.pk]:
                    decided[job.pk] = None
                elif _same_schedule(job, existing):
                    # Keep the planned run time — a due occurrence is not skipped, even one whose
                    # time passed (a one-off due while no scheduler ran) — while the job may still
                    # run then (max_runs not used up).
                    planned = existing["next_run_time"]
                    decided[job.pk] = planned if job.next_run(after=planned - EPSILON) else None
                    kept.add(job.pk)
                else:
                    replanned.append(job)
            except SCHEDULE_FAILURES as exc:
                problems[job.pk], decided[job.pk] = _unschedulable(exc), None
        # A new schedule holds from the edit, not from this apply: applied late (a new leader, a
        # slow round), the occurrences in between come due now and the pass records each (run
        # within the grace time, else missed). Planned from `now`, they got no row at all.
        starts = self._planned_from(replanned, now)
        for job in replanned:
            try:
                decided[job.pk] = job.next_run(after=starts[job.pk])
            except SCHEDULE_FAILURES as exc:
                problems[job.pk], decided[job.pk] = _unschedulable(exc), None
        import_errors, next_runs, removals, writes, scheduled = [], [], [], [], []
        for job in jobs:
            next_run = decided[job.pk]
            if problems[job.pk] != job.import_error:
                import_errors.append((problems[job.pk], job.pk))
            if next_run != job.next_run_at:
                next_runs.append((next_run, job.pk))  # a kept job shows its planned run
            if next_run is None:
                removals.append(str(job.pk))
            elif job.pk not in kept:
                job.next_run_at = next_run
                writes.append(self._state_row(job, job.trigger_specs()))
                scheduled.append(job)
        with transaction.atomic():
            update_many(Job, ["import_error"], import_errors)
            update_many(Job, ["next_run_at"], next_runs)
            gone = (
                DjangoJob.objects.filter(id__in=removals).delete()[1].get(DjangoJob._meta.label, 0) if removals else 0
            )
            upsert_many(DjangoJob, ["id", "next_run_time", "job_state"], writes, update=["next_run_time", "job_state"])
        if writes:
            self.scheduler.wakeup()  # a new run time may come before the one APScheduler waits for
        _log_applied(scheduled, gone)

    @staticmethod
    def _stored_states(ids: list[str]) -> dict[str, dict]:
        """The stored APScheduler state per job id (one query); a row that cannot be loaded is
        left out, so its job is written afresh."""
        states = {}
        for job_id, job_state in DjangoJob.objects.filter(id__in=ids).values_list("id", "job_state"):
            try:
                states[job_id] = pickle.loads(job_state)
            except Exception:
                logger.exception("cannot load stored APScheduler job %s; writing it afresh", job_id)
        return states

    @staticmethod
    def _planned_from(jobs: list[Job], now: datetime) -> dict[int, datetime]:
        """Where each job's new schedule starts: its edit (`updated_at`), or its last recorded
        occurrence after the edit, when the old schedule went on firing until this apply
        (those instants have their rows: the new schedule does not run them again).

        One query for all: the latest occurrence since the earliest edit, per job, is past a
        job's own edit exactly when that job has an occurrence after it."""
        edited = {job.pk: min(job.updated_at, now) for job in jobs}
        if not edited:
            return {}
        last = dict(
            Execution.objects.filter(
                job_id__in=list(edited),
                reason__in=Execution.SCHEDULED_REASONS,
                scheduled_for__gte=min(edited.values()),
            )
            .values("job_id")
            .annotate(last=Max("scheduled_for"))
            .values_list("job_id", "last")
            .order_by()
        )
        return {pk: max(at, last[pk]) if pk in last else at for pk, at in edited.items()}

    # Full reconcile -------------------------------------------------------------------

    def full(self, *, now: datetime) -> int:
        """Rebuild what differs between the Job rows and the store, in batches.

        At start-up with 100,000 jobs this must take about a second: rows are written with
        multi-row INSERTs, and a job new to the store keeps its `next_run_at`. A restart
        re-checks the jobs changed since the last sync (all of them, after a bulk import)
        without APScheduler: a stored row whose bytes are what this sync would write is
        right as it is (`_unchanged`); only the others go through `apply`.
        """
        state = SchedulerState.load()
        cursor = max(Job.objects.order_by("-updated_at").values_list("updated_at", flat=True)[:1], default=now)
        self._rows = self._count_rows()  # before the orphan sweep: a later deletion is noticed
        # Stored APScheduler jobs whose Job row is gone.
        removed = self._remove_orphans()
        stored = set(DjangoJob.objects.values_list("id", flat=True))
        since = (state.synced_until - OVERLAP) if state.synced_until else None
        # Which jobs need work, decided in the database: converting 100,000 timestamps in
        # Python would cost seconds of start-up.
        self._seen.update(select(Job.objects.changed_since(cursor - OVERLAP).order_by(), ("pk", "updated_at")))
        active = Job.objects.filter(paused=False).order_by("pk").values_list("pk", flat=True)
        missing = [pk for pk in active if str(pk) not in stored]
        changed = [] if since is None else list(Job.objects.changed_since(since).values_list("pk", flat=True))
        everything = since is None and not stored
        needed = sorted(set(missing) | set(changed)) if not everything else missing
        if since is None and stored:
            needed = sorted(set(needed) | {int(pk) for pk in stored if pk.isdigit()})
        applied = 0
        pending: list[tuple] = []
        calendars = Calendar.objects.in_bulk()
        for start in range(0, len(needed), BATCH):
            chunk = needed[start : start + BATCH]
            applied += len(chunk)
            wanted = set(chunk)
            jobs = [
                row for row in select(_among(Job.objects, "pk", chunk).order_by(), _JOB_COLUMNS) if row.pk in wanted
            ]
            specs = self._specs(chunk, {row.pk: row.start_at for row in jobs}, calendars)
            kept = self._stored_rows([str(pk) for pk in chunk if str(pk) in stored])
            fallback = []
            for row in jobs:
                if str(row.pk) in stored:
                    if not self._unchanged(row, specs.get(row.pk), kept.get(str(row.pk))):
                        fallback.append(row.pk)  # apply() decides: keep the planned run, re-plan, remove
                    continue
                if row.next_run_at is None or row.pk not in specs or row.task not in registry or row.import_error:
                    fallback.append(row.pk)  # the slow path knows every case
                    continue
                if not row.paused:
                    pending.append(self._state_row(row, specs[row.pk]))
            fallen = list(Job.objects.filter(pk__in=fallback).prefetch_related("triggers__calendar"))
            self.apply([job for job in fallen if str(job.pk) in stored], now=now)
            for job in fallen:
                if str(job.pk) not in stored:
                    # `new`, not `state`: that name holds the SchedulerState row used below.
                    new = self._new_row(job, now)
                    if new is not None:
                        pending.append(new)
            if len(pending) >= WRITE_BATCH:
                self._write(pending)
        self._write(pending)
        self.cursor = cursor
        SchedulerState.objects.filter(pk=state.pk).update(synced_until=cursor)
        self.scheduler.wakeup()
        logger.info("full sync: %d job(s) applied, %d stale stored job(s) removed", applied, removed)
        return applied

    @staticmethod
    def _stored_rows(ids: list[str]) -> dict[str, tuple]:
        """Stored (next_run_time, job_state) per job id, read in one query."""
        if not ids:
            return {}
        rows = select(DjangoJob.objects.filter(id__in=ids).order_by(), ("id", "next_run_time", "job_state"))
        return {row.id: (row.next_run_time, row.job_state) for row in rows}

    def _unchanged(self, row, specs: list | None, kept: tuple | None) -> bool:
        """Whether a stored job is already what apply() would leave: the same schedule, planned
        at the row's next_run_at, written in this sync's own format (compared as bytes, so
        nothing is unpickled). Anything else — paused, a fault, max_runs (runs may be used up),
        a state the pass rewrote differently — takes the slow path, which knows every case."""
        if kept is None or specs is None or row.next_run_at is None:
            return False
        if row.paused or row.import_error or row.task not in registry or row.max_runs is not None:
            return False
        next_run_time, job_state = kept
        if next_run_time != row.next_run_at:
            return False
        return bytes(job_state) == self._state_row(row, specs)[2]

    def _new_row(self, job: Job, now: datetime) -> tuple | None:
        problem = _why_not_schedulable(job)
        if problem != job.import_error:
            Job.objects.filter(pk=job.pk).update(import_error=problem)
        if job.paused or problem:
            return None
        # A job new to the store keeps the run time planned when it was saved, even if that
        # passed while no scheduler ran: the misfire and catch-up policy decides what to do.
        next_run = job.next_run_at or job.next_run(after=now)
        if next_run is None:
            return None
        if next_run != job.next_run_at:
            Job.objects.filter(pk=job.pk).update(next_run_at=next_run)
            job.next_run_at = next_run
        return self._state_row(job, job.trigger_specs())

    def _state_row(self, job, specs: list) -> tuple:
        """(id, next_run_time, pickled state) for DjangoJob. The state is what APScheduler's
        Job.__getstate__ would produce, built directly: the Job constructor's callable
        inspection costs more than everything else here."""
        trigger = TemporaTrigger(specs, job.timezone, job.start_at, job.end_at)
        state = {
            "version": 1,
            "id": str(job.pk),
            "func": _FIRE_REF,
            "trigger": trigger,
            "executor": "default",
            "args": (),
            "kwargs": {},
            "name": job.name,
            "misfire_grace_time": None,
            "coalesce": False,
            "max_instances": 1_000_000,
            "next_run_time": job.next_run_at,
        }
        return (str(job.pk), job.next_run_at, pickle.dumps(state, self._protocol))

    @staticmethod
    def _specs(job_ids: list[int], starts: dict[int, datetime | None], calendars: dict) -> dict[int, list]:
        """TriggerSpecs per job from trigger columns (no model instances)."""
        specs: dict[int, list] = {}
        for row in select(_among(Trigger.objects, "job_id", job_ids).order_by("pk"), _TRIGGER_COLUMNS):
            if row.job_id not in starts:
                continue
            calendar = calendars.get(row.calendar_id)
            specs.setdefault(row.job_id, []).append(
                trigger_spec(row, job_start_at=starts[row.job_id], calendar=calendar)
            )
        return specs

    @property
    def _protocol(self) -> int:
        return self.scheduler._lookup_jobstore(self.alias).pickle_protocol

    @staticmethod
    def _write(rows: list[tuple]) -> None:
        if rows:
            with transaction.atomic():
                insert_ignore_many(DjangoJob, ["id", "next_run_time", "job_state"], rows)
            rows.clear()


def _same_schedule(job: Job, existing: dict | None) -> bool:
    """Whether the stored state plans the job's current schedule (and plans a run at all)."""
    if existing is None or existing.get("next_run_time") is None:
        return False
    return existing["trigger"].__getstate__() == trigger_for(job).__getstate__()


def _unschedulable(exc: Exception) -> str:
    logger.error("a job's schedule cannot be computed (%s); it is not scheduled", exc)
    return f"The schedule cannot be computed: {exc or exc.__class__.__name__}"


def _log_applied(scheduled: list[Job], removed: int) -> None:
    """One line per apply, naming a few jobs: a bulk change of a thousand is not a thousand lines."""
    if scheduled:
        shown = ", ".join(f"{job.name} (next run {job.next_run_at.isoformat()})" for job in scheduled[:5])
        more = f" and {len(scheduled) - 5} more" if len(scheduled) > 5 else ""
        logger.info("scheduled %s%s", shown, more)
    if removed:
        logger.info("unscheduled %d job(s)", removed)
