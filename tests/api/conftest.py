"""Fixtures for the API tests: clients signed in as each of the shared users."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from scheduler_app import services
from scheduler_app.registry import registry


@pytest.fixture
def anonymous():
    return APIClient()


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def as_owner(owner):
    return _client(owner)


@pytest.fixture
def as_outsider(outsider):
    return _client(outsider)


@pytest.fixture
def as_team_admin(team_admin):
    return _client(team_admin)


@pytest.fixture
def token_client():
    """token_client(user) → an APIClient that sends a real API token of `user`."""

    def make(user, scheme: str = "Token") -> APIClient:
        _token, key = services.token_create(user=user, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        return client

    return make


@pytest.fixture
def owned_job(make_job, owner):
    return make_job(name="owned", owner=owner, group="etl", tags=["nightly"])


class World:
    """One of everything, owned by `owner`: the objects the permission matrix reaches for."""

    def __init__(self, *, owner, make_job):
        from datetime import timedelta

        from django.utils import timezone

        from scheduler_app.models import Execution, SchedulerNode, SchedulerState

        now = timezone.now()
        self.job = make_job(name="owned", owner=owner, group="etl", tags=["nightly"])
        self.failed = Execution.objects.create(
            job=self.job,
            job_name=self.job.name,
            scheduled_for=now - timedelta(minutes=10),
            run_after=now - timedelta(minutes=10),
            started_at=now - timedelta(minutes=10),
            finished_at=now - timedelta(minutes=9),
            status="failed",
            error="boom",
        )
        self.pending = Execution.objects.create(
            job=self.job,
            job_name=self.job.name,
            scheduled_for=now + timedelta(hours=1),
            run_after=now + timedelta(hours=1),
            status="scheduled",
        )
        self.dead = Execution.objects.create(
            job=self.job,
            job_name=self.job.name,
            scheduled_for=now - timedelta(minutes=20),
            run_after=now - timedelta(minutes=20),
            started_at=now - timedelta(minutes=20),
            finished_at=now - timedelta(minutes=19),
            status="failed",
            error="no retries left",
            dead_letter=True,
        )
        self.calendar = services.calendar_create(name="owner holidays", excluded_dates=["2026-12-25"], owner=owner)
        self.token, self.key = services.token_create(user=owner, name="owner's token")
        SchedulerNode.objects.create(
            name="node-1", hostname="host", pid=1, state="running", role="leader", last_beat_at=now
        )
        SchedulerState.load()
        SchedulerState.objects.update(leader="node-1", lease_expires_at=now + timedelta(minutes=5))  # it leads


@pytest.fixture
def world(owner, make_job):
    return World(owner=owner, make_job=make_job)


def data_sync_task(label: str = "sync", priority: str = "normal") -> str:
    """What dev.test_app registers in FastScheduler's example."""
    return f"{label} ({priority})"


@pytest.fixture
def fastscheduler_tasks():
    registry.register(data_sync_task, name="dev.test_app.data_sync_task")
    registry.register(data_sync_task, name="dev.test_app.backup_task")
    yield
    registry.unregister("dev.test_app.data_sync_task")
    registry.unregister("dev.test_app.backup_task")
