"""Worker runs whose worker died: found by their stale heartbeat, handed to recovery.

A run on a Celery worker or a Django Tasks backend's worker has no scheduler node to die
with, and its message does not help: a redelivery of a claimed row is a no-op
(worker_run.run_claimed). The worker process stamps
`heartbeat_at` of the runs it executes every worker_run.HEARTBEAT_SECONDS; the leader looks,
every few seconds, for Celery runs still `running` whose stamp is older than
SCHEDULER_CELERY_LOST_SECONDS and marks them through recovery.mark_lost, which applies the
job's lost policy (retry, or record). So a worker killed whole is recovered within that
threshold plus one check; a pool process killed under a live worker is recorded at once by
the worker itself (celery_executor.ExecutionRequest).

Stale is not dead when nobody could write: after a gap in the checks (this node just took
the lead, or the database was away, for the workers too) rows are declared only once the
workers have had GRACE_SECONDS to beat again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction

from scheduler_app.conf import tempora_settings
from scheduler_app.engine import recovery
from scheduler_app.engine.dblock import writing
from scheduler_app.models import Execution

logger = logging.getLogger(__name__)

GRACE_SECONDS = 6  # three of the workers' heartbeats


class WorkerLossCheck:
    """The leader's chore: `check(now)` each round; it does its work every `every` seconds."""

    def __init__(self, *, lost_seconds: int | None = None) -> None:
        self.lost_after = timedelta(seconds=lost_seconds or tempora_settings.CELERY_LOST_SECONDS)
        self.every = timedelta(seconds=max(self.lost_after.total_seconds() / 5, 1))
        self._gap = max(2 * self.every, timedelta(seconds=5))
        self._last: datetime | None = None
        self._watching_since: datetime | None = None

    def check(self, now: datetime) -> int:
        """Mark Celery runs lost whose heartbeat is stale; answers how many."""
        if self._last is not None and now - self._last < self.every:
            return 0
        if self._last is None or now - self._last > self._gap:
            self._watching_since = now
        self._last = now
        if now - self._watching_since < timedelta(seconds=GRACE_SECONDS):
            return 0
        cutoff = now - self.lost_after
        # Worker runs (Celery, Django Tasks) are those with a task id; a row without a heartbeat was claimed by a worker
        # of an older version, which would not stop a run we re-ran: left alone.
        stale = Execution.objects.filter(status="running", heartbeat_at__lt=cutoff).exclude(task_id="").order_by()
        if not stale.exists():
            return 0
        with writing(), transaction.atomic():
            # Locked and re-read: a heartbeat committed meanwhile takes its row out.
            rows = stale.select_for_update(of=("self",)).order_by("pk")
            found = list(rows.values_list("pk", "worker", "heartbeat_at"))
            lost = recovery.mark_lost(
                Execution.objects.filter(pk__in=[pk for pk, _, _ in found], status="running"),
                now=now,
                why=f"Lost: its Celery worker stopped sending heartbeats for more than "
                f"{self.lost_after.total_seconds():g}s (SCHEDULER_CELERY_LOST_SECONDS).",
            )
        for pk, worker, beat in found:
            logger.warning(
                "execution %s on %s sent no heartbeat since %s: its worker is gone; marked lost",
                pk,
                worker,
                f"{beat:%H:%M:%S}",
            )
        return lost
