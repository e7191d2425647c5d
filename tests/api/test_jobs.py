"""/api/jobs/: create, read, update, delete, filters, nested triggers and verbs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduler_app import services
from scheduler_app.models import Execution, Job

pytestmark = pytest.mark.django_db


def create(client, **fields):
    body = {"name": "report", "task": "tempora.sample_job", **fields}
    return client.post("/api/jobs/", body, format="json")


# Creating -------------------------------------------------------------------------------


def test_it_creates_a_job_with_every_trigger_shape(as_owner, owner):
    triggers = [
        {"kind": "cron", "cron_expression": "0 9 * * MON-FRI"},
        {"kind": "interval", "interval_seconds": 300, "jitter_seconds": 5},
        {"kind": "once", "run_at": "2030-12-25T00:00:00Z"},
        {"kind": "once", "delay_seconds": 60},
        {"kind": "daily", "at": "09:30"},
        {"kind": "weekly", "days": [0, 4], "at": "10:00"},
        {"kind": "hourly", "minute": 15},
        {"kind": "hourly", "at": ":45"},
    ]
    response = create(as_owner, triggers=triggers, timezone="Europe/Berlin", kwargs={"message": "hi"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "owner"
    assert [t["kind"] for t in body["triggers"]] == ["cron", "interval", "once", "once", "cron", "cron", "cron", "cron"]
    assert [t["preset"] for t in body["triggers"]][4:] == ["daily", "weekly", "hourly", "hourly"]
    assert body["triggers"][5]["cron_expression"] == "0 10 * * 1,5"
    assert body["triggers"][2]["run_at"] == "2030-12-25T00:00:00Z"
    assert "Every day at 09:30 (Europe/Berlin)" in body["schedule"]
    assert body["next_run_at"] is not None
    job = Job.objects.get(pk=body["id"])
    assert job.owner == owner and job.triggers.count() == 8


def test_it_takes_and_shows_the_lost_policy(as_owner):
    response = create(as_owner, lost_policy="record", triggers=[{"kind": "daily", "at": "09:00"}])
    assert response.status_code == 201, response.json()
    assert response.json()["lost_policy"] == "record"
    assert Job.objects.get(pk=response.json()["id"]).lost_policy == "record"
    assert create(as_owner, name="other").json()["lost_policy"] == "auto"


def test_a_once_time_without_offset_is_local_to_the_job(as_owner):
    response = create(
        as_owner, timezone="America/New_York", triggers=[{"kind": "once", "run_at": "2030-07-04T09:00:00"}]
    )
    assert response.json()["triggers"][0]["run_at"] == "2030-07-04T13:00:00Z"


def test_the_representation_has_schedule_next_run_last_results_and_counters(as_owner, make_job, owner):
    job = make_job(owner=owner)
    now = timezone.now()
    for minutes, status in enumerate(
        ["succeeded", "failed", "succeeded", "timed_out", "succeeded", "succeeded", "running"]
    ):
        Execution.objects.create(
            job=job,
            job_name=job.name,
            scheduled_for=now - timedelta(minutes=60 - minutes),
            run_after=now,
            status=status,
            started_at=now - timedelta(minutes=60 - minutes),
            finished_at=None if status == "running" else now - timedelta(minutes=59 - minutes),
        )
    Job.objects.filter(pk=job.pk).update(run_count=6, failure_count=2, last_status="succeeded", last_run_at=now)
    body = as_owner.get(f"/api/jobs/{job.pk}/").json()
    assert body["schedule"] == "Every 5 minutes (UTC)"
    assert body["next_run_at"]
    assert body["run_count"] == 6 and body["failure_count"] == 2 and body["last_status"] == "succeeded"
    results = body["last_results"]
    assert len(results) == 5  # the running one is not a result yet
    assert [r["status"] for r in results] == ["succeeded", "succeeded", "timed_out", "succeeded", "failed"]
    assert results[0]["duration_seconds"] == 60.0


def test_the_list_costs_the_same_queries_for_one_job_or_twenty(as_owner, make_job, owner):
    make_job(owner=owner)
    as_owner.get("/api/jobs/")  # warm-up: the user's permissions are read once, then cached on it
    with CaptureQueriesContext(connection) as one:
        assert as_owner.get("/api/jobs/").status_code == 200
    for _ in range(19):
        job = make_job(owner=owner)
        Execution.objects.create(
            job=job, job_name=job.name, scheduled_for=timezone.now(), run_after=timezone.now(), status="succeeded"
        )
    with CaptureQueriesContext(connection) as twenty:
        assert len(as_owner.get("/api/jobs/").json()["results"]) == 20
    assert len(twenty) == len(one)


# Validation: 400 naming the field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"triggers": [{"kind": "cron", "cron_expression": "61 * * * *"}]}, ("triggers", "0", "cron_expression")),
        ({"triggers": [{"kind": "cron", "cron_expression": "0 0 30 2 *"}]}, ("triggers", "0", "cron_expression")),
        ({"timezone": "Mars/Olympus"}, ("timezone",)),
        ({"task": "no.such.task"}, ("task",)),
        ({"args": {"not": "a list"}}, ("args",)),
        ({"kwargs": ["not", "an", "object"]}, ("kwargs",)),
        ({"args": ["one", "two", "three"]}, ("args",)),  # sample_job takes one argument
        ({"kwargs": {"nope": 1}}, ("kwargs",)),
        ({"triggers": [{"kind": "interval", "interval_seconds": 0}]}, ("triggers", "0", "interval_seconds")),
        ({"triggers": [{"kind": "interval", "interval_seconds": -5}]}, ("triggers", "0", "interval_seconds")),
        ({"triggers": [{"kind": "interval"}]}, ("triggers", "0", "interval_seconds")),
        ({"triggers": [{"kind": "weekly", "days": [7], "at": "10:00"}]}, ("triggers", "0", "days")),
        ({"triggers": [{"kind": "daily", "at": "25:00"}]}, ("triggers", "0", "at")),
        ({"triggers": [{"kind": "fortnightly"}]}, ("triggers", "0", "kind")),
        ({"triggers": [{"kind": "once", "run_at": "9999-12-31T23:59:59Z"}]}, ("triggers", "0", "run_at")),
        ({"triggers": [{"kind": "once"}]}, ("triggers", "0", "run_at")),
        ({"priority": 11}, ("priority",)),
        ({"tags": ["Not A Slug!"]}, ("tags",)),
        ({"group": "has space"}, ("group",)),
        ({"start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, ("end_at",)),
        ({"timeout": 0}, ("timeout",)),
        ({"lost_policy": "twice"}, ("lost_policy",)),
        ({"timeout": 86_401}, ("timeout",)),  # above SCHEDULER_MAX_TIMEOUT (a day by default)
        ({"name": ""}, ("name",)),
        ({"description": "nul \x00 byte"}, ("description",)),
        ({"args": ["nul \x00 byte"]}, ("args",)),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(as_owner, fields, where):
    response = create(as_owner, **{"triggers": [{"kind": "daily", "at": "09:00"}], **fields})
    assert response.status_code == 400, response.content
    errors = response.json()
    for key in where:
        assert key in errors, errors
        errors = errors[key]
    assert Job.objects.count() == 0


def test_the_timeout_bound_is_the_deployments_maximum(as_owner, settings):
    settings.SCHEDULER_MAX_TIMEOUT = 120
    response = create(as_owner, timeout=121)
    assert response.status_code == 400
    assert response.json()["timeout"] == ["The timeout is at most 120 seconds (SCHEDULER_MAX_TIMEOUT)."]
    assert create(as_owner, timeout=120).status_code == 201


def test_a_taken_name_is_a_400_naming_name(as_owner, make_job):
    make_job(name="report")
    response = create(as_owner)
    assert response.status_code == 400
    assert "name" in response.json()


def test_a_code_defined_job_refuses_edits_but_pauses(as_team_admin, make_job):
    job = make_job(code_defined=True)
    response = as_team_admin.patch(f"/api/jobs/{job.pk}/", {"priority": 9}, format="json")
    assert response.status_code == 409
    assert "code_defined" in response.json()
    assert as_team_admin.patch(f"/api/jobs/{job.pk}/", {"paused": True}, format="json").status_code == 200
    assert as_team_admin.post(f"/api/jobs/{job.pk}/pause/").status_code == 200


# Updating and deleting --------------------------------------------------------------------


def test_put_replaces_fields_and_keeps_triggers_when_none_are_given(as_owner, make_job, owner):
    job = make_job(owner=owner, priority=3)
    response = as_owner.put(f"/api/jobs/{job.pk}/", {"name": "renamed", "task": "tempora.noop"}, format="json")
    assert response.status_code == 200, response.json()
    job.refresh_from_db()
    assert (job.name, job.task, job.triggers.count()) == ("renamed", "tempora.noop", 1)


def test_patch_with_triggers_replaces_them_all(as_owner, make_job, owner):
    job = make_job(owner=owner)
    response = as_owner.patch(
        f"/api/jobs/{job.pk}/",
        {"triggers": [{"kind": "hourly", "minute": 5}, {"kind": "daily", "at": "23:00"}]},
        format="json",
    )
    assert response.status_code == 200
    assert [t["preset"] for t in response.json()["triggers"]] == ["hourly", "daily"]
    assert response.json()["schedule"] == "Every hour at :05 (UTC); Every day at 23:00 (UTC)"


def test_a_round_trip_of_the_representation_is_accepted(as_owner):
    body = create(as_owner, triggers=[{"kind": "weekly", "days": [1], "at": "08:15"}]).json()
    response = as_owner.put(f"/api/jobs/{body['id']}/", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["schedule"] == body["schedule"]


def test_delete_keeps_the_history(as_owner, make_job, owner):
    job = make_job(owner=owner)
    run = services.job_run_now(job=job)
    assert as_owner.delete(f"/api/jobs/{job.pk}/").status_code == 204
    run.refresh_from_db()
    assert run.status == "cancelled" and run.job_name == job.name and not Job.objects.filter(pk=job.pk).exists()


# Filters, search, ordering, pagination ----------------------------------------------------------


@pytest.fixture
def catalogue(make_job, owner):
    return {
        "a": make_job(
            name="alpha export",
            owner=owner,
            group="etl",
            tags=["nightly"],
            priority=2,
            triggers=[{"kind": "daily", "at": "01:00"}],
        ),
        "b": make_job(
            name="beta",
            owner=owner,
            group="etl",
            description="sends the export",
            priority=9,
            triggers=[{"kind": "interval", "interval_seconds": 60}],
            task="tempora.noop",
        ),
        "c": make_job(
            name="gamma",
            owner=owner,
            group="mail",
            paused=True,
            tags=["weekly"],
            triggers=[{"kind": "cron", "cron_expression": "0 0 * * 0"}],
        ),
    }


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("group=etl", ["alpha export", "beta"]),
        ("tag=nightly", ["alpha export"]),
        ("status=paused", ["gamma"]),
        ("status=active", ["alpha export", "beta"]),
        ("task=tempora.noop", ["beta"]),
        ("trigger_kind=interval", ["beta"]),
        ("trigger_kind=daily", ["alpha export"]),
        ("trigger_kind=cron", ["alpha export", "gamma"]),
        ("search=export", ["alpha export", "beta"]),
        ("ordering=-priority", ["beta", "gamma", "alpha export"]),
        ("owner=owner&ordering=name", ["alpha export", "beta", "gamma"]),
    ],
)
def test_list_filters(as_owner, catalogue, query, names):
    response = as_owner.get(f"/api/jobs/?{query}")
    assert response.status_code == 200
    assert [job["name"] for job in response.json()["results"]] == names


def test_a_bad_filter_value_is_a_400(as_owner, catalogue):
    assert as_owner.get("/api/jobs/?status=sleeping").status_code == 400
    assert as_owner.get("/api/jobs/?trigger_kind=yearly").status_code == 400


def test_pagination(as_owner, catalogue):
    first = as_owner.get("/api/jobs/?page_size=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = as_owner.get("/api/jobs/?page_size=2&page=2").json()
    assert [job["name"] for job in second["results"]] == ["gamma"]


# Verbs -------------------------------------------------------------------------------------


def test_pause_resume_enable_disable(as_owner, make_job, owner):
    job = make_job(owner=owner)
    assert as_owner.post(f"/api/jobs/{job.pk}/pause/").json()["status"] == "paused"
    assert as_owner.post(f"/api/jobs/{job.pk}/resume/").json()["status"] == "active"
    assert as_owner.post(f"/api/jobs/{job.pk}/disable").json()["paused"] is True
    assert as_owner.post(f"/api/jobs/{job.pk}/enable").json()["paused"] is False


def test_run_records_a_manual_run_and_answers_its_id_at_once(as_owner, make_job, owner):
    job = make_job(owner=owner)
    response = as_owner.post(f"/api/jobs/{job.pk}/run/")
    assert response.status_code == 202
    execution = Execution.objects.get(pk=response.json()["execution_id"])
    assert (execution.job, execution.reason, execution.status, execution.requested_by) == (
        job,
        "manual",
        "scheduled",
        owner,
    )
    assert response.json()["url"] == f"/api/executions/{execution.pk}/"


def test_duplicate_copies_paused_under_a_free_name(as_owner, make_job, owner):
    job = make_job(name="report", owner=owner)
    copy = as_owner.post(f"/api/jobs/{job.pk}/duplicate/", {}, format="json")
    assert copy.status_code == 201
    assert (copy.json()["name"], copy.json()["paused"]) == ("report (copy)", True)
    named = as_owner.post(f"/api/jobs/{job.pk}/duplicate/", {"name": "report two"}, format="json").json()
    assert named["name"] == "report two" and len(named["triggers"]) == 1
    assert as_owner.post(f"/api/jobs/{job.pk}/duplicate/", {"name": "report two"}, format="json").status_code == 400


def test_next_runs(as_owner, make_job, owner):
    job = make_job(owner=owner, timezone="Asia/Tokyo", triggers=[{"kind": "daily", "at": "09:00"}])
    body = as_owner.get(f"/api/jobs/{job.pk}/next-runs/?count=3").json()
    assert body["timezone"] == "Asia/Tokyo" and len(body["next_runs"]) == 3
    first = datetime.fromisoformat(body["next_runs"][0]["at"].replace("Z", "+00:00"))
    assert first.astimezone(UTC).hour == 0 and first > timezone.now()
    assert body["next_runs"][0]["local"].endswith("09:00 JST (Asia/Tokyo)")
    assert as_owner.get(f"/api/jobs/{job.pk}/next-runs/?count=0").status_code == 400
    assert as_owner.get(f"/api/jobs/{job.pk}/next-runs/?count=abc").status_code == 400


def test_a_jobs_executions(as_owner, make_job, owner):
    job, other = make_job(owner=owner), make_job(owner=owner)
    mine = services.job_run_now(job=job)
    services.job_run_now(job=other)
    body = as_owner.get(f"/api/jobs/{job.pk}/executions/").json()
    assert [run["id"] for run in body["results"]] == [mine.pk]
    assert as_owner.get(f"/api/jobs/{job.pk}/executions/?status=failed").json()["results"] == []
    assert as_owner.get("/api/jobs/999999/executions/").status_code == 404


def test_it_takes_the_django_tasks_executor_and_refuses_it_without_a_backend(as_owner, settings):
    response = create(as_owner, executor="django_tasks", triggers=[{"kind": "interval", "interval_seconds": 60}])
    assert response.status_code == 201, response.json()
    assert Job.objects.get(pk=response.json()["id"]).executor == "django_tasks"
    settings.TEMPORA = {**settings.TEMPORA, "TASKS_BACKEND": "nowhere"}
    refused = create(as_owner, name="other", executor="django_tasks")
    assert refused.status_code == 400
    assert "names no usable backend" in str(refused.json()["executor"])
