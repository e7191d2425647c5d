"""The one writer for run outcomes: worker threads report, this thread writes, in batches.

At a thousand runs a second, a transaction per status change would queue every worker
behind SQLite's single write lock. Workers put small records on a queue instead; the writer
drains it every few milliseconds and applies a batch in one transaction. Every status change
is conditional on the old status, so a late or repeated report is a no-op.

What waits here dies with the process; each run's start and end are also in the node's
journal (journal.py), written before the outcome is put here. Once a batch commits, the
writer tells the journal, which deletes the segments it no longer needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, close_old_connections, connection, transaction

from scheduler_app.engine.dblock import writing
from scheduler_app.engine.journal import Journal
from scheduler_app.engine.sql import add_to_counters, select_by_ids, update_many
from scheduler_app.models import Execution, Job

logger = logging.getLogger(__name__)

BATCH_SECONDS = 0.02
MAX_GATHER_SECONDS = 0.25
MAX_BATCH = 1000


@dataclass
class Outcome:
    """A status change for one execution, and what it means for the job's counters."""

    execution_id: int
    from_statuses: tuple[str, ...]
    fields: dict[str, Any]
    job_id: int | None = None
    counts_as_run: bool = False
    failed: bool = False
    new_rows: list[Execution] = field(default_factory=list)  # e.g. the retry, created only if the change applied
    after: Callable[[], None] | None = field(default=None, repr=False)  # runs after commit
    segment: int | None = None  # the journal segment that holds this change until it commits


class Writer:
    """Worker threads `put()` outcomes; one thread writes them in batches.

    A deque, not a queue.Queue: appends are atomic under the GIL, so ten worker threads
    reporting a thousand runs a second never contend for a lock.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal
        self._items: deque[Outcome] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tempora-writer", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        self._items.append(outcome)
        if not self._wake.is_set():
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if not self._stopping:
                self._gather()
            while self._items:
                batch = []
                while self._items and len(batch) < MAX_BATCH:
                    batch.append(self._items.popleft())
                self._write(batch)
            if self._stopping and not self._items:
                connection.close()  # this thread's own connection: leave no session behind
                if self.journal is not None:
                    self.journal.close(remove=True)  # everything it held is committed
                return

    def _gather(self) -> None:
        """Wait while outcomes keep arriving (up to MAX_GATHER_SECONDS), then write them at once.

        A burst of runs due at one instant reports for as long as it lasts: writing during
        it took the GIL from the worker threads still starting runs, and that was most of
        the tail of the start lag at a thousand runs a second. A lone outcome waits 20 ms.
        """
        deadline = time.monotonic() + MAX_GATHER_SECONDS
        seen = -1
        while len(self._items) != seen and time.monotonic() < deadline:
            seen = len(self._items)
            time.sleep(BATCH_SECONDS)

    def _write(self, batch: list[Outcome]) -> None:
        delay = 0.25
        while True:
            close_old_connections()
            try:
                with writing(), transaction.atomic():
                    apply_outcomes(batch)
                break
            except (DataError, IntegrityError) as exc:
                # The database refuses some value in the batch: it will refuse it forever, so
                # write the outcomes one by one and give up only on the one it refuses.
                logger.error("a batch of %d run outcomes was refused (%s); writing them one by one", len(batch), exc)
                self._write_each(batch)
                break
            except DatabaseError as exc:
                # The database is away: never drop an outcome; wait and try the same batch again.
                logger.error("writing %d run outcomes failed (%s); retrying in %.1fs", len(batch), exc, delay)
                try:
                    connection.close()
                except DatabaseError:
                    pass
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.batches += 1
        if self.journal is not None:
            self.journal.committed(outcome.segment for outcome in batch)
        for outcome in batch:
            if outcome.after is not None:
                try:
                    outcome.after()
                except Exception:
                    logger.exception("after-write hook failed for execution %s", outcome.execution_id)

    @staticmethod
    def _write_each(batch: list[Outcome]) -> None:
        for outcome in batch:
            try:
                with writing(), transaction.atomic():
                    apply_outcomes([outcome])
            except (DataError, IntegrityError):
                logger.exception(
                    "the outcome of execution %s could not be written; it is dropped", outcome.execution_id
                )


def apply_outcomes(batch: list[Outcome]) -> None:
    """Apply a batch of status changes in the caller's transaction.

    One SELECT reads the current statuses (locking the rows on PostgreSQL; on SQLite the
    IMMEDIATE transaction already holds the write lock), each change applies only if the row
    is still in one of its expected statuses, and the UPDATEs run as one executemany per
    shape. Job counters get one UPDATE per job, not per run.
    """
    current = _current_statuses([outcome.execution_id for outcome in batch])
    original = dict(current)
    merged: dict[int, dict[str, Any]] = {}  # several changes to one row become one UPDATE
    counters: dict[int, dict[str, Any]] = {}
    new_rows: list[Execution] = []
    for outcome in batch:
        status = current.get(outcome.execution_id)
        if status not in outcome.from_statuses:
            continue  # a late or repeated report, or the row moved on (cancelled): a no-op
        merged.setdefault(outcome.execution_id, {}).update(outcome.fields)
        current[outcome.execution_id] = outcome.fields.get("status", status)
        new_rows.extend(outcome.new_rows)
        if outcome.job_id is not None and outcome.counts_as_run:
            entry = counters.setdefault(outcome.job_id, {"runs": 0, "failures": 0, "status": "", "at": None})
            entry["runs"] += 1
            entry["failures"] += int(outcome.failed)
            finished: datetime | None = outcome.fields.get("finished_at")
            if entry["at"] is None or (finished and finished >= entry["at"]):
                entry["status"], entry["at"] = outcome.fields.get("status", ""), finished
    updates: dict[tuple[str, ...], list[list]] = defaultdict(list)
    for execution_id, fields in merged.items():
        updates[tuple(fields)].append([*fields.values(), execution_id, original[execution_id]])
    for names, rows in updates.items():
        update_many(Execution, names, rows, where=("pk", "status"))
    if new_rows:
        # The unique occurrence constraint makes a retry row created twice a no-op.
        new_rows.sort(key=lambda row: (row.job_id, row.scheduled_for, row.attempt))  # the pass's insert order
        Execution.objects.bulk_create(new_rows, ignore_conflicts=True)
    add_to_counters(
        Job,
        [(e["runs"], e["failures"], e["status"], e["at"], job_id) for job_id, e in counters.items()],
        add=("run_count", "failure_count"),
        set_=("last_status", "last_run_at"),
    )


def _current_statuses(ids: list[int]) -> dict[int, str]:
    # Locks the rows on PostgreSQL; on SQLite the IMMEDIATE transaction holds the write lock.
    return dict(select_by_ids(Execution, ("pk", "status"), ids, for_update=True))
