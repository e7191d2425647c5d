"""Cancelling a run from the console: what it says while the scheduler stops it, and when it cannot."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.models import Execution, SchedulerNode
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(now):
    return SchedulerNode.objects.create(name="host:1:a", hostname="host", pid=1, started_at=now, last_beat_at=now)


@pytest.fixture
def running(job, node, now):
    return Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, status="running", started_at=now, worker=node.name
    )


def cancel(client, execution):
    return client.post(f"/executions/{execution.pk}/cancel/", {"confirm": "yes"}, **htmx())


def test_cancelling_a_running_run_says_cancel_requested_and_the_page_shows_it(owner_client, running, settings):
    settings.SCHEDULER_LEASE_SECONDS = 10**9  # the node row's heartbeat is `now`, a fixed instant
    response = cancel(owner_client, running)
    assert response.status_code == 204
    assert "Cancel requested for nightly-report" in response["HX-Trigger"]
    running.refresh_from_db()
    assert (running.status, running.cancel_pending) == ("running", True)
    page = owner_client.get(f"/executions/{running.pk}/").content.decode()
    assert "cancel requested" in page
    assert "Cancel this run?" not in page  # asked once is enough
    assert "cancel requested" in owner_client.get("/executions/").content.decode()


def test_cancelling_a_waiting_run_says_it_was_cancelled(owner_client, job, now):
    waiting = Execution.objects.create(job=job, job_name=job.name, scheduled_for=now, run_after=now)
    response = cancel(owner_client, waiting)
    assert "Cancelled nightly-report before it started." in response["HX-Trigger"]
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"


def test_a_run_whose_scheduler_is_dead_cannot_be_cancelled_and_the_console_says_why(owner_client, running, node, now):
    SchedulerNode.objects.filter(pk=node.pk).update(last_beat_at=now - timedelta(days=400))
    response = cancel(owner_client, running)
    assert '"level": "error"' in response["HX-Trigger"]
    assert "its scheduler host:1:a is not running" in response["HX-Trigger"]
    running.refresh_from_db()
    assert running.cancel_requested_at is None
