"""Run now with argument overrides (POST /api/jobs/{id}/run/ {"args": [...], "kwargs": {...}}),
recorded on the Execution; and executions filtered by job name and by date range."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db


def run(client, job, body=None):
    return client.post(f"/api/jobs/{job.pk}/run/", body, format="json")


def test_run_now_records_the_keyword_arguments_given(as_owner, owned_job):
    response = run(as_owner, owned_job, {"kwargs": {"message": "just this once"}})
    assert response.status_code == 202
    execution = Execution.objects.get(pk=response.json()["execution_id"])
    assert execution.kwargs == {"message": "just this once"} and execution.args is None


def test_run_now_records_the_positional_arguments_given(as_owner, owned_job):
    response = run(as_owner, owned_job, {"args": ["positional"]})
    execution = Execution.objects.get(pk=response.json()["execution_id"])
    assert execution.args == ["positional"] and execution.kwargs is None


def test_run_now_without_a_body_uses_the_jobs_own_arguments(as_owner, owned_job):
    execution = Execution.objects.get(pk=run(as_owner, owned_job).json()["execution_id"])
    assert execution.args is None and execution.kwargs is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kwargs": {"mesage": "typo"}}, "kwargs"),
        ({"args": ["one", "two"]}, "args"),
        ({"args": "not a list"}, "args"),
        ({"kwargs": ["not", "an", "object"]}, "kwargs"),
        ({"kwargs": {"message": "x"}, "priority": 10}, "priority"),
    ],
)
def test_arguments_that_do_not_fit_the_task_are_a_400_naming_the_field(as_owner, owned_job, body, field):
    response = run(as_owner, owned_job, body)
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Execution.objects.exists()


def test_the_execution_shows_the_arguments_it_was_given(as_owner, owned_job):
    execution_id = run(as_owner, owned_job, {"kwargs": {"message": "override"}}).json()["execution_id"]
    body = as_owner.get(f"/api/executions/{execution_id}/").json()
    assert body["kwargs"] == {"message": "override"} and body["args"] is None
    listed = as_owner.get("/api/executions/").json()["results"][0]
    assert listed["kwargs"] == {"message": "override"}


def test_the_schema_documents_the_run_body_and_the_execution_filters(as_owner):
    schema = as_owner.get("/api/schema/?format=json").json()
    run_body = schema["paths"]["/api/jobs/{id}/run/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = run_body["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][name]["properties"]) == {"args", "kwargs"}
    parameters = {p["name"]: p for p in schema["paths"]["/api/executions/"]["get"]["parameters"]}
    for expected in ("job_name", "job_name_contains", "scheduled_after", "scheduled_before"):
        assert expected in parameters and parameters[expected].get("description"), expected


# Executions by job name and by date ----------------------------------------------------------


@pytest.fixture
def history(make_job, owner):
    now = timezone.now()
    rows = {}
    for name in ("nightly-report", "nightly-backup", "hourly-sync"):
        job = make_job(name=name, owner=owner)
        for days in (1, 10):
            at = now - timedelta(days=days)
            rows[(name, days)] = Execution.objects.create(
                job=job, job_name=name, scheduled_for=at, run_after=at, status="succeeded", finished_at=at
            )
    return now, rows


def names(client, query: str) -> list[tuple[str, int]]:
    response = client.get(f"/api/executions/?{query}")
    assert response.status_code == 200, response.json()
    return sorted(row["job_name"] for row in response.json()["results"])


def test_executions_are_filtered_by_exact_job_name(as_owner, history):
    assert names(as_owner, "job_name=nightly-report") == ["nightly-report", "nightly-report"]


def test_executions_are_filtered_by_part_of_the_job_name(as_owner, history):
    assert names(as_owner, "job_name_contains=NIGHTLY") == ["nightly-backup"] * 2 + ["nightly-report"] * 2


def test_executions_are_filtered_by_date_range(as_owner, history):
    now, _rows = history
    after = (now - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert names(as_owner, f"scheduled_after={after}") == ["hourly-sync", "nightly-backup", "nightly-report"]
    before = (now - timedelta(days=5)).isoformat().replace("+00:00", "Z")
    assert len(names(as_owner, f"scheduled_before={before}&job_name_contains=nightly")) == 2


def test_a_deleted_jobs_runs_are_found_by_the_name_they_were_recorded_under(as_team_admin, history):
    from scheduler_app import services
    from scheduler_app.models import Job

    services.job_delete(job=Job.objects.get(name="hourly-sync"))
    assert names(as_team_admin, "job_name=hourly-sync") == ["hourly-sync", "hourly-sync"]
