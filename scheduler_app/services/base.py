"""What every service shares: the refusal for "not now", the clock, the permission check."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from scheduler_app import permissions
from scheduler_app.models import Job
from scheduler_app.permissions import JobAction


class ServiceError(ValidationError):
    """A request that is well-formed but not allowed now (e.g. editing a code-defined job)."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _require(actor, action: JobAction, jobs: Iterable[Job]) -> None:
    """Refuse the whole call, naming the jobs, unless the actor may do `action` to every one."""
    if actor is not None:
        permissions.require_jobs(actor, action, jobs)


def _selection(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """A selection resolved once to ids (the check and the change then see the same rows)."""
    return Job.objects.filter(pk__in=list(jobs.values_list("pk", flat=True))).select_related("owner")
