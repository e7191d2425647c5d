"""Who may change what: login, CSRF on every state change, another user's job is a 404,
and the scheduler's own switches are for team_admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client

from scheduler_app import services
from scheduler_app.models import Calendar, Execution, Job, SchedulerState
from tests.web.conftest import client_for, htmx


@dataclass
class Route:
    name: str
    url: Callable  # (objects) -> url
    data: Callable = lambda o: {}
    owned: bool = True  # another user's object: 404
    team_admin: bool = False  # non-team_admin: 403
    post_only: bool = True


ROUTES = [
    Route("run", lambda o: f"/jobs/{o['job'].pk}/run/"),
    Route("pause", lambda o: f"/jobs/{o['job'].pk}/pause/"),
    Route("resume", lambda o: f"/jobs/{o['job'].pk}/resume/"),
    Route("delete", lambda o: f"/jobs/{o['job'].pk}/delete/", lambda o: {"confirm": "yes"}, post_only=False),
    Route("duplicate", lambda o: f"/jobs/{o['job'].pk}/duplicate/"),
    Route("edit", lambda o: f"/jobs/{o['job'].pk}/edit/", lambda o: edit_data(o["job"]), post_only=False),
    Route(
        "preview", lambda o: "/jobs/preview/", lambda o: {**edit_data(o["job"]), "job_pk": o["job"].pk}, post_only=False
    ),
    Route("retry", lambda o: f"/executions/{o['failed'].pk}/retry/"),
    Route("cancel", lambda o: f"/executions/{o['waiting'].pk}/cancel/", lambda o: {"confirm": "yes"}),
    Route(
        "calendar-edit",
        lambda o: f"/calendars/{o['calendar'].pk}/edit/",
        lambda o: {"name": "holidays", "excluded_dates": "2026-12-25"},
        post_only=False,
    ),
    Route(
        "calendar-delete",
        lambda o: f"/calendars/{o['calendar'].pk}/delete/",
        lambda o: {"confirm": "yes"},
        post_only=False,
    ),
    Route("token-revoke", lambda o: f"/tokens/{o['token'].pk}/revoke/"),
    Route("token-create", lambda o: "/tokens/", lambda o: {"name": "ci"}, owned=False, post_only=False),
    Route("bulk", lambda o: "/jobs/bulk/", lambda o: {"action": "pause", "ids": [o["job"].pk]}, owned=False),
    Route(
        "create",
        lambda o: "/jobs/new/",
        lambda o: {**edit_data(o["job"]), "name": "brand-new"},
        owned=False,
        post_only=False,
    ),
    Route("calendar-create", lambda o: "/calendars/new/", lambda o: {"name": "new-cal"}, owned=False, post_only=False),
    Route("acknowledge", lambda o: "/dead-letters/acknowledge/", lambda o: {"ids": [o["failed"].pk]}, owned=False),
    Route("zone", lambda o: "/preferences/zone/", lambda o: {"zone": "Europe/Paris"}, owned=False),
    Route("scheduler-pause", lambda o: "/scheduler/pause/", owned=False, team_admin=True),
    Route("scheduler-resume", lambda o: "/scheduler/resume/", owned=False, team_admin=True),
    Route(
        "scheduler-shutdown",
        lambda o: "/scheduler/shutdown/",
        lambda o: {"confirm": "yes"},
        owned=False,
        team_admin=True,
    ),
    Route(
        "scheduler-settings",
        lambda o: "/scheduler/settings/",
        lambda o: {"max_workers": 4, "misfire_grace_time": 30, "history_per_job": 100, "history_days": 7},
        owned=False,
        team_admin=True,
    ),
]
IDS = [route.name for route in ROUTES]


def edit_data(job: Job) -> dict:
    return {
        "name": job.name,
        "task": job.task,
        "group": job.group,
        "tags": "",
        "priority": 5,
        "timezone": "UTC",
        "max_retries": 0,
        "retry_backoff": 30,
        "retry_backoff_max": 3600,
        "overlap_policy": "skip",
        "max_instances": 1,
        "misfire_grace_time": 60,
        "catch_up": "once",
        "executor": "thread",
        "args": "[]",
        "kwargs": "{}",
        "triggers-TOTAL_FORMS": 1,
        "triggers-INITIAL_FORMS": 1,
        "triggers-MIN_NUM_FORMS": 0,
        "triggers-MAX_NUM_FORMS": 20,
        "triggers-0-kind": "cron",
        "triggers-0-cron_expression": "*/10 * * * *",
        "triggers-0-jitter_seconds": 0,
        "triggers-0-interval_unit": "60",
    }


@pytest.fixture
def objects(make_job, owner, now):
    job = make_job(name="owned", owner=owner)
    failed = Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, status="failed", finished_at=now, dead_letter=True
    )
    waiting = Execution.objects.create(job=job, job_name=job.name, scheduled_for=now, run_after=now, reason="manual")
    calendar = services.calendar_create(name="owner-cal", owner=owner)
    token, _key = services.token_create(user=owner, name="owner-token")
    return {"job": job, "failed": failed, "waiting": waiting, "calendar": calendar, "token": token}


def csrf_client(user) -> tuple[Client, str]:
    client = client_for(user, csrf=True)
    client.get("/jobs/")
    return client, client.cookies["csrftoken"].value


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_it_refuses_a_state_change_without_the_csrf_token(route, objects, team_admin):
    client = client_for(team_admin, csrf=True)
    response = client.post(route.url(objects), route.data(objects), **htmx())
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_it_accepts_a_state_change_with_the_csrf_header_htmx_sends(route, objects, owner, team_admin):
    client, token = csrf_client(team_admin if route.team_admin or route.name == "token-create" else owner)
    response = client.post(route.url(objects), route.data(objects), HTTP_X_CSRFTOKEN=token, **htmx())
    assert response.status_code in (200, 204), response.content[:500]
    if response.status_code == 204 or "HX-Redirect" in response:
        assert "HX-Trigger" in response or "HX-Redirect" in response


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if r.owned], ids=[r.name for r in ROUTES if r.owned])
def test_another_users_object_is_a_404(route, objects, outsider):
    client, token = csrf_client(outsider)
    assert client.post(route.url(objects), route.data(objects), HTTP_X_CSRFTOKEN=token).status_code == 404
    assert client.post(route.url(objects), route.data(objects), HTTP_X_CSRFTOKEN=token, **htmx()).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if r.team_admin], ids=[r.name for r in ROUTES if r.team_admin])
def test_only_scheduler_controllers_change_the_scheduler(route, objects, owner):
    client, token = csrf_client(owner)
    assert client.post(route.url(objects), route.data(objects), HTTP_X_CSRFTOKEN=token).status_code == 403
    state = SchedulerState.load()
    assert not state.paused and state.shutdown_requested_at is None and state.config == {}


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if r.post_only], ids=[r.name for r in ROUTES if r.post_only])
def test_a_get_never_changes_anything(route, objects, team_admin):
    assert client_for(team_admin).get(route.url(objects)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_anonymous_visitors_change_nothing(route, objects, client):
    response = client.post(route.url(objects), route.data(objects))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_every_page_and_fragment_of_another_users_job_is_a_404(objects, outsider):
    client = client_for(outsider)
    job, execution = objects["job"], objects["failed"]
    for url, target in [
        (f"/jobs/{job.pk}/", None),
        (f"/jobs/{job.pk}/", "job-summary"),
        (f"/jobs/{job.pk}/", "job-history"),
        (f"/jobs/{job.pk}/", "job-next-runs"),
        (f"/jobs/{job.pk}/edit/", None),
        (f"/jobs/{job.pk}/edit/", "job-form-area"),
        (f"/jobs/{job.pk}/delete/", None),
        (f"/executions/{execution.pk}/", None),
        (f"/executions/{execution.pk}/", "execution-summary"),
        (f"/calendars/{objects['calendar'].pk}/edit/", None),
    ]:
        headers = htmx(target) if target else {}
        assert client.get(url, **headers).status_code == 404, (url, target)


@pytest.mark.django_db
def test_lists_show_only_the_users_own_jobs_and_runs(objects, outsider, make_job, team_admin):
    mine = make_job(name="outsiders-job", owner=outsider)
    client = client_for(outsider)
    for url in ["/", "/jobs/", "/executions/", "/dead-letters/", "/calendar/", "/calendar/2099-01-01/"]:
        body = client.get(url).content.decode()
        assert "owned" not in body.replace("owned by", ""), url
    assert "outsiders-job" in client.get("/jobs/").content.decode()
    assert "owner-cal" not in client.get("/calendar/").content.decode()
    assert "owned" in client_for(team_admin).get("/jobs/").content.decode()
    del mine


@pytest.mark.django_db
def test_bulk_actions_touch_only_the_users_jobs(objects, outsider):
    client, token = csrf_client(outsider)
    response = client.post(
        "/jobs/bulk/", {"action": "pause", "ids": [objects["job"].pk]}, HTTP_X_CSRFTOKEN=token, **htmx()
    )
    assert response.status_code == 204
    assert '"level": "error"' in response["HX-Trigger"]
    objects["job"].refresh_from_db()
    assert not objects["job"].paused


@pytest.mark.django_db
def test_a_group_action_reaches_only_the_users_jobs_of_that_group(make_job, owner, outsider):
    mine = make_job(name="mine", owner=owner, group="shared")
    theirs = make_job(name="theirs", owner=outsider, group="shared")
    client, token = csrf_client(owner)
    client.post("/jobs/bulk/", {"action": "pause", "scope": "group", "group": "shared"}, HTTP_X_CSRFTOKEN=token)
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.paused and not theirs.paused


@pytest.mark.django_db
def test_a_shared_calendar_is_usable_but_only_calendar_editors_edit_it(owner, team_admin):
    shared = Calendar.objects.create(name="shared-holidays")
    assert "shared-holidays" in client_for(owner).get("/calendar/").content.decode()
    assert client_for(owner).get(f"/calendars/{shared.pk}/edit/").status_code == 404
    assert client_for(team_admin).get(f"/calendars/{shared.pk}/edit/").status_code == 200


@pytest.mark.django_db
def test_next_is_never_an_outside_address(objects, owner):
    client, token = csrf_client(owner)
    response = client.post(
        f"/jobs/{objects['job'].pk}/pause/", {"next": "https://evil.example/"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302 and response["Location"] == f"/jobs/{objects['job'].pk}/"


@pytest.mark.django_db
def test_the_console_shows_only_the_controls_a_user_may_use(job, owner, outsider):
    from tests.conftest import member_of

    viewer = member_of(outsider, "Tempora viewers")
    run, pause, edit = f"/jobs/{job.pk}/run/", f"/jobs/{job.pk}/pause/", f"/jobs/{job.pk}/edit/"
    page = client_for(viewer).get(f"/jobs/{job.pk}/").content.decode()
    assert run not in page and pause not in page and edit not in page
    page = client_for(owner).get(f"/jobs/{job.pk}/").content.decode()
    assert run in page and pause in page and edit in page
    # The scheduler's switches likewise.
    assert "/scheduler/pause/" not in client_for(owner).get("/scheduler/").content.decode()


@pytest.mark.django_db
def test_a_refused_action_without_javascript_is_a_page_that_says_why(job, outsider):
    from tests.conftest import member_of

    viewer = member_of(outsider, "Tempora viewers")
    response = client_for(viewer).post(f"/jobs/{job.pk}/pause/")
    assert response.status_code == 403
    assert "You may not pause or resume these jobs: nightly-report." in response.content.decode()
