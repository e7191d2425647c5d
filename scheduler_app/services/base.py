"""What every service shares: the refusal for "not now", the clock, the permission check."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ParamSpec, TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from scheduler_app import changes, permissions
from scheduler_app.models import Job
from scheduler_app.permissions import JobAction


class ServiceError(ValidationError):
    """A request that is well-formed but not allowed now (e.g. editing a code-defined job)."""


P = ParamSpec("P")
R = TypeVar("R")


def tells_scheduler(service: Callable[P, R]) -> Callable[P, R]:
    """A service whose change the scheduler acts on: one transaction, and once it commits, the
    running schedulers woken (changes.notify), so they apply it at once, not at their next poll."""

    @functools.wraps(service)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with transaction.atomic():
            result = service(*args, **kwargs)
            changes.notify()
        return result

    return wrapper


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _require(actor, action: JobAction, jobs: Iterable[Job]) -> None:
    """Refuse the whole call, naming the jobs, unless the actor may do `action` to every one."""
    if actor is not None:
        permissions.require_jobs(actor, action, jobs)


def _selection(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """A selection resolved once to ids (the check and the change then see the same rows)."""
    return Job.objects.filter(pk__in=list(jobs.values_list("pk", flat=True))).select_related("owner")
