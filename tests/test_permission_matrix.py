"""Who may do what, asked of every URL of the project: role × route × verb.

The roles: anonymous, the job's owner, another ordinary user, a staff user without any
permission, a member of each shipped group, and a superuser. The rules are the README's
"Security model" table (scheduler_app/permissions.py). What a role may not see answers 404;
what it sees but may not do, 403; anonymous visitors are sent to a login (401 in the APIs).

`test_every_url_of_the_project_is_in_the_matrix` fails when a route is added without a row
here, so a new endpoint cannot slip in unguarded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from scheduler_app import services
from scheduler_app.models import Execution, Job, SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "owner", "other", "bare_staff", "viewer", "operator", "editor", "admin", "superuser"]
GROUPS = {
    "viewer": "Tempora viewers",
    "operator": "Tempora operators",
    "editor": "Tempora editors",
    "admin": "Tempora admins",
}

# Who may do each kind of thing to the owner's objects; everyone else signed in gets `refusal`
# when they can see the object (403) and 404 when they cannot.
SEE_ALL = {"viewer", "operator", "editor", "admin", "superuser"}
SEES = {"owner", *SEE_ALL}
ALLOWED = {
    "any": {"owner", "other", "bare_staff", *SEE_ALL},
    "view": SEES,
    "change": {"owner", "editor", "admin", "superuser"},
    "operate": {"owner", "operator", "editor", "admin", "superuser"},  # run, pause, retry, cancel
    "control": {"admin", "superuser"},
    "nodes": {"operator", "editor", "admin", "superuser"},
    "token": {"owner", "admin", "superuser"},  # the owner's token: view_apitoken / change_apitoken
}
VISIBLE = {
    "any": ALLOWED["any"],
    "view": SEES,
    "change": SEES,
    "operate": SEES,
    "control": ALLOWED["any"],
    "nodes": ALLOWED["any"],
    "token": {"owner", "admin", "superuser"},
}


class World:
    """One of everything, owned by `owner`."""

    def __init__(self, users):
        now = timezone.now()
        owner = users["owner"]
        self.job = services.job_create(
            name="owned",
            task="tempora.sample_job",
            owner=owner,
            group="etl",
            triggers=[{"kind": "cron", "cron_expression": "0 9 * * *"}],
        )
        times = {"scheduled_for": now - timedelta(minutes=10), "run_after": now - timedelta(minutes=10)}
        self.failed = Execution.objects.create(
            job=self.job, job_name="owned", status="failed", finished_at=now, **times
        )
        self.dead = Execution.objects.create(
            job=self.job,
            job_name="owned",
            status="failed",
            finished_at=now,
            dead_letter=True,
            scheduled_for=now - timedelta(minutes=20),
            run_after=now - timedelta(minutes=20),
        )
        later = now + timedelta(hours=1)
        self.pending = Execution.objects.create(job=self.job, job_name="owned", scheduled_for=later, run_after=later)
        self.calendar = services.calendar_create(name="owner holidays", excluded_dates=["2026-12-25"], owner=owner)
        self.token, _key = services.token_create(user=owner, name="owner's token")
        SchedulerNode.objects.create(
            name="secret-host:4242:1",
            hostname="secret-host",
            pid=4242,
            state="running",
            role="leader",
            last_beat_at=now,
        )
        SchedulerState.load()
        SchedulerState.objects.update(leader="secret-host:4242:1", lease_expires_at=now + timedelta(minutes=5))

    def url(self, path: str) -> str:
        return path.format(
            job=self.job.pk,
            failed=self.failed.pk,
            dead=self.dead.pk,
            pending=self.pending.pk,
            calendar=self.calendar.pk,
            token=self.token.pk,
        )


@pytest.fixture
def users(django_user_model):
    made = {"anonymous": None}
    for role in ROLES[1:]:
        user = django_user_model.objects.create_user(
            role,
            f"{role}@example.com",
            "pass-1234-long",
            is_staff=role not in ("owner", "other"),
            is_superuser=role == "superuser",
        )
        if role in GROUPS:
            user.groups.add(Group.objects.get(name=GROUPS[role]))
        made[role] = user
    return made


@pytest.fixture
def world(users):
    return World(users)


def Row(name, method, path, ok, rule, *, body=None, htmx=False, refusal=403, hidden=404):
    return pytest.param(name, method, path, ok, rule, body, htmx, refusal, hidden, id=f"{method} {path}")


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
J = "/api/jobs/{job}"
F = "/scheduler/api/jobs/job_{job}"

API = [
    Row("tempora-api:job-list", "get", "/api/jobs/", 200, "any"),
    Row("tempora-api:job-list", "post", "/api/jobs/", 201, "any", body=JOB_BODY),
    Row("tempora-api:job-detail", "get", f"{J}/", 200, "view"),
    Row("tempora-api:job-detail", "put", f"{J}/", 200, "change", body={"name": "owned", "task": "tempora.sample_job"}),
    Row("tempora-api:job-detail", "patch", f"{J}/", 200, "change", body={"priority": 7}),
    Row("tempora-api:job-detail", "delete", f"{J}/", 204, "change"),
    *(
        Row(f"tempora-api:job-{verb}", "post", f"{J}/{verb}/", 200, "operate")
        for verb in ("pause", "resume", "enable", "disable")
    ),
    Row("tempora-api:job-run", "post", f"{J}/run/", 202, "operate"),
    Row("tempora-api:job-duplicate", "post", f"{J}/duplicate/", 201, "view", body={}),
    Row("tempora-api:job-next-runs", "get", f"{J}/next-runs/?count=3", 200, "view"),
    Row("tempora-api:job-executions-list", "get", f"{J}/executions/", 200, "view"),
    Row("tempora-api:execution-list", "get", "/api/executions/", 200, "any"),
    Row("tempora-api:execution-detail", "get", "/api/executions/{failed}/", 200, "view"),
    Row("tempora-api:execution-retry", "post", "/api/executions/{failed}/retry/", 201, "operate"),
    Row("tempora-api:execution-cancel", "post", "/api/executions/{pending}/cancel/", 200, "operate"),
    Row("tempora-api:dead-letter-list", "get", "/api/dead-letters/", 200, "any"),
    Row(
        "tempora-api:dead-letter-list", "delete", "/api/dead-letters/", 200, "operate", hidden=200
    ),  # clears what one sees
    Row("tempora-api:dead-letter-detail", "get", "/api/dead-letters/{dead}/", 200, "view"),
    Row("tempora-api:dead-letter-detail", "delete", "/api/dead-letters/{dead}/", 204, "operate"),
    Row("tempora-api:dead-letter-acknowledge", "post", "/api/dead-letters/{dead}/acknowledge/", 200, "operate"),
    Row("tempora-api:dead-letter-retry", "post", "/api/dead-letters/{dead}/retry/", 201, "operate"),
    Row("tempora-api:group-list", "get", "/api/groups/", 200, "any"),
    Row("tempora-api:group-detail", "get", "/api/groups/etl/", 200, "view"),
    Row("tempora-api:group-detail", "delete", "/api/groups/etl/", 200, "change"),
    Row("tempora-api:group-pause", "post", "/api/groups/etl/pause/", 200, "operate"),
    Row("tempora-api:group-resume", "post", "/api/groups/etl/resume/", 200, "operate"),
    Row("tempora-api:calendar-list", "get", "/api/calendars/", 200, "any"),
    Row("tempora-api:calendar-list", "post", "/api/calendars/", 201, "any", body={"name": "mine"}),
    Row("tempora-api:calendar-detail", "get", "/api/calendars/{calendar}/", 200, "view"),
    Row(
        "tempora-api:calendar-detail",
        "patch",
        "/api/calendars/{calendar}/",
        200,
        "change",
        body={"business_days_only": True},
    ),
    Row("tempora-api:calendar-detail", "delete", "/api/calendars/{calendar}/", 204, "change"),
    Row("tempora-api:task-list", "get", "/api/tasks/", 200, "any"),
    Row("tempora-api:task-detail", "get", "/api/tasks/tempora.sample_job/", 200, "any"),
    Row("tempora-api:scheduler", "get", "/api/scheduler/", 200, "any"),
    Row("tempora-api:scheduler-pause", "post", "/api/scheduler/pause/", 200, "control"),
    Row("tempora-api:scheduler-resume", "post", "/api/scheduler/resume/", 200, "control"),
    Row("tempora-api:scheduler-shutdown", "post", "/api/scheduler/shutdown/", 202, "control"),
    Row("tempora-api:scheduler-config", "get", "/api/scheduler/config/", 200, "nodes"),
    Row("tempora-api:scheduler-config", "patch", "/api/scheduler/config/", 200, "control", body={"history_days": 10}),
    Row("tempora-api:cron-validate", "get", "/api/cron/validate?expression=0+9+*+*+*", 200, "any"),
    Row("tempora-api:cron-presets", "get", "/api/cron/presets", 200, "any"),
    Row(
        "tempora-api:schedule-preview",
        "post",
        "/api/schedules/preview",
        200,
        "any",
        body={"triggers": [{"kind": "daily", "at": "09:00"}]},
    ),
    Row("tempora-api:stats", "get", "/api/stats/", 200, "any"),
    Row("tempora-api:health", "get", "/api/health/", 200, "any"),
    Row("tempora-api:schema", "get", "/api/schema/", 200, "any"),
    Row("tempora-metrics:metrics", "get", "/metrics", 200, "nodes"),
    Row("tempora-api:token-list", "get", "/api/tokens/", 200, "any"),
    Row("tempora-api:token-list", "post", "/api/tokens/", 201, "any", body={"name": "ci"}),
    Row("tempora-api:token-detail", "get", "/api/tokens/{token}/", 200, "token"),
    Row("tempora-api:token-detail", "delete", "/api/tokens/{token}/", 204, "token"),
    Row("tempora-api:token-revoke", "post", "/api/tokens/{token}/revoke/", 200, "token"),
    # FastScheduler's API: its group routes answer an empty group rather than 404.
    Row("tempora-fastscheduler:jobs", "get", "/scheduler/api/jobs", 200, "any"),
    Row("tempora-fastscheduler:jobs", "post", "/scheduler/api/jobs", 201, "any", body=COMPAT_BODY),
    Row("tempora-fastscheduler:job", "get", F, 200, "view"),
    Row("tempora-fastscheduler:job", "put", F, 200, "change", body={"timeout": 30}),
    Row("tempora-fastscheduler:job", "delete", F, 200, "change"),
    *(
        Row(f"tempora-fastscheduler:job-{verb}", "post", f"{F}/{verb}", 200, "operate")
        for verb in ("pause", "resume", "enable", "disable", "run")
    ),
    Row("tempora-fastscheduler:job-cancel", "post", f"{F}/cancel", 200, "change"),
    Row("tempora-fastscheduler:status", "get", "/scheduler/api/status", 200, "any"),
    Row("tempora-fastscheduler:history", "get", "/scheduler/api/history", 200, "any"),
    Row("tempora-fastscheduler:dead-letters", "get", "/scheduler/api/dead-letters", 200, "any"),
    Row("tempora-fastscheduler:dead-letters", "delete", "/scheduler/api/dead-letters", 200, "operate", hidden=200),
    Row("tempora-fastscheduler:groups", "get", "/scheduler/api/groups", 200, "any"),
    Row("tempora-fastscheduler:group-jobs", "get", "/scheduler/api/groups/etl/jobs", 200, "view", hidden=200),
    Row("tempora-fastscheduler:group-pause", "post", "/scheduler/api/groups/etl/pause", 200, "operate", hidden=200),
    Row("tempora-fastscheduler:group-resume", "post", "/scheduler/api/groups/etl/resume", 200, "operate", hidden=200),
    Row("tempora-fastscheduler:group", "delete", "/scheduler/api/groups/etl", 200, "change", hidden=200),
]

C = "/jobs/{job}"
CONSOLE = [
    Row("tempora:dashboard", "get", "/", 200, "any"),
    Row("tempora:jobs", "get", "/jobs/", 200, "any"),
    Row(
        "tempora:jobs-bulk",
        "post",
        "/jobs/bulk/",
        204,
        "operate",
        body={"action": "pause", "ids": ["{job}"]},
        htmx=True,
        hidden=204,
    ),  # nothing visible selected: "No job selected."
    Row("tempora:job-create", "get", "/jobs/new/", 200, "any"),
    Row("tempora:job-preview", "post", "/jobs/preview/", 200, "any", body={"name": "x"}),
    Row("tempora:task-info", "get", "/jobs/task/?task=tempora.sample_job", 200, "any"),
    Row("tempora:job", "get", f"{C}/", 200, "view"),
    Row("tempora:job-edit", "get", f"{C}/edit/", 200, "change"),
    Row("tempora:job-run", "post", f"{C}/run/", 204, "operate", htmx=True),
    Row("tempora:job-pause", "post", f"{C}/pause/", 204, "operate", htmx=True),
    Row("tempora:job-resume", "post", f"{C}/resume/", 204, "operate", htmx=True),
    Row("tempora:job-delete", "post", f"{C}/delete/", 200, "change", body={"confirm": "yes"}, htmx=True),
    Row("tempora:job-duplicate", "post", f"{C}/duplicate/", 200, "view", htmx=True),
    Row("tempora:executions", "get", "/executions/", 200, "any"),
    Row("tempora:execution", "get", "/executions/{failed}/", 200, "view"),
    Row("tempora:execution-retry", "post", "/executions/{failed}/retry/", 204, "operate", htmx=True),
    Row(
        "tempora:execution-cancel",
        "post",
        "/executions/{pending}/cancel/",
        204,
        "operate",
        body={"confirm": "yes"},
        htmx=True,
    ),
    Row("tempora:dead-letters", "get", "/dead-letters/", 200, "any"),
    Row(
        "tempora:dead-letters-acknowledge",
        "post",
        "/dead-letters/acknowledge/",
        204,
        "operate",
        body={"ids": ["{dead}"]},
        htmx=True,
        hidden=204,
    ),
    Row("tempora:calendar", "get", "/calendar/", 200, "any"),
    Row("tempora:calendar-day", "get", "/calendar/2026-12-24/", 200, "any"),
    Row("tempora:calendar-create", "get", "/calendars/new/", 200, "any"),
    Row("tempora:calendar-edit", "get", "/calendars/{calendar}/edit/", 200, "change", refusal=404),
    Row("tempora:calendar-delete", "get", "/calendars/{calendar}/delete/", 200, "change", refusal=404),
    Row("tempora:scheduler", "get", "/scheduler/", 200, "any"),
    Row("tempora:scheduler-pause", "post", "/scheduler/pause/", 204, "control", htmx=True),
    Row("tempora:scheduler-resume", "post", "/scheduler/resume/", 204, "control", htmx=True),
    Row(
        "tempora:scheduler-shutdown", "post", "/scheduler/shutdown/", 204, "control", body={"confirm": "yes"}, htmx=True
    ),
    Row(
        "tempora:scheduler-settings",
        "post",
        "/scheduler/settings/",
        204,
        "control",
        body={"max_workers": 4, "misfire_grace_time": 60, "history_per_job": 100, "history_days": 10},
        htmx=True,
    ),
    Row("tempora:tokens", "get", "/tokens/", 200, "any"),
    Row("tempora:token-revoke", "post", "/tokens/{token}/revoke/", 204, "token", htmx=True),
]
# Routes every visitor may reach, signed in or not.
PUBLIC = {
    "tempora:login",
    "tempora:logout",
    "tempora:set-zone",
    "set_language",
    "tempora-api:docs",
    "tempora-api:redoc",
}


def _client(role, users, *, api: bool):
    user = users[role]
    if api:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _expected(role, rule, ok, refusal, hidden):
    if role in ALLOWED[rule]:
        return ok
    return refusal if role in VISIBLE[rule] else hidden


def _call(client, method, url, body, *, api, htmx):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/"} if htmx else {}
    if api:
        return (
            getattr(client, method)(url, body, format="json", **headers)
            if body is not None
            else getattr(client, method)(url)
        )
    return getattr(client, method)(url, body or {}, **headers)


def _format_body(body, world):
    if not body:
        return body
    return {
        key: [world.url(v) for v in value] if isinstance(value, list) and value and isinstance(value[0], str) else value
        for key, value in body.items()
    }


ROWS = [*API, *CONSOLE]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "ok", "rule", "body", "htmx", "refusal", "hidden"), ROWS)
def test_each_role_gets_what_the_model_says(
    users, world, role, name, method, path, ok, rule, body, htmx, refusal, hidden
):
    api = not name.startswith("tempora:")
    client = _client(role, users, api=api)
    response = _call(client, method, world.url(path), _format_body(body, world), api=api, htmx=htmx)
    if role == "anonymous":
        if api:
            assert response.status_code == 401, response.content[:300]
        elif htmx:
            assert response.status_code == 200 and "HX-Redirect" in response, response.content[:300]
        else:
            assert response.status_code == 302 and "/login/" in response["Location"]
        return
    expected = _expected(role, rule, ok, refusal, hidden)
    assert response.status_code == expected, (role, response.status_code, response.content[:400])


def test_refusals_change_nothing_and_say_why(users, world):
    """A 403 leaves the job as it was and names the job it refused."""
    client = _client("viewer", users, api=True)
    response = client.post(f"/api/jobs/{world.job.pk}/pause/")
    assert response.status_code == 403
    assert "owned" in response.json()["detail"]
    assert Job.objects.get(pk=world.job.pk).paused is False


def test_node_details_are_hidden_from_those_without_the_node_permission(users, world):
    for role in ("owner", "viewer", "bare_staff"):
        assert b"secret-host" not in _client(role, users, api=False).get("/scheduler/").content, role
        assert b"secret-host" not in _client(role, users, api=True).get("/api/scheduler/").content, role
        assert b"secret-host" not in _client(role, users, api=False).get("/").content, role
    assert b"secret-host" in _client("operator", users, api=False).get("/scheduler/").content
    assert b"secret-host" in _client("operator", users, api=True).get("/api/scheduler/").content


def _admin_rows():
    return [
        ("/admin/scheduler_app/job/", {"bare_staff": 200, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/job/add/", {"bare_staff": 200, "viewer": 200, "editor": 200}),
        # Not in a user's queryset: the admin redirects with "doesn't exist", as for any missing row.
        ("/admin/scheduler_app/job/{job}/change/", {"bare_staff": 302, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/job/{job}/delete/", {"bare_staff": 302, "viewer": 403, "editor": 200}),
        ("/admin/scheduler_app/execution/", {"bare_staff": 200, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/execution/{failed}/change/", {"bare_staff": 302, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/calendar/", {"bare_staff": 200, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/calendar/{calendar}/change/", {"bare_staff": 302, "viewer": 200, "editor": 200}),
        ("/admin/scheduler_app/calendar/{calendar}/delete/", {"bare_staff": 302, "viewer": 403, "editor": 200}),
        ("/admin/scheduler_app/schedulernode/", {"bare_staff": 403, "viewer": 403, "editor": 200}),
        ("/admin/scheduler_app/schedulerstate/", {"bare_staff": 403, "viewer": 403, "editor": 200}),
        # Django's own and other apps' tables: Django's permissions, which the shipped groups do not give.
        ("/admin/auth/user/", {"bare_staff": 403, "viewer": 403, "editor": 403}),
        ("/admin/auth/group/", {"bare_staff": 403, "viewer": 403, "editor": 403}),
    ]


@pytest.mark.parametrize(("path", "expected"), _admin_rows())
def test_the_admin_answers_as_the_console_does(users, world, path, expected):
    for role, status in {**expected, "superuser": 200}.items():
        response = _client(role, users, api=False).get(world.url(path))
        assert response.status_code == status, (role, path, response.status_code)
    # Signed in but not staff: the admin site's own gate, as in Django.
    assert _client("owner", users, api=False).get(world.url(path)).status_code == 302


def test_an_admin_action_on_a_selection_refuses_all_and_names_the_jobs(users, world):
    # A viewer may pause their own job but not the owner's: selecting both pauses neither.
    mine = services.job_create(name="mine", task="tempora.sample_job", owner=users["viewer"])
    response = _client("viewer", users, api=False).post(
        "/admin/scheduler_app/job/",
        {
            "action": "pause_jobs",
            "_selected_action": [world.job.pk, mine.pk],
        },
        follow=True,
    )
    text = response.content.decode()
    assert "You may not pause or resume these jobs: owned." in text
    assert not Job.objects.filter(paused=True).exists()


def test_a_console_bulk_action_refuses_all_and_names_the_jobs(users, world):
    mine = services.job_create(name="mine", task="tempora.sample_job", owner=users["viewer"])
    response = _client("viewer", users, api=False).post(
        "/jobs/bulk/",
        {"action": "pause", "ids": [world.job.pk, mine.pk]},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 403
    assert "owned" in response["HX-Trigger"] and "mine" not in response["HX-Trigger"]
    assert not Job.objects.filter(paused=True).exists()


def _route_names(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = (
                f"{namespace}:{pattern.namespace}"
                if namespace and pattern.namespace
                else pattern.namespace or namespace
            )
            yield from _route_names(pattern.url_patterns, inner or "")
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}:{pattern.name}" if namespace else pattern.name


def test_every_url_of_the_project_is_in_the_matrix():
    covered = {row.values[0] for row in ROWS} | PUBLIC
    missing = sorted(
        name
        for name in set(_route_names(get_resolver().url_patterns))
        if not name.startswith("admin:") and name not in covered
    )
    assert missing == [], f"routes without a row in the permission matrix: {missing}"
