"""The scheduler's next wake-up (/api/scheduler/ and the console's scheduler page): a real upcoming run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app import services, triggers
from scheduler_app.models import Execution, Job
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def upcoming(make_job):
    """A job whose next run is in an hour: the one real wake-up in every test here."""
    job = make_job(name="hourly", triggers=[{"kind": "interval", "interval_seconds": 3600}], now=timezone.now())
    return Job.objects.get(pk=job.pk).next_run_at


def wakeup(as_team_admin):
    return as_team_admin.get("/api/scheduler/").json()["next_wakeup"]


def iso(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_the_next_wake_up_is_the_earliest_planned_run(as_team_admin, upcoming):
    assert wakeup(as_team_admin) == iso(upcoming)


def test_a_paused_jobs_waiting_retry_is_no_wake_up(as_team_admin, upcoming, make_job):
    # It waits for its job to be resumed: nothing will start it at its run_after.
    paused = make_job(name="paused", paused=True)
    soon = timezone.now() - timedelta(minutes=5)
    Execution.objects.create(
        job=paused, job_name=paused.name, scheduled_for=soon, run_after=soon, attempt=2, reason="retry"
    )
    assert wakeup(as_team_admin) == iso(upcoming)


def test_a_run_now_request_of_a_paused_job_is_a_wake_up(as_team_admin, upcoming, make_job):
    paused = make_job(name="paused", paused=True)
    request = services.job_run_now(job=paused)
    assert wakeup(as_team_admin) == iso(request.run_after)


def test_the_console_scheduler_page_shows_the_next_wake_up(team_admin, upcoming):
    page = client_for(team_admin).get("/scheduler/").content.decode()
    assert "Next wake-up" in page and f'datetime="{triggers.format_utc(upcoming)}"' in page
