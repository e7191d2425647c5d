"""The permission matrix: every route, for anonymous, owner, another user and team_admin.

Rules: every endpoint needs authentication (401); team_admin see and manage everything; other
users only their own jobs and those jobs' runs, so another user's object is a 404 in
details, verbs and nested routes, and missing from lists; scheduler control, its
configuration and /metrics are team_admin-only (403).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

JOB_BODY = {
    "name": "made-here",
    "task": "tempora.sample_job",
    "triggers": [{"kind": "interval", "interval_seconds": 60}],
}
COMPAT_BODY = {
    "func_name": "sample_job",
    "func_module": "tempora",
    "schedule_type": "interval",
    "schedule_config": {"interval": 30, "unit": "seconds"},
}
OWN = "own"  # the owner's and team_admin's answer; another user gets 404
STAFF = "team_admin"  # team_admin only: the others get 403


def R(method, path, ok, *, body=None, rule=OWN):
    return pytest.param(method, path, ok, body, rule, id=f"{method} {path}")


ROUTES = [
    # Jobs
    R("get", "/api/jobs/", 200, rule="list"),
    R("post", "/api/jobs/", 201, body=JOB_BODY, rule="any"),
    R("get", "/api/jobs/{job}/", 200),
    R("put", "/api/jobs/{job}/", 200, body={"name": "owned", "task": "tempora.sample_job"}),
    R("patch", "/api/jobs/{job}/", 200, body={"priority": 7}),
    R("delete", "/api/jobs/{job}/", 204),
    R("post", "/api/jobs/{job}/pause/", 200),
    R("post", "/api/jobs/{job}/resume/", 200),
    R("post", "/api/jobs/{job}/enable/", 200),
    R("post", "/api/jobs/{job}/disable/", 200),
    R("post", "/api/jobs/{job}/run/", 202),
    R("post", "/api/jobs/{job}/duplicate/", 201, body={}),
    R("get", "/api/jobs/{job}/next-runs/?count=3", 200),
    R("get", "/api/jobs/{job}/executions/", 200),
    # Executions and dead letters
    R("get", "/api/executions/", 200, rule="list"),
    R("get", "/api/executions/{failed}/", 200),
    R("post", "/api/executions/{failed}/retry/", 201),
    R("post", "/api/executions/{pending}/cancel/", 200),
    R("get", "/api/dead-letters/", 200, rule="list"),
    R("get", "/api/dead-letters/{dead}/", 200),
    R("post", "/api/dead-letters/{dead}/acknowledge/", 200),
    R("post", "/api/dead-letters/{dead}/retry/", 201),
    R("delete", "/api/dead-letters/{dead}/", 204),
    R("delete", "/api/dead-letters/", 200, rule="any"),
    # Groups, calendars, tasks
    R("get", "/api/groups/", 200, rule="list"),
    R("get", "/api/groups/etl/", 200),
    R("post", "/api/groups/etl/pause", 200),
    R("post", "/api/groups/etl/resume", 200),
    R("delete", "/api/groups/etl", 200),
    R("get", "/api/calendars/", 200, rule="list"),
    R("post", "/api/calendars/", 201, body={"name": "new calendar", "excluded_dates": ["2026-01-01"]}, rule="any"),
    R("get", "/api/calendars/{calendar}/", 200),
    R("put", "/api/calendars/{calendar}/", 200, body={"name": "renamed", "excluded_dates": []}),
    R("patch", "/api/calendars/{calendar}/", 200, body={"business_days_only": True}),
    R("delete", "/api/calendars/{calendar}/", 204),
    R("get", "/api/tasks/", 200, rule="any"),
    R("get", "/api/tasks/tempora.sample_job/", 200, rule="any"),
    # The scheduler
    R("get", "/api/scheduler/", 200, rule="any"),  # node details only with view_schedulernode
    R("post", "/api/scheduler/pause/", 200, rule=STAFF),
    R("post", "/api/scheduler/resume/", 200, rule=STAFF),
    R("post", "/api/scheduler/shutdown/", 202, rule=STAFF),
    R("get", "/api/scheduler/config/", 200, rule=STAFF),
    R("put", "/api/scheduler/config/", 200, body={"max_workers": 4}, rule=STAFF),
    R("patch", "/api/scheduler/config/", 200, body={"history_days": 10}, rule=STAFF),
    # Schedules, monitoring, documentation
    R("get", "/api/cron/validate?expression=0+9+*+*+*", 200, rule="any"),
    R("post", "/api/cron/validate", 200, body={"expression": "0 9 * * *"}, rule="any"),
    R("get", "/api/cron/presets", 200, rule="any"),
    R("post", "/api/schedules/preview", 200, body={"triggers": [{"kind": "daily", "at": "09:00"}]}, rule="any"),
    R("get", "/api/stats/", 200, rule="any"),
    R("get", "/api/health/", 200, rule="any"),
    R("get", "/metrics", 200, rule=STAFF),
    R("get", "/api/schema/", 200, rule="any"),
    # Tokens
    R("get", "/api/tokens/", 200, rule="list"),
    R("post", "/api/tokens/", 201, body={"name": "ci"}, rule="any"),
    R("get", "/api/tokens/{token}/", 200),
    R("post", "/api/tokens/{token}/revoke/", 200),
    R("delete", "/api/tokens/{token}/", 204),
    # FastScheduler's API
    R("get", "/scheduler/api/jobs", 200, rule="list"),
    R("post", "/scheduler/api/jobs", 201, body=COMPAT_BODY, rule="any"),
    R("get", "/scheduler/api/jobs/job_{job}", 200),
    R("put", "/scheduler/api/jobs/job_{job}", 200, body={"timeout": 30}),
    R("delete", "/scheduler/api/jobs/job_{job}", 200),
    *(
        R("post", f"/scheduler/api/jobs/job_{{job}}/{verb}", 200)
        for verb in ("pause", "resume", "enable", "disable", "run", "cancel")
    ),
    R("get", "/scheduler/api/status", 200, rule="any"),
    R("get", "/scheduler/api/history", 200, rule="list"),
    R("get", "/scheduler/api/dead-letters", 200, rule="list"),
    R("delete", "/scheduler/api/dead-letters", 200, rule="any"),
    R("get", "/scheduler/api/groups", 200, rule="list"),
    R("get", "/scheduler/api/groups/etl/jobs", 200, rule="any"),
    R("post", "/scheduler/api/groups/etl/pause", 200, rule="any"),
    R("post", "/scheduler/api/groups/etl/resume", 200, rule="any"),
    R("delete", "/scheduler/api/groups/etl", 200, rule="any"),
]


def _url(path: str, world) -> str:
    return path.format(
        job=world.job.pk,
        failed=world.failed.pk,
        pending=world.pending.pk,
        dead=world.dead.pk,
        calendar=world.calendar.pk,
        token=world.token.pk,
    )


def _call(client: APIClient, method: str, url: str, body):
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


@pytest.mark.parametrize(("method", "path", "ok", "body", "rule"), ROUTES)
def test_anonymous_gets_401_everywhere(world, anonymous, method, path, ok, body, rule):
    response = _call(anonymous, method, _url(path, world), body)
    assert response.status_code == 401, response.content


@pytest.mark.parametrize(("method", "path", "ok", "body", "rule"), ROUTES)
def test_the_owner(world, as_owner, method, path, ok, body, rule):
    response = _call(as_owner, method, _url(path, world), body)
    expected = 403 if rule == STAFF else ok
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("method", "path", "ok", "body", "rule"), ROUTES)
def test_another_user(world, as_outsider, method, path, ok, body, rule):
    response = _call(as_outsider, method, _url(path, world), body)
    expected = {OWN: 404, STAFF: 403}.get(rule, ok)
    assert response.status_code == expected, response.content
    if rule == "list":
        # Lists answer, without the owner's objects in them.
        text = response.content.decode()
        assert '"owned"' not in text and f"job_{world.job.pk}" not in text and '"etl"' not in text


@pytest.mark.parametrize(("method", "path", "ok", "body", "rule"), ROUTES)
def test_team_admin(world, as_team_admin, method, path, ok, body, rule):
    response = _call(as_team_admin, method, _url(path, world), body)
    assert response.status_code == ok, response.content


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/",
        "/api/executions/",
        "/api/dead-letters/",
        "/api/groups/",
        "/api/tokens/",
        "/scheduler/api/jobs",
        "/scheduler/api/history",
        "/scheduler/api/groups",
    ],
)
def test_lists_show_the_owner_their_objects_and_team_admins_everything(world, as_owner, as_team_admin, path):
    for client in (as_owner, as_team_admin):
        text = client.get(path).content.decode()
        assert '"owned"' in text or f"job_{world.job.pk}" in text or '"etl"' in text or "owner's token" in text


def test_another_users_group_looks_empty_in_the_compat_api(world, as_outsider):
    # FastScheduler answers an unknown group with no jobs and counts of 0, not 404.
    assert as_outsider.get("/scheduler/api/groups/etl/jobs").json() == {"jobs": [], "group": "etl"}
    assert as_outsider.post("/scheduler/api/groups/etl/pause").json()["paused"] == 0
    assert as_outsider.delete("/scheduler/api/groups/etl").json()["cancelled"] == 0
    assert world.job.__class__.objects.filter(pk=world.job.pk, paused=False).exists()


def test_another_users_job_is_404_in_the_compat_body_shape(world, as_outsider):
    response = as_outsider.get(f"/scheduler/api/jobs/job_{world.job.pk}")
    assert response.json() == {"error": "Job not found", "job_id": f"job_{world.job.pk}"}


def test_an_ordinary_user_cannot_give_a_job_to_someone_else(world, as_outsider):
    response = as_outsider.post("/api/jobs/", {**JOB_BODY, "owner": "owner"}, format="json")
    assert response.status_code == 400
    assert "owner" in response.json()


def test_team_admins_can_create_a_job_for_another_user(world, as_team_admin, owner):
    response = as_team_admin.post("/api/jobs/", {**JOB_BODY, "owner": "owner"}, format="json")
    assert response.status_code == 201
    assert response.json()["owner"] == "owner"


def test_a_shared_calendar_is_visible_but_read_only_to_users(world, as_outsider, as_team_admin):
    shared = as_team_admin.post("/api/calendars/", {"name": "bank holidays", "shared": True}, format="json").json()
    assert shared["owner"] is None
    assert as_outsider.get(f"/api/calendars/{shared['id']}/").status_code == 200
    assert as_outsider.patch(f"/api/calendars/{shared['id']}/", {"description": "x"}, format="json").status_code == 403
    assert as_outsider.delete(f"/api/calendars/{shared['id']}/").status_code == 403


def test_another_users_calendar_cannot_be_linked_to_a_trigger(world, as_outsider):
    body = {**JOB_BODY, "triggers": [{"kind": "daily", "at": "09:00", "calendar": world.calendar.pk}]}
    response = as_outsider.post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert "calendar" in response.json()["triggers"]["0"]


def test_metrics_answer_an_allowed_address_without_login(world, anonymous, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert anonymous.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert anonymous.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 401
    # X-Forwarded-For is what the client says; it proves nothing.
    assert anonymous.get("/metrics", REMOTE_ADDR="192.168.1.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 401


def test_health_answers_an_allowed_address_without_login(world, anonymous, settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert anonymous.get("/api/health/").status_code == 200


def test_docs_send_a_browser_that_is_not_signed_in_to_the_login_page(anonymous):
    # The console's, which admits every user (the admin's admits only staff).
    for path in ("/api/docs/", "/api/redoc/"):
        response = anonymous.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
