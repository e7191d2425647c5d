"""Tempora mounted as a host mounts it: under a prefix of the host's, beside the host's own
REST_FRAMEWORK. Every link, redirect and `url` field follows the prefix, and the API answers
the same whatever the host's DRF settings say (api/views/base.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from rest_framework.test import APIClient

from scheduler_app import services
from scheduler_app.api.schema import tempora_schema
from scheduler_app.models import Execution
from scheduler_app.urls.console import urlpatterns as console_routes
from tests.hosts import hostile_settings

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough password"


@pytest.fixture
def ops(settings):
    settings.ROOT_URLCONF = "tests.hosts.ops_urls"


@pytest.fixture
def hostile(ops, settings):
    settings.REST_FRAMEWORK = hostile_settings.REST_FRAMEWORK  # DRF reloads its settings itself
    # drf-spectacular reads SPECTACULAR_SETTINGS once, at import: its own patch stands in.
    with patched_settings(hostile_settings.SPECTACULAR_SETTINGS):
        yield


@pytest.fixture
def api(owner):
    _token, key = services.token_create(user=owner, name="host")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_everything_is_under_the_hosts_prefix(ops):
    assert reverse("tempora:dashboard") == "/ops/"
    assert reverse("tempora:job", args=[3]) == "/ops/jobs/3/"
    assert reverse("tempora-api:job-list") == "/ops/api/jobs"
    assert reverse("tempora-fastscheduler:status") == "/ops/scheduler/api/status"
    assert reverse("tempora-metrics:metrics") == "/ops/metrics"
    assert reverse("home") == "/"  # the host's own names are untouched


def test_a_console_page_sends_a_visitor_to_the_consoles_own_login_under_the_prefix(ops, client, settings):
    settings.LOGIN_URL = "/accounts/login/"  # the host's, for its own pages
    response = client.get("/ops/jobs/")
    assert response.status_code == 302
    assert response["Location"] == "/ops/login/?next=/ops/jobs/"
    htmx = client.get("/ops/jobs/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/ops/jobs/?page=2")
    assert htmx["HX-Redirect"] == "/ops/login/?next=/ops/jobs/%3Fpage%3D2"


def test_signing_in_under_the_prefix_lands_on_the_dashboard(ops, client, owner):
    owner.set_password(PASSWORD)
    owner.save()
    response = client.post("/ops/login/", {"username": owner.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/ops/"


def test_every_console_page_links_only_under_the_prefix(ops, client, owner, make_job, now):
    job = make_job(name="nightly", owner=owner)
    run = Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, status="failed", dead_letter=True
    )
    calendar = services.calendar_create(name="holidays", excluded_dates=["2026-12-25"], owner=owner)
    owner.user_permissions.add(*Permission.objects.filter(codename__in=["view_apitoken", "add_apitoken"]))
    client.force_login(owner)
    args = {"pk": job.pk, "value": "2026-03-01"}
    pages = 0
    for route in console_routes:
        names = set(route.pattern.converters)
        if route.name in ("login", "logout", "set-zone") or "/" in str(route.pattern).rstrip("/").rsplit("/", 1)[-1:]:
            continue
        kwargs = {name: args[name] for name in names}
        if route.name and route.name.startswith("execution"):
            kwargs = {"pk": run.pk} if names else {}
        if route.name and route.name.startswith("calendar-") and "pk" in names:
            kwargs = {"pk": calendar.pk}
        url = reverse(f"tempora:{route.name}", kwargs=kwargs)
        assert url.startswith("/ops/")
        response = client.get(url)
        if response.status_code == 405:  # a verb: POST only
            continue
        assert response.status_code == 200, url
        html = response.content.decode()
        for attribute in ('href="/', 'action="/', 'hx-get="/', 'hx-post="/', 'src="/'):
            start = 0
            while (start := html.find(attribute, start)) != -1:
                link = html[start + len(attribute) - 1 : html.find('"', start + len(attribute))]
                assert link.startswith(("/ops/", "/static/", "/admin/", "/i18n/")), f"{url} links to {link}"
                start += 1
        pages += 1
    assert pages >= 12


def test_the_api_ignores_the_hosts_rest_framework(hostile, api, owner, make_job):
    for n in range(3):
        make_job(name=f"job-{n}", owner=owner)
    # Authentication and permissions are ours: no anonymous access though the host allows any.
    assert APIClient().get("/ops/api/jobs/").status_code in (401, 403)
    # Pagination, renderer, filters and search are ours.
    response = api.get("/ops/api/jobs/?search=job-1&ordering=name")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == 1 and [job["name"] for job in body["results"]] == ["job-1"]
    assert api.get("/ops/api/jobs/?q=job-1").status_code == 400  # the host's SEARCH_PARAM is not ours
    # JSON in; our exception handler: a service error names its field, never a 500.
    response = api.post(
        "/ops/api/jobs/",
        {"name": "bad", "task": "tempora.sample_job", "triggers": [{"kind": "cron", "cron_expression": "61 * * * *"}]},
        format="json",
    )
    assert response.status_code == 400 and "triggers" in response.json()
    # The write throttle is ours (the host's would allow one write a day).
    for n in range(2):
        created = api.post(
            "/ops/api/jobs/",
            {"name": f"new-{n}", "task": "tempora.sample_job", "triggers": [{"kind": "daily", "at": "09:00"}]},
            format="json",
        )
        assert created.status_code == 201, created.content


def test_run_now_answers_the_executions_url_under_the_prefix(hostile, api, owner, make_job):
    job = make_job(name="now", owner=owner)
    response = api.post(f"/ops/api/jobs/{job.pk}/run/", {}, format="json")
    assert response.status_code == 202
    execution = response.json()["execution_id"]
    assert response.json()["url"] == f"/ops/api/executions/{execution}/"
    assert api.get(response.json()["url"]).status_code == 200


def test_the_schema_and_docs_are_ours_under_the_prefix(hostile, api, client, owner):
    response = api.get("/ops/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Tempora API"
    assert "/ops/api/jobs/" in schema["paths"] and "/ops/scheduler/api/jobs" in schema["paths"]
    assert "/ops/metrics" in schema["paths"]
    client.force_login(owner)
    docs = client.get("/ops/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn.example.com" not in html and "/ops/api/schema" in html


def test_the_api_alone_keeps_the_hosts_login_page(settings, client):
    settings.ROOT_URLCONF = "tests.hosts.api_only_urls"
    settings.LOGIN_URL = "/accounts/login/"
    assert reverse("tempora-api:job-list") == "/internal/scheduler/jobs"
    response = client.get("/internal/scheduler/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_a_hosts_own_schema_leaves_tempora_out(hostile):
    """A host that serves its own drf-spectacular schema (or runs `check --deploy`, which builds
    it) gets its own API in it, not Tempora's operations and enum names."""
    assert SchemaGenerator().get_schema(request=None, public=True)["paths"] == {}
    with tempora_schema():
        assert "/ops/api/jobs/" in SchemaGenerator().get_schema(request=None, public=True)["paths"]
