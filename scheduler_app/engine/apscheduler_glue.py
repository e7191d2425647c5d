"""What Tempora plugs into APScheduler 3: our trigger, a bounded job, our job store, our scheduler.

APScheduler owns *when* (its job store holds each job's next run time and wakes up for it);
our rows own *what* and *what happened*. Each piece below replaces one APScheduler default
that would break a promise:
- `TemporaTrigger` asks triggers.py (CronTrigger reads `1` as Tuesday and fires daily jobs
  twice on fall-back days);
- `BoundedJob` caps how many past run times one pass enumerates after a long downtime;
- `TemporaJobStore` drops django-apscheduler's per-event log rows, never deletes a row it
  cannot load, and updates rows without a transaction of their own;
- `TemporaScheduler` runs each pass in one transaction, commits it only while it holds the
  lease (fencing, see lease.py), and survives database errors.
"""

from __future__ import annotations

import logging
import pickle
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.schedulers.blocking import TIMEOUT_MAX
from apscheduler.triggers.base import BaseTrigger
from django.db import DatabaseError, close_old_connections, connection, transaction
from django_apscheduler.jobstores import DjangoJobStore
from django_apscheduler.models import DjangoJob

from scheduler_app import triggers
from scheduler_app.engine.dblock import writing
from scheduler_app.engine.lease import NotLeading
from scheduler_app.engine.sql import update_many

logger = logging.getLogger(__name__)

# One pass enumerates at most this many past run times per job; the rest follow next pass.
# After an outage, the first MISSED_HEAD occurrences of a job are recorded one by one; then
# the pass jumps to the last MISSED_TAIL before now (the ones catch-up may run), and one row
# stands for the occurrences in between. A job firing every second, down for a day, writes
# a few hundred rows, not 86,400.
MISSED_HEAD = 100
MISSED_TAIL = timedelta(minutes=2)

# Jobs one pass records at most (earliest first); more due start another pass at once. Runs of
# a committed pass start while the next is recorded: a burst of 10,000 one-offs recorded in
# one transaction started none before all 10,000 rows were written.
PASS_JOBS = 2000


def fire() -> None:
    """The callable APScheduler stores for every job. Our executor never calls it: it turns
    run times into Execution rows instead. A stable reference means a stored job can always
    be loaded, whatever happens to the task it names."""


class TemporaTrigger(BaseTrigger):
    """An APScheduler trigger that asks triggers.py; pickled into the job store."""

    __slots__ = ("end_at", "specs", "start_at", "zone")

    def __init__(self, specs: list[triggers.TriggerSpec], zone: str, start_at=None, end_at=None):
        self.specs = tuple(specs)
        self.zone = zone
        self.start_at = start_at
        self.end_at = end_at

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        after = (previous_fire_time or now).astimezone(UTC)
        window = triggers.Window(self.start_at, self.end_at)
        zone = ZoneInfo(self.zone)
        if len(self.specs) == 1:  # the common case, without merging streams
            return triggers.next_fire_time(self.specs[0], zone, after, window)
        runs = triggers.next_runs(self.specs, zone, after, 1, window)
        return runs[0] if runs else None

    def __getstate__(self):
        # Specs as plain tuples: pickling frozen dataclasses is several times slower, and the
        # full sync pickles one trigger per job (100,000 at start-up).
        specs = tuple(tuple(vars(spec).values()) for spec in self.specs)  # field order
        return {"version": 2, "specs": specs, "zone": self.zone, "start_at": self.start_at, "end_at": self.end_at}

    def __setstate__(self, state):
        specs = state["specs"]
        if state.get("version", 1) >= 2:
            specs = tuple(triggers.TriggerSpec(*values) for values in specs)
        self.specs, self.zone = specs, state["zone"]
        self.start_at, self.end_at = state["start_at"], state["end_at"]

    def __str__(self) -> str:
        return f"tempora[{len(self.specs)} trigger(s), {self.zone}]"


class BoundedJob(APJob):
    """APScheduler's Job with a bound on the past run times one pass enumerates.

    `gap` is set when occurrences were jumped over: (first skipped, first after the jump).
    """

    gap: tuple[datetime, datetime] | None = None

    def _get_run_times(self, now):
        run_times = []
        next_run_time = self.next_run_time
        while next_run_time and next_run_time <= now and len(run_times) < MISSED_HEAD:
            run_times.append(next_run_time)
            next_run_time = self.trigger.get_next_fire_time(next_run_time, now)
        self.gap = None
        if next_run_time and next_run_time <= now - MISSED_TAIL:
            resume = self.trigger.get_next_fire_time(now - MISSED_TAIL, now)
            if resume is not None and resume > next_run_time:
                self.gap = (next_run_time, resume)
                next_run_time = resume
        while next_run_time and next_run_time <= now:
            run_times.append(next_run_time)
            next_run_time = self.trigger.get_next_fire_time(next_run_time, now)
        return run_times


