"""History past the retention limit is pruned batch after batch, not one batch a minute."""

from __future__ import annotations

from datetime import timedelta

from scheduler_app import services
from scheduler_app.engine import retention
from scheduler_app.models import Execution
from tests.process.harness import PROCESS, every, utcnow

pytestmark = PROCESS


def test_a_backlog_of_old_history_is_pruned_within_seconds(schedulers):
    job = every("old-history", 3600)
    days = services.scheduler_setting("history_days")
    old = utcnow() - timedelta(days=days + 1)
    Execution.objects.bulk_create(
        Execution(
            job=job,
            job_name=job.name,
            scheduled_for=old - timedelta(seconds=n),
            run_after=old,
            started_at=old,
            finished_at=old,
            status="succeeded",
        )
        for n in range(4 * retention.BATCH)
    )
    schedulers.start_leader()
    # One batch a minute would leave three batches for three more minutes.
    schedulers.wait_for(
        lambda: not Execution.objects.filter(finished_at__lt=utcnow() - timedelta(days=days)).exists(),
        timeout=15,
        what="every run past the history limit pruned",
    )
