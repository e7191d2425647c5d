"""Handing executions to the thread pool or to Celery, keeping count of what runs where, stopping runs.

The dispatcher knows, in memory, which runs this node has in flight per job; the overlap
policy is decided against that count (plus the database's count for Celery jobs), so the
hot path asks the database nothing. Thread runs are stopped through their RunControl
(engine/interrupt.py): a watchdog thread enforces their time limit and carries out cancels.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import close_old_connections, connection

from scheduler_app.conf import tempora_settings
from scheduler_app.engine import outcomes, policies
from scheduler_app.engine.interrupt import RunControl, Watchdog, stuck_note
from scheduler_app.engine.runner import ChildRun, RunRequest, RunResult, refused, run_in_thread
from scheduler_app.engine.writer import Outcome, Writer
from scheduler_app.models import Execution, Job

logger = logging.getLogger(__name__)

CHILD_REAP_SECONDS = 3  # how long a stop waits for killed child runs to be reaped and recorded
THREAD_STOP_SECONDS = 1  # how long a stop waits for interrupted thread runs to stop and be recorded


def runs_per_owner(max_workers: int) -> int:
    """SCHEDULER_MAX_RUNS_PER_USER, whose default is half the workers (at least 1); 0: no cap."""
    setting = tempora_settings.MAX_RUNS_PER_USER
    return max(max_workers // 2, 1) if setting is None else setting


@dataclass
class Slot:
    request: RunRequest
    child: ChildRun | None = None
    control: RunControl | None = None  # a thread run, once started
    started: bool = False


class Dispatcher:
    def __init__(self, *, node: str, writer: Writer, max_workers: int, per_owner: int | None = None) -> None:
        self.node = node
        self.writer = writer
        self.pool = WorkerPool(
            max_workers, self._run_chain, per_owner=runs_per_owner(max_workers) if per_owner is None else per_owner
        )
        self.watchdog = Watchdog(name="tempora-watchdog", on_stuck=self._stuck)
        self.watchdog.start()
        self._lock = threading.Condition()
        self._slots: dict[int, dict[int, Slot]] = defaultdict(dict)  # job id → execution id → slot
        self._reserved: dict[int, int] = defaultdict(int)  # admitted in the current pass, not yet launched
        self._cancelled: set[int] = set()
        self._withdrawn: set[int] = set()  # never started, handed back to the database by a drain
        self.journal = writer.journal
        self.accepting = True
        self.on_slot_freed: Callable[[int], None] = lambda job_id: None  # called with the job's id

    # Admission ------------------------------------------------------------------------

    def admit(self, *, job_id: int, policy: str, max_instances: int, waiting: int = 0, elsewhere: int = 0) -> str:
        """Decide start / wait / skip / replace for a new run of a job, and reserve its slot."""
        with self._lock:
            running = len(self._slots[job_id]) + self._reserved[job_id] + elsewhere
            decision = policies.overlap_decision(policy, running=running, waiting=waiting, max_instances=max_instances)
            if decision in ("start", "replace"):
                self._reserved[job_id] += 1
            return decision

    def reserve(self, job_id: int) -> None:
        with self._lock:
            self._reserved[job_id] += 1

    def unreserve(self, job_id: int) -> None:
        with self._lock:
            self._reserved[job_id] = max(self._reserved[job_id] - 1, 0)

    def release_reservations(self) -> None:
        """The pass that admitted them was rolled back."""
        with self._lock:
            self._reserved.clear()

    def in_flight(self, job_id: int | None = None) -> int:
        with self._lock:
            if job_id is not None:
                return len(self._slots[job_id])
            return sum(len(slots) for slots in self._slots.values())

    def running_ids(self) -> list[int]:
        with self._lock:
            return [eid for slots in self._slots.values() for eid in slots]

    # Launching ------------------------------------------------------------------------

    def launch(self, requests: list[tuple[RunRequest, str]]) -> None:
        """Start admitted runs (after their rows committed). `replace` first stops the old runs."""
        chains: dict[int, list[list[RunRequest]]] = {}  # job id → chains: runs that go one after another
        for request, decision in requests:
            with self._lock:
                self._reserved[request.job_id] = max(self._reserved[request.job_id] - 1, 0)
                if decision == "replace":
                    for slot in list(self._slots[request.job_id].values()):
                        self._stop(slot, "replaced by a newer run")
                if request.executor in Job.WORKER_EXECUTORS:
                    continue
                self._slots[request.job_id][request.execution_id] = Slot(request)
            if decision == "follow" and request.job_id in chains:
                chains[request.job_id][-1].append(request)  # runs after the one before it, same thread
            else:
                chains.setdefault(request.job_id, []).append([request])
        # Submitted only once complete: a worker that took a chain while this loop still
        # appended to it could finish before the append, leaving a run that never starts
        # (and, under `skip`, a job that skipped every later occurrence).
        for job_chains in chains.values():
            for chain in job_chains:
                self.pool.submit_at(chain[0].scheduled_for, chain)
        celery = [request for request, _ in requests if request.executor == Job.Executor.CELERY]
        if celery:
            # Celery is an optional extra (tempora[celery]): imported only when a run goes to it.
            from scheduler_app.engine.celery_executor import send_to_celery  # noqa: PLC0415

            send_to_celery(celery)
        django_tasks = [request for request, _ in requests if request.executor == Job.Executor.DJANGO_TASKS]
        if django_tasks:
            # So is Django's Tasks framework on Django 5.2 (tempora[tasks]). An ImportError here
            # (the framework removed since the job was saved) fails the runs, below.
            try:
                from scheduler_app.engine.tasks_executor import send_to_tasks_backend  # noqa: PLC0415
            except ImportError as exc:
                now = datetime.now(UTC)
                for request in django_tasks:
                    self.writer.put(
                        outcomes.finished(request, RunResult("failed", now, now, error=str(exc)), worker="")
                    )
            else:
                for outcome in send_to_tasks_backend(django_tasks):
                    self.writer.put(outcome)

    def _stop(self, slot: Slot, because: str) -> None:
        """Stop one run of this node (the caller holds the lock)."""
        request = slot.request
        if slot.child is not None:
            slot.child.kill(because)
        elif slot.control is not None:
            slot.control.request_stop("cancel")  # the watchdog interrupts it after the grace
        elif not slot.started and request.execution_id not in self._cancelled:
            # Still waiting for a worker (its time, a free thread, its owner's turn): it never
            # starts; recorded now rather than when a worker reaches it.
            self._cancelled.add(request.execution_id)
            self.writer.put(outcomes.cancelled_before_start(request, now=datetime.now(UTC), worker=self.node))

    def cancel(self, execution_ids: list[int]) -> None:
        """Stop runs whose cancellation was requested (see services.execution_cancel)."""
        wanted = set(execution_ids)
        with self._lock:
            for slots in self._slots.values():
                for execution_id, slot in slots.items():
                    if execution_id in wanted:
                        self._stop(slot, "cancel requested")
            self._cancelled.update(wanted)

    def _stuck(self, execution_id: int, control: RunControl) -> None:
        """A run asked to stop is blocked outside Python: the pool gets a new worker in its
        place (capacity stays), and the row says so while the run stays `running`."""
        logger.warning(
            "run %s did not stop when interrupted (blocked outside Python); its worker is replaced", execution_id
        )
        self.pool.replace(control.thread_id)
        self.writer.put(
            Outcome(execution_id=execution_id, from_statuses=("running",), fields={"error": stuck_note(control)})
        )

    def _run_chain(self, chain: list[RunRequest]) -> None:
        """Several runs of one job due together (a backlog, catch-up): one after another,
        as APScheduler runs the run times of one submission, none before its time."""
        for index, request in enumerate(chain):
            if index and request.scheduled_for is not None:
                wait = (request.scheduled_for - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    time.sleep(wait)  # bounded by the pass's look-ahead
            self._run(request)

    def _run(self, request: RunRequest) -> None:
        started_at = datetime.now(UTC)
        try:
            with self._lock:
                # One decision under the lock: either cancel() (or a drain) sees the run
                # started (and stops it through its control), or the run sees it cancelled
                # (or withdrawn).
                cancelled = request.execution_id in self._cancelled
                withdrawn = request.execution_id in self._withdrawn
                slot = self._slots[request.job_id].get(request.execution_id)
                if slot is not None and not withdrawn:
                    slot.started = True
            if cancelled:
                self.writer.put(outcomes.cancelled_before_start(request, now=started_at, worker=self.node))
            elif withdrawn:
                pass  # handed back to the database by a drain before it started: not ours to run
            else:
                # Journaled before the body runs and right after it returns, each before the
                # writer hears of it: a kill -9 then loses neither (journal.py).
                segment = self.journal.started(request.execution_id) if self.journal else None
                self._report(outcomes.started(request, started_at=started_at, worker=self.node), segment)
                result = self._execute(request, started_at, slot)
                segment = self.journal.finished(request.execution_id, result) if self.journal else None
                self._report(outcomes.finished(request, result, worker=self.node), segment)
        except Exception:  # the pool thread must survive anything
            logger.exception("run %s of %s crashed the runner", request.execution_id, request.job_name)
        finally:
            self.watchdog.forget(request.execution_id)
            close_old_connections()  # a task may have used the ORM in this thread
            with self._lock:
                self._slots[request.job_id].pop(request.execution_id, None)
                if not self._slots[request.job_id]:
                    del self._slots[request.job_id]
                self._cancelled.discard(request.execution_id)
                self._lock.notify_all()
            self.on_slot_freed(request.job_id)

    def _report(self, outcome: Outcome, segment: int | None) -> None:
        outcome.segment = segment
        self.writer.put(outcome)

    def _execute(self, request: RunRequest, started_at: datetime, slot: Slot | None) -> RunResult:
        refusal = refused(request, started_at)
        if refusal is not None:
            return refusal
        if not request.isolate:
            control = RunControl(timeout=request.timeout)
            if slot is not None:
                slot.control = control
            self.watchdog.watch(request.execution_id, control)
            if request.execution_id in self._cancelled:  # asked between the start and now
                control.request_stop("cancel")
            return run_in_thread(request, started_at, control)
        child = ChildRun(request, on_start=lambda pid: self.writer.put(process_group(request, pid)))
        with self._lock:
            if slot is not None:
                slot.child = child
            if request.execution_id in self._cancelled:
                child.kill("cancel requested")
        return child.run(started_at)

    # Stopping -------------------------------------------------------------------------

    def drain(self, timeout: float, why: str) -> list[RunRequest]:
        """Wait up to `timeout` seconds for runs in flight, then stop them: kill those in child
        processes, interrupt those in threads (each records itself `lost` with `why`); runs that
        never started are withdrawn and handed back to the database, planned again for the next
        leader (never `lost`: no body ran). Answers the runs still in flight after that (thread
        runs blocked in a C call)."""
        self.accepting = False
        with self._lock:
            self._lock.wait_for(lambda: not any(self._slots.values()), timeout=timeout)
            self._withdraw_unstarted()
            slots = [slot for slots in self._slots.values() for slot in slots.values()]
        return self._stop_started(slots, why)

    def abandon(self, why: str) -> list[RunRequest]:
        """Stop every run of this node now, each recorded `lost` with `why`; runs not started
        yet never start. For a node cut off from the database for so long that another node
        may declare it dead (see liveness.py): nothing of it may run on after its rows say
        `lost`. Answers the runs still in their body after that (thread runs blocked in C)."""
        now = datetime.now(UTC)
        with self._lock:
            slots = [slot for slots in self._slots.values() for slot in slots.values()]
            for slot in slots:
                if not slot.started and slot.request.execution_id not in self._cancelled:
                    self._cancelled.add(slot.request.execution_id)
                    self.writer.put(outcomes.lost(slot.request, now=now, worker=self.node, why=why))
        self._stop_started(slots, why)
        with self._lock:
            return [slot.request for slots in self._slots.values() for slot in slots.values() if slot.started]

    def _stop_started(self, slots: list[Slot], why: str) -> list[RunRequest]:
        for slot in slots:
            if slot.child is not None:
                slot.child.abandon(why)
            elif slot.control is not None:
                slot.control.request_stop("shutdown", why)
        with self._lock:
            # One writer per row: the stopped runs' own threads record them, so wait for those
            # (Python code stops at once; a killed process is reaped in well under a second)
            # rather than race them.
            self._lock.wait_for(lambda: not self._started_slots(), timeout=THREAD_STOP_SECONDS)
            self._lock.wait_for(lambda: not self._started_slots(children_only=True), timeout=CHILD_REAP_SECONDS)
            left = [slot.request for slots in self._slots.values() for slot in slots.values()]
        return left

    def _withdraw_unstarted(self) -> None:
        """(Under the lock.) Runs no worker has reached: they never start here; their rows
        become claimable again (queued → scheduled, no node) for whichever node leads next."""
        for slots in self._slots.values():
            for execution_id, slot in list(slots.items()):
                if slot.started or execution_id in self._cancelled:
                    continue  # a cancelled one was recorded by _stop
                self._withdrawn.add(execution_id)
                del slots[execution_id]
                self.writer.put(
                    Outcome(execution_id=execution_id, from_statuses=("queued",), fields=dict(outcomes.AGAIN))
                )

    def _started_slots(self, *, children_only: bool = False) -> list[Slot]:
        return [
            slot
            for slots in self._slots.values()
            for slot in slots.values()
            if slot.child is not None or (not children_only and slot.control is not None and slot.control.in_body)
        ]

    def shutdown(self) -> None:
        self.watchdog.stop()
        self.pool.shutdown()


class WorkerPool:
    """Threads that run requests at their instant, taking them from shared heaps.

    Cheaper per run than a ThreadPoolExecutor plus a timer thread (no Future, no work
    queue, no semaphore): at a thousand runs a second that overhead was most of the lag.
    Runs recorded ahead of time (the pass looks ahead) wait in `_timed` for their instant;
    once due they move to `_ready`, from which a free worker takes the highest priority,
    then the earliest due, then the first submitted. A run whose owner already has
    `per_owner` runs going waits in `_parked` until one of them ends, while other owners'
    runs go ahead: no user's hanging jobs can hold every worker. Ownerless jobs (the
    system's) are not capped.
    """

    def __init__(self, size: int, run, *, per_owner: int = 0) -> None:
        self._run = run
        self.per_owner = per_owner
        self._timed: list[tuple[datetime, int, list[RunRequest]]] = []
        self._ready: list[tuple[int, datetime, int, list[RunRequest]]] = []
        self._parked: dict[int, list[tuple[int, datetime, int, list[RunRequest]]]] = {}
        self._busy: dict[int, int] = defaultdict(int)  # owner id -> runs a worker has taken
        self._retired: set[int] = set()  # workers replaced while stuck: they leave after their run
        self._ready_cv = threading.Condition()
        self._sequence = itertools.count()
        self._names = itertools.count()
        self._stopped = False
        self.threads: list[threading.Thread] = []
        for _ in range(size):
            self._add_worker()

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._work, name=f"tempora-run-{next(self._names)}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def submit_at(self, at: datetime | None, chain: list[RunRequest]) -> None:
        with self._ready_cv:
            heapq.heappush(self._timed, (at or datetime.now(UTC), next(self._sequence), chain))
            self._ready_cv.notify()

    def replace(self, thread_id: int | None) -> None:
        """Worker `thread_id` is stuck in a run: a new worker takes its place now, and the
        stuck one leaves the pool when its run ends."""
        with self._ready_cv:
            if thread_id is None or thread_id in self._retired or self._stopped:
                return
            if not any(thread.ident == thread_id for thread in self.threads):
                return  # not one of ours (a run that is not on a pool thread)
            self._retired.add(thread_id)
            self.threads = [thread for thread in self.threads if thread.ident != thread_id]
            self._add_worker()

    def _take(self, now: datetime) -> tuple[list[RunRequest] | None, float | None]:
        """The chain to run next, or None and how long to wait (None: until notified)."""
        while self._timed and self._timed[0][0] <= now:
            at, sequence, chain = heapq.heappop(self._timed)
            heapq.heappush(self._ready, (-chain[0].priority, at, sequence, chain))
        while self._ready:
            entry = heapq.heappop(self._ready)
            owner = entry[3][0].owner_id
            if owner is not None and self.per_owner:
                if self._busy[owner] >= self.per_owner:
                    heapq.heappush(self._parked.setdefault(owner, []), entry)
                    continue
                self._busy[owner] += 1
            return entry[3], None
        return None, (self._timed[0][0] - now).total_seconds() if self._timed else None

    def _done(self, chain: list[RunRequest]) -> None:
        owner = chain[0].owner_id
        if owner is None or not self.per_owner:
            return
        with self._ready_cv:
            self._busy[owner] -= 1
            if self._busy[owner] <= 0:
                del self._busy[owner]
            parked = self._parked.get(owner)
            if parked:  # the owner's best waiting run competes again for a worker
                heapq.heappush(self._ready, heapq.heappop(parked))
                if not parked:
                    del self._parked[owner]
                self._ready_cv.notify()

    def _work(self) -> None:
        me = threading.get_ident()
        while True:
            with self._ready_cv:
                while True:
                    if self._stopped or me in self._retired:
                        self._retired.discard(me)
                        connection.close()  # this thread's own connection: leave no session behind
                        return
                    chain, wait = self._take(datetime.now(UTC))
                    if chain is not None:
                        break
                    self._ready_cv.wait(wait)
            try:
                self._run(chain)
            finally:
                self._done(chain)

    def shutdown(self) -> None:
        with self._ready_cv:
            self._stopped = True
            self._timed.clear()
            self._ready.clear()
            self._parked.clear()
            self._ready_cv.notify_all()


def process_group(request: RunRequest, group: int) -> Outcome:
    """The process group of a run in a child process: recovery kills it if this node dies."""
    return Outcome(
        execution_id=request.execution_id, from_statuses=("queued", "running"), fields={"process_group": group}
    )


def claim(execution: Execution, *, node: str, now: datetime) -> bool:
    """Take a waiting row (manual run, retry, queued behind a running one) for this node.

    A Celery or Django Tasks job's row names no node: the worker that claims it writes its own name.
    """
    worker = "" if execution.job and execution.job.runs_on_workers else node
    return bool(
        Execution.objects.filter(pk=execution.pk, status="scheduled").update(
            status="queued", queued_at=now, worker=worker
        )
    )
