"""Runs: cancel, retry, acknowledge dead letters."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from scheduler_app import permissions
from scheduler_app.models import Execution, Job, SchedulerNode
from scheduler_app.permissions import JobAction
from scheduler_app.services.base import ServiceError, _now, tells_scheduler

logger = logging.getLogger(__name__)


# Executions -----------------------------------------------------------------------------


# A row a scheduler thread or a Celery worker holds: only its holder can stop it. A queued
# row names its scheduler node when that node's pool has it (thread executor); a queued Celery
# row names nobody until a worker claims it, and that claim is conditional on `queued`.
_HELD = Q(status=Execution.Status.RUNNING) | (Q(status=Execution.Status.QUEUED) & ~Q(worker=""))


def _cancel_unheld(executions: QuerySet[Execution], now: datetime) -> int:
    return (
        executions.filter(status__in=Execution.PENDING)
        .exclude(_HELD)
        .update(status=Execution.Status.CANCELLED, finished_at=now, error="Cancelled before it started.")
    )


def _require_run(actor, action: JobAction, executions: Iterable[Execution]) -> None:
    if actor is not None:
        permissions.require_executions(actor, action, executions)


def _cancel_pending(executions: QuerySet[Execution], now: datetime) -> int:
    """Cancel runs that have not started: at once if no process holds them, else by asking
    their scheduler (it records them cancelled before they start). Answers how many."""
    asked = executions.filter(_HELD, status=Execution.Status.QUEUED, cancel_requested_at__isnull=True).update(
        cancel_requested_at=now
    )
    return asked + _cancel_unheld(executions, now)


@tells_scheduler
def execution_cancel(*, execution: Execution, now: datetime | None = None, actor=None) -> Execution:
    """Cancel a run. One no process holds yet (waiting in the database, or queued for Celery)
    is cancelled at once. One a scheduler or worker holds is asked to stop: `cancel_requested_at`
    is set (`execution.cancel_pending`), and its holder records `cancelled` once the body has
    stopped — or the body's own outcome, if it finished first.

    Refused (ServiceError) for a finished run, and for one whose scheduler node is not alive:
    nothing could stop it; recovery marks it lost.
    """
    _require_run(actor, JobAction.CANCEL, [execution])
    now = _now(now)
    rows = Execution.objects.filter(pk=execution.pk)
    if _cancel_unheld(rows, now):
        execution.refresh_from_db()
        return execution
    execution.refresh_from_db()
    if execution.status not in (Execution.Status.QUEUED, Execution.Status.RUNNING):
        raise ServiceError(
            {
                "status": gettext("A %(status)s run cannot be cancelled.")
                % {"status": execution.get_status_display().lower()}
            }
        )
    node = SchedulerNode.objects.filter(name=execution.worker).first() if execution.worker else None
    if node is not None and not node.is_alive(now=now):
        raise ServiceError(
            {
                "status": gettext(
                    "Nothing can stop this run: its scheduler %(node)s is not running. It is marked lost when another "
                    "scheduler recovers that node."
                )
                % {"node": node.name}
            }
        )
    rows.filter(
        status__in=[Execution.Status.QUEUED, Execution.Status.RUNNING], cancel_requested_at__isnull=True
    ).update(cancel_requested_at=now)
    execution.refresh_from_db()
    return execution


@tells_scheduler
def execution_retry(*, execution: Execution, now: datetime | None = None, actor=None) -> Execution:
    """Run a finished, unsuccessful run again as the next attempt of the same occurrence."""
    _require_run(actor, JobAction.RETRY, [execution])
    now = _now(now)
    if not execution.can_retry:
        raise ServiceError(
            {
                "status": gettext(
                    "Only failed, timed-out, lost, cancelled or missed runs of an existing job can be retried."
                )
            }
        )
    latest = (
        Execution.objects.filter(job_id=execution.job_id, scheduled_for=execution.scheduled_for)
        .order_by("-attempt")
        .values_list("attempt", flat=True)
        .first()
    )
    retry = Execution.objects.create(
        job_id=execution.job_id,
        job_name=execution.job_name,
        trigger_id=execution.trigger_id,
        scheduled_for=execution.scheduled_for,
        run_after=now,
        attempt=(latest or execution.attempt) + 1,
        reason=Execution.Reason.RETRY,
        created_at=now,
        args=execution.args,
        kwargs=execution.kwargs,
        requested_by=actor if permissions.signed_in(actor) else None,
    )
    # A retried dead letter has been dealt with.
    Execution.objects.filter(pk=execution.pk, dead_letter=True, acknowledged_at__isnull=True).update(
        acknowledged_at=now
    )
    Job.objects.filter(pk=execution.job_id).update(updated_at=now)
    return retry


@transaction.atomic
def dead_letter_acknowledge(*, executions: QuerySet[Execution], now: datetime | None = None, actor=None) -> int:
    """Mark dead letters as seen, all or none; answers how many."""
    letters = Execution.objects.filter(
        pk__in=list(executions.filter(dead_letter=True, acknowledged_at__isnull=True).values_list("pk", flat=True))
    )
    _require_run(actor, JobAction.RETRY, letters.select_related("job"))
    return letters.update(acknowledged_at=_now(now))
