"""Handing executions to the thread pool or to Celery, and keeping count of what runs where.

The dispatcher knows, in memory, which runs this node has in flight per job; the overlap
policy is decided against that count (plus the database's count for Celery jobs), so the
hot path asks the database nothing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import close_old_connections, connection

from scheduler_app.engine import outcomes, policies
from scheduler_app.engine.runner import ChildRun, RunRequest, RunResult, run_in_thread
from scheduler_app.engine.writer import Outcome, Writer
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)

CHILD_REAP_SECONDS = 3  # how long a stop waits for killed child runs to be reaped and recorded


@dataclass
class Slot:
    request: RunRequest
    child: ChildRun | None = None
    started: bool = False


class Dispatcher:
    def __init__(self, *, node: str, writer: Writer, max_workers: int) -> None:
        self.node = node
        self.writer = writer
        self.pool = WorkerPool(max_workers, self._run_chain)
        self._lock = threading.Condition()
        self._slots: dict[int, dict[int, Slot]] = defaultdict(dict)  # job id → execution id → slot
        self._reserved: dict[int, int] = defaultdict(int)  # admitted in the current pass, not yet launched
        self._cancelled: set[int] = set()
        self.accepting = True

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
        from scheduler_app.tasks import send_to_celery

        chains: dict[int, list[list[RunRequest]]] = {}  # job id → chains: runs that go one after another
        for request, decision in requests:
            with self._lock:
                self._reserved[request.job_id] = max(self._reserved[request.job_id] - 1, 0)
                if decision == "replace":
                    for slot in list(self._slots[request.job_id].values()):
                        self._stop(slot, "replaced by a newer run")
                if request.executor == "celery":
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
        celery = [request for request, _ in requests if request.executor == "celery"]
        if celery:
            send_to_celery(celery)

    def _stop(self, slot: Slot, because: str) -> None:
        if slot.child is not None:
            slot.child.kill(because)
        else:
            logger.warning("run %s of %s cannot be interrupted (it runs in a thread); it will finish",
                           slot.request.execution_id, slot.request.job_name)

    def cancel(self, execution_ids: list[int]) -> None:
        """Stop runs whose cancellation was requested (see services.execution_cancel)."""
        with self._lock:
            self._cancelled.update(execution_ids)
            for slots in self._slots.values():
                for execution_id, slot in slots.items():
                    if execution_id in execution_ids:
                        self._stop(slot, "cancel requested")

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
            if request.execution_id in self._cancelled:
                result = RunResult("cancelled", started_at, started_at, error="Cancelled before it started.")
            else:
                self.writer.put(outcomes.started(request, started_at=started_at, worker=self.node))
                result = self._execute(request, started_at)
            self.writer.put(outcomes.finished(request, result, worker=self.node))
        except Exception:  # the pool thread must survive anything
            logger.exception("run %s of %s crashed the runner", request.execution_id, request.job_name)
        finally:
            close_old_connections()  # a task may have used the ORM in this thread
            with self._lock:
                self._slots[request.job_id].pop(request.execution_id, None)
                if not self._slots[request.job_id]:
                    del self._slots[request.job_id]
                self._cancelled.discard(request.execution_id)
                self._lock.notify_all()

    def _execute(self, request: RunRequest, started_at: datetime) -> RunResult:
        if not request.isolate:
            return run_in_thread(request, started_at)
        child = ChildRun(request)
        with self._lock:
            slot = self._slots[request.job_id].get(request.execution_id)
            if slot is not None:
                slot.child = child
        return child.run(started_at)

    # Stopping -------------------------------------------------------------------------

    def drain(self, timeout: float, why: str) -> list[RunRequest]:
        """Wait up to `timeout` seconds for runs in flight, then kill those in child processes
        (their threads record them `lost` with `why`); answer the runs still in flight."""
        self.accepting = False
        with self._lock:
            self._lock.wait_for(lambda: not any(self._slots.values()), timeout=timeout)
            children = [slot.child for slots in self._slots.values() for slot in slots.values() if slot.child]
        for child in children:
            child.abandon(why)
        with self._lock:
            # One writer per row: the killed runs' own threads record them, so wait for those
            # (a killed process is reaped in well under a second) rather than race them.
            self._lock.wait_for(
                lambda: not any(slot.child for slots in self._slots.values() for slot in slots.values()),
                timeout=CHILD_REAP_SECONDS,
            )
            left = [slot.request for slots in self._slots.values() for slot in slots.values()]
        return left

    def shutdown(self) -> None:
        self.pool.shutdown()


class WorkerPool:
    """Threads that run requests at their instant, taking them from one shared heap.

    Cheaper per run than a ThreadPoolExecutor plus a timer thread (no Future, no work
    queue, no semaphore): at a thousand runs a second that overhead was most of the lag.
    Runs recorded ahead of time (the pass looks ahead) wait in the heap for their instant.
    """

    def __init__(self, size: int, run) -> None:
        self._run = run
        self._heap: list[tuple[datetime, int, list[RunRequest]]] = []
        self._ready = threading.Condition()
        self._sequence = itertools.count()
        self._stopped = False
        self.threads = [
            threading.Thread(target=self._work, name=f"tempora-run-{n}", daemon=True) for n in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def submit_at(self, at: datetime | None, chain: list[RunRequest]) -> None:
        with self._ready:
            heapq.heappush(self._heap, (at or datetime.now(UTC), next(self._sequence), chain))
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                while True:
                    if self._stopped:
                        connection.close()  # this thread's own connection: leave no session behind
                        return
                    if self._heap:
                        wait = (self._heap[0][0] - datetime.now(UTC)).total_seconds()
                        if wait <= 0:
                            request = heapq.heappop(self._heap)[2]
                            break
                    else:
                        wait = None
                    self._ready.wait(wait)
            self._run(request)

    def shutdown(self) -> None:
        with self._ready:
            self._stopped = True
            self._heap.clear()
            self._ready.notify_all()


def lost_outcome(request: RunRequest, *, now: datetime, worker: str, why: str) -> Outcome:
    """A run that was in flight when its scheduler stopped or died: `lost`, retried if it may be."""
    outcome = outcomes.finished(request, RunResult("lost", now, now, error=why), worker=worker)
    outcome.fields.pop("started_at")  # keep the real start time on the row
    return outcome


def claim(execution: Execution, *, node: str, now: datetime) -> bool:
    """Take a waiting row (manual run, retry, queued behind a running one) for this node.

    A Celery job's row names no node: the worker that claims it writes its own name.
    """
    worker = "" if execution.job and execution.job.executor == "celery" else node
    return bool(
        Execution.objects.filter(pk=execution.pk, status="scheduled").update(status="queued", queued_at=now, worker=worker)
    )
