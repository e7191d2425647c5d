"""Is the scheduler up, who leads: the console, the API, /api/health/ and /metrics give one
answer (services.scheduler_liveness): a leader is up while its lease is valid by the database clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduler_app.models import SchedulerNode, SchedulerState
from tests.api.conftest import _client
from tests.web.conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]

LEADER = "host:1:leader"


def _node(name: str, *, state: str = "running", role: str = "standby", beat_age: float = 1) -> SchedulerNode:
    now = timezone.now()
    return SchedulerNode.objects.create(
        name=name,
        hostname="host",
        pid=1,
        role=role,
        state=state,
        started_at=now - timedelta(hours=1),
        last_beat_at=now - timedelta(seconds=beat_age),
    )


def _lease(leader: str, expires_in: float | None, *, paused: bool = False) -> None:
    SchedulerState.load()
    expires = None if expires_in is None else timezone.now() + timedelta(seconds=expires_in)
    SchedulerState.objects.filter(pk=1).update(leader=leader, lease_expires_at=expires, paused=paused)


def no_leader():
    _node("host:2:standby")
    _lease("", None)


def leading():
    _node(LEADER, role="leader")
    _node("host:2:standby")
    _lease(LEADER, 8)


def lease_expired():
    # Its heartbeat is still fresh: the process lives, but its lease ran out, so nothing fires.
    _node(LEADER, role="leader")
    _lease(LEADER, -2)


def paused():
    _node(LEADER, role="leader")
    _lease(LEADER, 8, paused=True)


def draining():
    # A graceful stop gave the lease back; the node beats on as draining until its runs end.
    _node(LEADER, state="draining", role="leader")
    _lease("", None)


# (set-up, up, leader, the console's and the API's status)
STATES = [
    (no_leader, False, None, "down"),
    (leading, True, LEADER, "running"),
    (lease_expired, False, None, "down"),
    (paused, True, LEADER, "paused"),
    (draining, False, None, "down"),
]


def console_reading(user) -> tuple[bool, str | None, str]:
    summary = client_for(user).get(reverse("tempora:scheduler")).context["summary"]
    leader = summary.leader.name if summary.leader else None
    return leader is not None, leader, summary.status


def api_reading(user) -> tuple[bool, str | None, str]:
    body = _client(user).get("/api/scheduler/").json()
    status = {"stopped": "down"}.get(body["state"], body["state"])
    return body["leader"] is not None, body["leader"], status


def health_reading(user) -> bool:
    response = _client(user).get("/api/health/")
    assert response.status_code in (200, 503)
    return response.status_code == 200


def metrics_reading(user) -> tuple[bool, str | None]:
    text = _client(user).get("/metrics").content.decode()
    up = re.search(r"^tempora_scheduler_up (\d)$", text, re.M)
    leader = re.search(r'^tempora_scheduler_leader\{node="([^"]+)"\} 1$', text, re.M)
    return up is not None and up[1] == "1", leader[1] if leader else None


@pytest.mark.parametrize("setup, up, leader, status", STATES, ids=[s[0].__name__ for s in STATES])
def test_every_interface_agrees_on_whether_it_is_up_and_who_leads(team_admin, setup, up, leader, status):
    setup()
    assert console_reading(team_admin) == (up, leader, status)
    assert api_reading(team_admin) == (up, leader, status)
    assert health_reading(team_admin) is up
    assert metrics_reading(team_admin) == (up, leader)
    # The FastScheduler-compatible API's "running": up and not paused.
    assert _client(team_admin).get("/scheduler/api/status").json()["running"] is (status == "running")
