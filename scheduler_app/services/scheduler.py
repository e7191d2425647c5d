"""The scheduler as a whole: global pause, shutdown, runtime settings."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from scheduler_app import permissions
from scheduler_app.conf import SETTINGS, tempora_settings
from scheduler_app.models import SchedulerState
from scheduler_app.permissions import Forbidden
from scheduler_app.services.base import _now

logger = logging.getLogger(__name__)


# Runtime settings the console and API may change, with the TEMPORA key (conf.py) each overrides.
RUNTIME_SETTINGS = {
    # (key, lowest, highest): the lowest is the setting's own minimum.
    "max_workers": ("MAX_WORKERS", SETTINGS["MAX_WORKERS"].minimum, 1000),
    "misfire_grace_time": ("MISFIRE_GRACE_TIME", SETTINGS["MISFIRE_GRACE_TIME"].minimum, 86_400),
    "history_per_job": ("HISTORY_PER_JOB", SETTINGS["HISTORY_PER_JOB"].minimum, 1_000_000),
    "history_days": ("HISTORY_DAYS", SETTINGS["HISTORY_DAYS"].minimum, 3650),
}



# The scheduler --------------------------------------------------------------------------


def _require_control(actor) -> None:
    if actor is not None and not permissions.may_control_scheduler(actor):
        raise Forbidden(gettext("You may not control the scheduler: it needs the permission %(permission)s.") % {
            "permission": permissions.CONTROL_SCHEDULER})


def _update_state(**values: Any) -> SchedulerState:
    state = SchedulerState.load()
    SchedulerState.objects.filter(pk=state.pk).update(**values)
    state.refresh_from_db()
    return state


@transaction.atomic
def scheduler_pause(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Stop every job from firing (runs already started finish)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=True, paused_at=now, updated_at=now)


@transaction.atomic
def scheduler_resume(*, now: datetime | None = None, actor=None) -> SchedulerState:
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=False, paused_at=None, updated_at=now)


@transaction.atomic
def scheduler_shutdown_request(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Ask every runscheduler process to stop gracefully (they drain running jobs first)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(shutdown_requested_at=now, updated_at=now)


@transaction.atomic
def scheduler_config_update(*, values: dict[str, Any], now: datetime | None = None, actor=None) -> SchedulerState:
    """Change runtime settings; unknown keys and out-of-range values are refused by name."""
    _require_control(actor)
    errors = {}
    for key, value in values.items():
        if key not in RUNTIME_SETTINGS:
            known = ", ".join(sorted(RUNTIME_SETTINGS))
            errors[key] = [gettext("Unknown setting; known: %(known)s.") % {"known": known}]
            continue
        _, low, high = RUNTIME_SETTINGS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[key] = [gettext("Must be a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}]
    if errors:
        raise ValidationError(errors)
    now = _now(now)
    state = SchedulerState.load()
    return _update_state(config={**state.config, **values}, updated_at=now)


def scheduler_setting(key: str, state: SchedulerState | None = None) -> int:
    """A runtime setting: the value set in the console or API, else the deployment's (conf.py)."""
    setting_key, _, _ = RUNTIME_SETTINGS[key]
    state = state or SchedulerState.load()
    return state.config.get(key, getattr(tempora_settings, setting_key))


