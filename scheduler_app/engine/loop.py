"""The runscheduler process: one loop, shaped like healthchecks' sendalerts.

The heartbeat and the lease are not the loop's: they run on the liveness thread
(liveness.py), so a slow round never costs the lease. Each round: reconnect if needed,
start or stop APScheduler as the lease came or went, stop runs whose cancellation was
asked for, then — while holding the lease — apply changed jobs, start waiting runs (run
now, retries, queued behind a running one), count finished runs into the statistics'
tallies, and every so often recover dead nodes and prune history. APScheduler's own thread
wakes up for due jobs in between. A database error never ends the loop: it logs, backs off,
reconnects and carries on. SIGTERM/SIGINT stop firing and hand the lease over at once; then
running jobs get `--drain` seconds to finish while the node keeps beating (`draining`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

from django.db import DatabaseError, close_old_connections, connection, transaction

from scheduler_app import services, tallies
from scheduler_app.conf import tempora_settings
from scheduler_app.engine import capture, outcomes, recovery, retention, worker_loss
from scheduler_app.engine.apscheduler_glue import TemporaJobStore, TemporaScheduler
from scheduler_app.engine.dblock import writing
from scheduler_app.engine.dispatch import Dispatcher, claim
from scheduler_app.engine.firing import TemporaExecutor, worker_runs_in_flight
from scheduler_app.engine.journal import Journal
from scheduler_app.engine.lease import Lease, NotLeading, node_name, register
from scheduler_app.engine.listener import Listener
from scheduler_app.engine.liveness import Liveness, NodeLock
from scheduler_app.engine.runner import RunRequest, warm_up_child_processes
from scheduler_app.engine.sql import update_many
from scheduler_app.engine.sync import Sync
from scheduler_app.engine.writer import Writer
from scheduler_app.models import Execution, Job, SchedulerNode, SchedulerState

logger = logging.getLogger(__name__)
FOLD_SECONDS = 0.1
WARM_UP_DELAY = 5.0  # seconds a standby waits before starting the forkserver


def utcnow() -> datetime:
    return datetime.now(UTC)


class Every:
    """A periodic chore inside the loop: due() is true once per `seconds`."""

    def __init__(self, seconds: float, *, first_now: bool = True) -> None:
        self.seconds = seconds
        self._next = 0.0 if first_now else time.monotonic() + seconds

    def due(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.seconds
            return True
        return False


class Engine:
    def __init__(
        self, *, max_workers: int | None = None, drain_seconds: float = 30.0, poll_seconds: float = 0.5
    ) -> None:
        self.max_workers = max_workers
        self.drain_seconds = drain_seconds
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()
        self._wake = threading.Event()  # a stop, or the lease came or went: start the next round now
        self.stop_reason = ""
        self.liveness: Liveness | None = None
        self.paused = False
        self.scheduler: TemporaScheduler | None = None
        self.executor: TemporaExecutor | None = None
        self.sync: Sync | None = None
        self._epoch: int | None = None  # the lease epoch APScheduler was started in
        self._failures = 0
        self._recover = Every(max(tempora_settings.LEASE_SECONDS / 2, 1))
        self._lost_celery_runs = worker_loss.WorkerLossCheck()  # its own timer: every few seconds
        self._prune = Every(60)
        self._prune_backlog = False
        # The reads add what is not folded yet, so folding every round would only cost an idle
        # scheduler a query per round: every few seconds, and every round while a backlog lasts.
        self._fold = Every(2)
        self._fold_backlog = False
        self._reconcile = Every(300, first_now=False)
        self._held: frozenset[int] = frozenset()  # jobs whose waiting rows wait for a run of theirs to end

    # Life cycle -----------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop firing now and hand the lease over; the loop then drains (a signal handler calls this)."""
        self.stop_reason = self.stop_reason or reason
        self.stopping.set()
        if self.liveness is not None:
            self.liveness.hand_over()
        self._wake.set()

    def run(self) -> list[RunRequest]:
        """Run until stopped; answers the runs that did not finish within the drain time."""
        capture.install()
        now = utcnow()
        self.node_lock = NodeLock(node_name(now))
        self.node_lock.acquire()  # before the node row exists: recovery must never find it unlocked
        self.node = register(now=now)
        self.lease = Lease(self.node, seconds=tempora_settings.LEASE_SECONDS)
        workers = self.max_workers or services.scheduler_setting("max_workers")
        self.writer = Writer(journal=Journal.open(self.node.name))
        self.writer.start()
        self.dispatcher = Dispatcher(node=self.node.name, writer=self.writer, max_workers=workers)
        self.dispatcher.on_slot_freed = self._slot_freed
        self.liveness = Liveness(
            self.lease,
            dead_seconds=tempora_settings.NODE_DEAD_SECONDS,
            on_change=self._wake.set,
            on_cut_off=self._self_fence,
        )
        if self.stopping.is_set():  # a signal before the liveness thread existed
            self.liveness.hand_over()
        self.liveness.start()
        # A service's commit wakes the loop at once (PostgreSQL); the poll below finds changes anyway.
        self.listener = Listener(on_change=self._wake.set)
        self.listener.start()
        cap = self.dispatcher.pool.per_owner
        logger.info(
            "runscheduler %s started with %d worker threads, %s",
            self.node.name,
            workers,
            f"at most {cap} runs at once per job owner" if cap else "no cap per job owner",
        )
        warm_up_by = time.monotonic() + WARM_UP_DELAY
        while not self.stopping.is_set():
            self._round()
            if warm_up_by is not None and (self.scheduler is not None or time.monotonic() >= warm_up_by):
                # Once leading (after the first full sync), or after a while standing by — not
                # beside the first sync: the forkserver's own Django start-up took a core from
                # it. A timed job due before then starts the forkserver itself.
                threading.Thread(target=warm_up_child_processes, name="tempora-forkserver", daemon=True).start()
                warm_up_by = None
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
        return self._shutdown()

    def _round(self) -> None:
        close_old_connections()
        try:
            self.step(utcnow())
            self._failures = 0
        except DatabaseError as exc:
            self._failures += 1
            wait = min(0.5 * 2 ** min(self._failures, 4), 5.0)
            logger.error("database error in the scheduler loop (%s); retrying in %.1fs", exc, wait)
            try:
                connection.close()
            except DatabaseError:
                pass
            self.stopping.wait(wait)

    def step(self, now: datetime) -> None:
        # Leading is the liveness thread's answer: an epoch of the lease held. APScheduler stays
        # up while a renewal is late (its passes wait for the lease, see lease.fence) and stops
        # when the epoch is over.
        # Two columns, not the model: this runs twice a second on an idle scheduler.
        paused, shutdown_requested_at = SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).values_list(
            "paused", "shutdown_requested_at"
        ).first() or (False, None)
        self.paused = paused
        if shutdown_requested_at and shutdown_requested_at > self.node.started_at:
            self.stop("shutdown requested from the console or API")
            return
        if self.scheduler is not None and self.lease.epoch != self._epoch:
            self._stand_by()  # deposed (or deposed and back in a new epoch: start afresh)
        if self.lease.epoch is not None and self.scheduler is None and self.lease.holds():
            self._lead(now)
        # Every node, leader or not, stops its own runs that were asked to cancel: a node
        # that lost the lease still runs what it started.
        self._check_cancellations()
        if self.scheduler is None or not self.lease.holds():
            return
        # The job-store lock first, then the write turn: the scheduling pass takes them in that
        # order, and the sync's get_job/add_job need the store lock. Taken the other way round
        # (writing() alone here) the two threads deadlocked when a job changed just as a pass
        # began: nothing fired again and the loop hung (tests/process caught it).
        with self.scheduler._jobstores_lock, writing():
            self.sync.changed(now=now)
            self._finish_exhausted(now)
        if not self.paused:
            self.start_waiting(now)
        if self._recover.due():
            with writing():
                recovery.recover(
                    now=now, lease_seconds=tempora_settings.LEASE_SECONDS, me=self.node.name, fence=self.lease.fence
                )
        self._lost_celery_runs.check(now)
        if self._fold.due() or self._fold_backlog:
            self._fold_backlog = self._fold_tallies()
        # Once a minute; and while a pass finds a full batch, every round, a batch at a time, so
        # that pruning keeps up with a thousand runs a second without holding a round up.
        if self._prune.due() or self._prune_backlog:
            with writing():
                deleted = retention.prune(
                    now=now,
                    days=services.scheduler_setting("history_days"),
                    per_job=services.scheduler_setting("history_per_job"),
                )
                tallies.prune(now=now)
            self._prune_backlog = deleted >= retention.BATCH
        if self._reconcile.due() and self.sync.cursor is not None:
            self.sync.full(now=now)

    def _fold_tallies(self) -> bool:
        """Count finished runs into the statistics' tallies, batch after batch within
        FOLD_SECONDS so the round never holds firing up for long; answers whether more wait."""
        deadline = time.monotonic() + FOLD_SECONDS
        while True:
            with writing():
                folded = tallies.fold(now=utcnow())
            if folded < tallies.BATCH:
                return False
            if time.monotonic() > deadline:
                return True

    def _lead(self, now: datetime) -> None:
        """Became the leader: load code-defined jobs, start APScheduler, sync the store."""
        self._epoch = self.lease.epoch
        self._recover = Every(self._recover.seconds)  # at once: a leader that died leaves runs behind
        services.code_jobs_sync(now=now)
        self.executor = TemporaExecutor(dispatcher=self.dispatcher, node=self.node.name, is_paused=lambda: self.paused)
        self.scheduler = TemporaScheduler(
            jobstores={"default": TemporaJobStore()},
            executors={"default": self.executor},
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1_000_000},
            timezone=UTC,
            jobstore_retry_interval=1,
            on_pass_committed=self.executor.launch_ready,
            lease=self.lease,
        )
        self.sync = Sync(self.scheduler)
        self.scheduler.start(paused=True)
        self.sync.full(now=now)
        self.scheduler.resume()
        logger.info("%s leads: scheduling", self.node.name)

    def _stand_by(self) -> None:
        logger.warning("%s stands by: scheduling stopped", self.node.name)
        self.scheduler.shutdown(wait=False)
        self.scheduler = self.executor = self.sync = self._epoch = None

    def _shutdown(self) -> list[RunRequest]:
        # Firing stopped in stop(); the liveness thread has given the lease back (a standby takes
        # it within a second) and beats on as `draining`, so nobody recovers this node meanwhile.
        # A stop during a database outage still drains and marks what runs.
        logger.info("stopping (%s); draining running jobs for up to %ss", self.stop_reason, self.drain_seconds)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        why = f"The scheduler stopped ({self.stop_reason}) while this run was in progress; it waited {self.drain_seconds:g}s."
        left = self.dispatcher.drain(self.drain_seconds, why)
        now = utcnow()
        for request in left:
            self.writer.put(outcomes.lost(request, now=now, worker=self.node.name, why=why))
        self.writer.stop()
        self.dispatcher.shutdown()
        self.listener.stop()
        self.liveness.stop()
        try:
            with writing(urgent=True):
                self.lease.release()  # if the liveness thread could not
                self._set_state(SchedulerNode.State.STOPPED)
        except DatabaseError:
            logger.exception("could not record the stop; another node will recover this one")
        else:
            self.node_lock.release()  # kept otherwise: recovery on this host then knows at once
        logger.info("stopped; %d run(s) did not finish in time", len(left))
        return left

    def _self_fence(self, silent: float) -> None:
        """Cut off from the database for nearly SCHEDULER_NODE_DEAD_SECONDS (the liveness
        thread's watcher calls this): another node may soon declare this one dead and its
        runs lost, so none of them may run on. Those that cannot be stopped (a thread blocked
        in C) end with the process."""
        why = (
            f"Lost: its scheduler {self.node.name} could not reach the database for {silent:.0f}s "
            "and stopped its runs, as other nodes may take it for dead."
        )
        left = self.dispatcher.abandon(why)
        if left and self.liveness.cut_off:
            logger.critical(
                "%d run(s) could not be stopped while cut off from the database: exiting, "
                "so that nothing runs on after its row says lost",
                len(left),
            )
            logging.shutdown()
            os._exit(1)

    def _set_state(self, state: str) -> None:
        SchedulerNode.objects.filter(pk=self.node.pk).update(state=state)

    # Chores ---------------------------------------------------------------------------

    def _slot_freed(self, job_id: int) -> None:
        """A run of this node ended (a worker thread calls this): if a row of that job waits for
        it (run now, a retry, queued behind), start it now rather than at the next poll."""
        if job_id in self._held:
            self._wake.set()

    def start_waiting(self, now: datetime) -> int:
        """Start rows that wait in the database: run now, retries, runs queued behind another."""
        waiting = list(Execution.objects.claimable(now).values_list("pk", flat=True)[:200])
        if not waiting:
            self._held = frozenset()
            return 0  # the usual answer, from one light query
        admitted = []
        held = set()
        rows = list(
            Execution.objects.filter(pk__in=waiting).select_related("job").order_by("-job__priority", "run_after")
        )
        # A worker job's runs in flight (Celery, Django Tasks) are not in the dispatcher's count:
        # those queued for a worker (maybe none is up) and running on one, so that queue_one and
        # skip cap them.
        elsewhere = worker_runs_in_flight([row.job for row in rows if row.job and row.job.runs_on_workers])
        for row in rows:
            job = row.job
            if job is None:
                Execution.objects.filter(pk=row.pk, status="scheduled").update(
                    status="cancelled", finished_at=now, error="The job was deleted before this run started."
                )
                continue
            if job.paused and row.reason != Execution.Reason.MANUAL:
                continue  # a paused job's retries and queued runs wait for it to resume
            decision = self.dispatcher.admit(
                job_id=job.pk,
                policy=job.overlap_policy,
                max_instances=job.max_instances,
                elsewhere=elsewhere.get(job.pk, 0),
            )
            if decision in ("wait", "skip"):
                # A row waiting in the database (run now, a retry, a run queued behind another)
                # waits for the job's runs in flight to finish; it is never dropped here.
                held.add(job.pk)
                continue
            admitted.append((row, decision))
            if job.runs_on_workers:
                elsewhere[job.pk] = elsewhere.get(job.pk, 0) + 1
        self._held = frozenset(held)
        if not admitted:
            return 0
        committed = []
        try:
            # One transaction for the claims, fenced: a node deposed meanwhile claims nothing.
            with writing(), transaction.atomic():
                claimed = [(row, decision) for row, decision in admitted if claim(row, node=self.node.name, now=now)]
                self.lease.fence()
            committed = claimed
        except NotLeading as exc:
            logger.warning("claims of waiting runs rolled back: %s", exc)
        finally:
            taken = {row.pk for row, _decision in committed}
            for row, _decision in admitted:
                if row.pk not in taken:
                    self.dispatcher.unreserve(row.job_id)
        for row, decision in committed:
            self.dispatcher.launch([(RunRequest.for_execution(row), decision)])
        return len(committed)

    def _check_cancellations(self) -> None:
        # The few rows asked to cancel, then ours among them: an IN list of every run in
        # flight (a thousand at a thousand runs a second) cost more than the rest of the round.
        asked = set(Execution.objects.cancel_requested().values_list("pk", flat=True))
        if asked:
            mine = asked.intersection(self.dispatcher.running_ids())
            if mine:
                self.dispatcher.cancel(sorted(mine))

    def _finish_exhausted(self, now: datetime) -> None:
        """Jobs that reached max_runs: stamp them so the sync removes their schedule."""
        if self.executor is not None and self.executor.exhausted:
            ids, self.executor.exhausted = self.executor.exhausted, []
            update_many(Job, ["updated_at"], [(now, pk) for pk in set(ids)])  # in id order (docs/engine.md)
