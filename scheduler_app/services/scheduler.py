"""The scheduler as a whole: global pause, shutdown, runtime settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.functions import Now
from django.utils.translation import gettext

from scheduler_app import permissions
from scheduler_app.conf import SETTINGS, tempora_settings
from scheduler_app.models import SchedulerNode, SchedulerState
from scheduler_app.permissions import Forbidden
from scheduler_app.services.base import _now, tells_scheduler

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
        raise Forbidden(
            gettext("You may not control the scheduler: it needs the permission %(permission)s.")
            % {"permission": permissions.CONTROL_SCHEDULER}
        )


def _update_state(**values: Any) -> SchedulerState:
    state = SchedulerState.load()
    SchedulerState.objects.filter(pk=state.pk).update(**values)
    state.refresh_from_db()
    return state


@tells_scheduler
def scheduler_pause(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Stop every job from firing (runs already started finish)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=True, paused_at=now, updated_at=now)


@tells_scheduler
def scheduler_resume(*, now: datetime | None = None, actor=None) -> SchedulerState:
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=False, paused_at=None, updated_at=now)


@tells_scheduler
def scheduler_shutdown_request(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Ask every runscheduler process to stop gracefully (they drain running jobs first)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(shutdown_requested_at=now, updated_at=now)


@tells_scheduler
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


# Is it up, who leads ----------------------------------------------------------------------


@dataclass(frozen=True)
class Liveness:
    """Is the scheduler up and who leads: the one answer of the console, both APIs, /api/health/
    and /metrics (scheduler_liveness)."""

    state: SchedulerState
    leader: SchedulerNode | None  # the node whose lease is valid; None: nothing fires
    alive: list[SchedulerNode]  # nodes with a fresh heartbeat, standbys and draining ones too
    db_now: datetime

    @property
    def up(self) -> bool:
        return self.leader is not None

    @property
    def status(self) -> str:
        """ "paused" (the global pause is on), "running" (a leader holds the lease) or "down"."""
        if self.state.paused:
            return "paused"
        return "running" if self.up else "down"


def scheduler_liveness() -> Liveness:
    """The scheduler is up while a leader's lease is valid by the database's clock (the clock
    every node's lease statements share; docs/engine.md, "Liveness, the lease and recovery").
    A draining node has given the lease back: it beats on, but leads nothing. Three queries."""
    SchedulerState.load()
    state = SchedulerState.objects.annotate(db_now=Now()).get(pk=SchedulerState.SINGLETON_ID)
    db_now = state.db_now
    lease = timedelta(seconds=tempora_settings.LEASE_SECONDS)
    alive = list(
        SchedulerNode.objects.exclude(state=SchedulerNode.State.STOPPED).filter(last_beat_at__gte=db_now - lease)
    )
    leader = None
    if state.leader and state.lease_expires_at is not None and state.lease_expires_at > db_now:
        leader = next((node for node in alive if node.name == state.leader), None) or (
            SchedulerNode.objects.filter(name=state.leader).first()
        )
    return Liveness(state=state, leader=leader, alive=alive, db_now=db_now)
