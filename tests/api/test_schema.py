"""The OpenAPI schema, the documentation pages, and a bounded schemathesis run over the schema."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from scheduler_app import services
from scheduler_app.api.schema import tempora_schema
from scheduler_app.models import SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db


def test_the_schema_generates_without_warnings(tmp_path):
    with tempora_schema():  # as api/schema/ serves it, whatever SPECTACULAR_SETTINGS say
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/jobs/{id}/run/:" in (tmp_path / "schema.yaml").read_text()


def test_the_schema_is_served(as_owner):
    response = as_owner.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/jobs/" in paths and "/scheduler/api/jobs" in paths and "/metrics" in paths


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_work_offline(as_owner, path):
    response = as_owner.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "the page must not load anything from the internet"
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html)
    assert assets and all(finders.find(asset) for asset in assets), assets


# Property-based: schemathesis generates requests from the schema ------------------------------------

MAX_EXAMPLES = 10


# Django 6.1 renames transaction.savepoint() to savepoint_create(), which 5.2 lacks.
savepoint_create = getattr(transaction, "savepoint_create", transaction.savepoint)


def in_test_transaction(application):
    """The WSGI app, minus the end-of-request connection close (as Django's test client does):
    closing would end the test's transaction, and with it the test database's contents."""

    def app(environ, start_response):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        # A savepoint per request: a 500 is reported once, rather than aborting PostgreSQL's
        # transaction and failing every request after it.
        savepoint = savepoint_create()
        status = []

        def remember_status(code, headers, *rest):
            status.append(code)
            return start_response(code, headers, *rest)

        try:
            response = application(environ, remember_status)
            body = list(response)
            response.close()
            if status and status[0].startswith("5"):
                transaction.savepoint_rollback(savepoint)
            else:
                transaction.savepoint_commit(savepoint)
            return body
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    return app


@pytest.fixture
def api_schema(settings):
    settings.TEMPORA = {**settings.TEMPORA, "API_WRITE_THROTTLE": "100000/minute"}
    with tempora_schema():
        schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    schema.app = in_test_transaction(get_wsgi_application())
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def admin_key(team_admin, owner, make_job):
    # Something to find: a job of another user, a run, a calendar.
    job = make_job(owner=owner, group="etl")
    services.job_run_now(job=job)
    services.calendar_create(name="holidays", excluded_dates=["2026-12-25"])
    SchedulerNode.objects.create(name="node", hostname="host", pid=1, state="running", role="leader")
    _token, key = services.token_create(user=team_admin, name="schemathesis")
    return key


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_never_fails_and_answers_as_documented(case, admin_key):
    only = os.environ.get("API_SCHEMA_ONLY")  # e.g. "GET /api/jobs/": one operation, when debugging
    if only and case.operation.label != only:
        return
    # A live leader (heartbeat and lease), so /api/health/ answers 200 (its 503 is by design, not a failure).
    SchedulerNode.objects.update(last_beat_at=timezone.now())
    SchedulerState.load()
    SchedulerState.objects.update(leader="node", lease_expires_at=timezone.now() + timedelta(minutes=5))
    case.call_and_validate(
        headers={"Authorization": f"Token {admin_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
