"""Exclusion calendars; their jobs re-plan when they change."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from scheduler_app import permissions
from scheduler_app.models import Calendar, Job
from scheduler_app.permissions import Forbidden
from scheduler_app.services.base import ServiceError, _now, tells_scheduler
from scheduler_app.services.jobs import _refresh_next_run

logger = logging.getLogger(__name__)


# Calendars ------------------------------------------------------------------------------


def _touch_jobs_using(calendar: Calendar, now: datetime) -> None:
    # Linked jobs re-plan on the scheduler's next sync.
    jobs = Job.objects.filter(triggers__calendar=calendar).distinct()
    Job.objects.filter(pk__in=jobs.values("pk")).update(updated_at=now)
    for job in Job.objects.filter(pk__in=jobs.values("pk")).prefetch_related("triggers__calendar"):
        _refresh_next_run(job, now)


# The Calendar fields a caller may set. Without this check calendar_update's setattr
# silently accepted a misspelt field (and id or created_at), and calendar_create raised TypeError.
CALENDAR_FIELDS = ("name", "description", "excluded_dates", "business_days_only", "owner")


def _check_calendar_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(CALENDAR_FIELDS))
    if unknown:
        raise ValidationError({name: gettext("This field cannot be set.") for name in unknown})


def _normalise_dates(value: Any) -> Any:
    # Sort and de-duplicate only a list of strings. Anything else goes to the field's validator
    # as given: sorted(set(...)) raised TypeError on [{"day": 25}] and split "2026-12-25" into
    # characters, so the user got a crash or a message about '-' instead of "must be a list".
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(set(value))
    return value


def _check_calendar_owner(actor, owner) -> None:
    if actor is not None and not permissions.may_own_calendar(actor, owner):
        raise ValidationError(
            {
                "owner": gettext(
                    "You may only own calendars yourself: shared calendars, or someone else's, need the permission %(permission)s."
                )
                % {"permission": permissions.ADD_SHARED_CALENDAR if owner is None else permissions.CHANGE_CALENDARS}
            }
        )


def _require_calendar(actor, calendar: Calendar, *, delete: bool = False) -> None:
    if actor is not None and not permissions.may_change_calendar(actor, calendar, delete=delete):
        raise Forbidden(
            gettext("Calendar %(name)s is shared or someone else's: you may not change it.")
            % {"name": repr(calendar.name)}
        )


@transaction.atomic
def calendar_create(
    *,
    name: str,
    excluded_dates: list[str] | None = None,
    now: datetime | None = None,
    actor=None,
    **fields: Any,
) -> Calendar:
    """A calendar; the actor owns it unless `owner` says otherwise (None: shared)."""
    _check_calendar_fields(fields)
    if actor is not None:
        fields.setdefault("owner", actor)
    _check_calendar_owner(actor, fields.get("owner"))
    now = _now(now)
    excluded_dates = [] if excluded_dates is None else excluded_dates
    calendar = Calendar(name=name, excluded_dates=_normalise_dates(excluded_dates), updated_at=now, **fields)
    calendar.full_clean()
    calendar.save()
    return calendar


@tells_scheduler
def calendar_update(*, calendar: Calendar, now: datetime | None = None, actor=None, **fields: Any) -> Calendar:
    _check_calendar_fields(fields)
    _require_calendar(actor, calendar)
    if "owner" in fields and getattr(fields["owner"], "pk", fields["owner"]) != calendar.owner_id:
        _check_calendar_owner(actor, fields["owner"])
    now = _now(now)
    for field, value in fields.items():
        setattr(calendar, field, _normalise_dates(value) if field == "excluded_dates" else value)
    calendar.updated_at = now
    calendar.full_clean()
    calendar.save()
    _touch_jobs_using(calendar, now)
    return calendar


@tells_scheduler
def calendar_delete(*, calendar: Calendar, actor=None) -> None:
    _require_calendar(actor, calendar, delete=True)
    if calendar.triggers.exists():
        names = ", ".join(sorted({t.job.name for t in calendar.triggers.select_related("job")})[:5])
        raise ServiceError(
            {
                "calendar": gettext("Calendar %(name)s is used by: %(jobs)s. Unlink it first.")
                % {"name": repr(calendar.name), "jobs": names}
            }
        )
    calendar.delete()