class TemporaJobStore(DjangoJobStore):
    """django-apscheduler's DjangoJobStore, fitted for a scheduler that fires thousands of jobs a second."""

    def register_event_listeners(self) -> None:
        # django-apscheduler writes a DjangoJobExecution row per event, in its own
        # transaction: that is what makes it collapse at a thousand jobs a second.
        # Our Execution rows, written in batches, are the log.
        pass

    def _reconstitute_job(self, job_state):
        state = pickle.loads(job_state)
        job = BoundedJob.__new__(BoundedJob)
        job.__setstate__(state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _get_jobs(self, **filters):
        return self._get_jobs_in(DjangoJob.objects.filter(**filters))

    def _get_jobs_in(self, rows):
        jobs = []
        for job_id, job_state in rows.values_list("id", "job_state"):
            try:
                jobs.append(self._reconstitute_job(job_state))
            except Exception:
                # Kept, never deleted: the sync re-creates it from the Job row.
                logger.exception("cannot load stored APScheduler job %s; the next sync rebuilds it", job_id)
        return jobs

    def get_due_jobs(self, now, limit: int | None = None):
        """The jobs due by `now`, earliest first, at most `limit` (the store's next_run_time index)."""
        return self._get_jobs_in(DjangoJob.objects.filter(next_run_time__lte=now).order_by("next_run_time")[:limit])

    def begin_pass(self) -> None:
        self._pending: dict[str, tuple] = {}

    def update_job(self, job) -> None:
        # During a pass: collected, then written by flush_updates() with one executemany.
        # Outside a pass (sync, pause): one UPDATE, in the caller's transaction.
        row = (job.next_run_time, pickle.dumps(job.__getstate__(), self.pickle_protocol), job.id)
        pending = getattr(self, "_pending", None)
        if pending is not None:
            pending[job.id] = row
            return
        if not DjangoJob.objects.filter(id=job.id).update(next_run_time=row[0], job_state=row[1]):
            raise JobLookupError(job.id)

    def flush_updates(self) -> None:
        pending, self._pending = getattr(self, "_pending", None), None
        if pending:
            update_many(DjangoJob, ["next_run_time", "job_state"], pending.values(), where=("pk",))

    def end_pass(self) -> None:
        self._pending = None

    def shutdown(self) -> None:
        # The base closes the calling thread's connection; ours are closed by their owners.
        pass


class TemporaScheduler(BackgroundScheduler):
    """APScheduler's background scheduler with our own pass.

    The pass is APScheduler's `_process_jobs` reshaped for a database-backed store:
    - it looks ahead: jobs due within LOOKAHEAD are recorded now, in one transaction, and
      the dispatcher starts each run at its exact time, so the time spent writing rows
      does not become lag;
    - the job store's updates are written in one executemany at the end of the pass;
    - with a `lease`, a pass runs only while the lease is held, and its last statement is
      the lease's fence: a node deposed meanwhile rolls the pass back instead of committing;
    - a database error rolls the pass back and backs off; it never kills this thread.
    """

    LOOKAHEAD = timedelta(milliseconds=500)
    NOT_LEADING_WAIT = 0.5  # how soon a scheduler whose lease lapsed looks again

    def __init__(self, *args, on_pass_committed=None, lease=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._on_pass_committed = on_pass_committed
        self._lease = lease
        self._failures = 0
        self.last_pass_seconds = 0.0

    def _process_jobs(self):
        if self.state != STATE_RUNNING:
            return None  # paused, or shut down (a step-down or SIGTERM): record nothing more
        if self._lease is not None and not self._lease.holds():
            return self.NOT_LEADING_WAIT  # cannot prove the lease: fire nothing
        close_old_connections()
        store = self._lookup_jobstore("default")
        executor = self._lookup_executor("default")
        started = time.monotonic()
        now = datetime.now(UTC)
        horizon = now + self.LOOKAHEAD
        try:
            with self._jobstores_lock, writing(), transaction.atomic():
                store.begin_pass()
                finished = []  # no more fire times (a one-off ran, the window ended): the Job row stays
                due = store.get_due_jobs(horizon, limit=PASS_JOBS)
                for job in due:
                    run_times = job._get_run_times(horizon)
                    if not run_times:
                        continue
                    executor.submit_job(job, run_times)
                    next_run = job.trigger.get_next_fire_time(run_times[-1], now)
                    if next_run is not None:
                        job._modify(next_run_time=next_run)
                        store.update_job(job)
                    else:
                        # Read by the executor's flush as the Job's next_run_at: the fired
                        # time left here showed as an upcoming run (and a next wake-up).
                        job.next_run_time = None
                        finished.append(job.id)
                store.flush_updates()
                if finished:
                    DjangoJob.objects.filter(id__in=finished).delete()
                store.end_pass()
                executor.flush(now)
                next_wakeup = store.get_next_run_time()
                if self._lease is not None:
                    self._lease.fence()  # last: the proof holds until the commit
        except NotLeading as exc:
            store.end_pass()
            executor.discard()
            logger.warning("scheduling pass rolled back: %s", exc)
            return self.NOT_LEADING_WAIT
        except DatabaseError as exc:
            # Rolled back as a whole: the due jobs keep their run times and the next pass
            # records them (late ones by the misfire policy). Back off, reconnect.
            store.end_pass()
            executor.discard()
            self._failures += 1
            wait = min(0.25 * 2 ** min(self._failures, 5), 5.0)
            logger.error("scheduling pass failed (%s); retrying in %.1fs", exc, wait)
            try:
                connection.close()
            except DatabaseError:
                pass
            return wait
        self._failures = 0
        self.last_pass_seconds = time.monotonic() - started
        if self._on_pass_committed is not None:
            self._on_pass_committed()
        if len(due) == PASS_JOBS:
            return 0  # more were due than one pass takes: the next pass now
        if next_wakeup is None:
            return None
        wait = (next_wakeup - self.LOOKAHEAD - datetime.now(UTC)).total_seconds()
        return min(max(wait, 0), TIMEOUT_MAX)
