"""Fixtures for the console's tests: signed-in clients for the owner, an outsider and team_admin,
htmx request headers, and a hostile job whose every text field is an XSS attempt."""

from __future__ import annotations

import pytest
from django.test import Client

from scheduler_app import services
from scheduler_app.models import Execution
from tests.conftest import grant

XSS = "<img src=x onerror=alert(1)>"


def htmx(target: str | None = None, **extra) -> dict:
    """Headers of an htmx request aimed at `#target`."""
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/"}
    if target:
        headers["HTTP_HX_TARGET"] = target
    headers.update(extra)
    return headers


def client_for(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def outsider_client(outsider):
    return client_for(outsider)


@pytest.fixture
def team_admin_client(team_admin):
    return client_for(team_admin)


@pytest.fixture
def job(make_job, owner):
    return make_job(
        name="nightly-report",
        owner=owner,
        group="reports",
        tags=["etl"],
        triggers=[{"kind": "cron", "cron_expression": "0 9 * * 1-5"}],
        timezone="Europe/Berlin",
    )


@pytest.fixture
def hostile_job(make_job, owner, now):
    """A job, a run and a dead letter whose user-written text is markup."""
    # process_data touches files: its owner needs the permission (the job is only shown here).
    job = make_job(
        name=XSS,
        owner=grant(owner, "scheduler_app.use_file_tasks"),
        description=XSS,
        task="tempora.process_data",
        args=[[XSS]],
        kwargs={"field": XSS},
        triggers=[{"kind": "cron", "cron_expression": "*/5 * * * *"}],
    )
    execution = Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now,
        run_after=now,
        status="failed",
        finished_at=now,
        started_at=now,
        result={"html": XSS},
        output=XSS,
        error=XSS,
        traceback=XSS,
        dead_letter=True,
    )
    services.calendar_create(name=XSS, description=XSS, excluded_dates=["2026-12-25"], owner=owner)
    return job, execution
