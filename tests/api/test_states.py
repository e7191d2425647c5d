"""Both APIs tell each job's state truthfully (issue 8, "States that lie"): Tempora's API has a
read-only, filterable `state` and no `next_run_at` for a job without an upcoming run;
FastScheduler's list drops finished jobs as FastScheduler does, so every `next_run` it lists
is a time string; a schedule that cannot be computed degrades that job, never the answer."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import job_states
from tests.job_states import NOW

pytestmark = pytest.mark.django_db

ALL_CASES = ["scheduled", "not_started", "paused", *job_states.WITHOUT_NEXT_RUN]


def listed(client, url: str = "/api/jobs/?page_size=100") -> dict[str, dict]:
    response = client.get(url)
    assert response.status_code == 200, response.json()
    return {row["name"]: row for row in response.json()["results"]}


@pytest.mark.parametrize("case", ALL_CASES)
def test_the_job_list_says_each_jobs_state(as_owner, state_jobs, case):
    row = listed(as_owner)[state_jobs[case].name]
    assert row["state"] == job_states.state_of(case)


@pytest.mark.parametrize("case", [*job_states.WITHOUT_NEXT_RUN, "paused"])
def test_a_job_that_will_not_run_has_no_next_run_at(as_owner, state_jobs, case):
    assert listed(as_owner)[state_jobs[case].name]["next_run_at"] is None
    assert as_owner.get(f"/api/jobs/{state_jobs[case].pk}/").json()["next_run_at"] is None


def test_a_scheduled_job_shows_its_next_run(as_owner, state_jobs):
    assert listed(as_owner)[state_jobs["scheduled"].name]["next_run_at"] == "2026-03-02T12:05:00Z"


def test_a_schedule_that_cannot_be_computed_says_why_in_its_row(as_owner, state_jobs):
    row = listed(as_owner)[state_jobs["schedule_error"].name]
    assert row["state"] == "schedule_error" and "61" in row["state_error"]
    assert listed(as_owner)[state_jobs["scheduled"].name]["state_error"] == ""


def test_the_next_runs_of_a_job_whose_schedule_cannot_be_computed_say_why(as_owner, state_jobs):
    response = as_owner.get(f"/api/jobs/{state_jobs['schedule_error'].pk}/next-runs/")
    assert response.status_code == 200
    body = response.json()
    assert body["next_runs"] == [] and body["state"] == "schedule_error" and "61" in body["error"]


def test_the_next_runs_of_a_finished_job_are_none_with_its_state(as_owner, state_jobs):
    body = as_owner.get(f"/api/jobs/{state_jobs['finished-one-off-that-ran'].pk}/next-runs/").json()
    assert body["next_runs"] == [] and body["state"] == "finished" and body["error"] == ""


@pytest.mark.parametrize("state", ["scheduled", "paused", "finished", "ended", "no_schedule", "schedule_error"])
def test_the_job_list_filters_by_state(as_owner, state_jobs, state):
    shown = set(listed(as_owner, f"/api/jobs/?state={state}&page_size=100"))
    assert shown == {job.name for case, job in state_jobs.items() if job_states.state_of(case) == state}


def test_an_unknown_state_is_a_400_naming_it(as_owner, state_jobs):
    response = as_owner.get("/api/jobs/?state=sleeping")
    assert response.status_code == 400 and "state" in response.json()


def test_the_state_is_read_only(as_owner, state_jobs):
    job = state_jobs["scheduled"]
    response = as_owner.patch(f"/api/jobs/{job.pk}/", {"state": "paused"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "scheduled"


def test_the_schema_documents_the_state_and_its_filter(as_owner):
    schema = as_owner.get("/api/schema/?format=json").json()
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert job["state"]["readOnly"] is True
    states = {
        "scheduled",
        "not_started",
        "paused",
        "no_schedule",
        "finished",
        "ended",
        "no_upcoming_run",
        "schedule_error",
    }
    enums = [c for c in schema["components"]["schemas"].values() if set(c.get("enum", [])) == states]
    assert enums
    parameters = {p["name"] for p in schema["paths"]["/api/jobs/"]["get"]["parameters"]}
    assert "state" in parameters


def test_the_list_costs_the_same_queries_with_max_runs_jobs(as_owner, make_job, owner):
    make_job(owner=owner, max_runs=3)
    as_owner.get("/api/jobs/")
    with CaptureQueriesContext(connection) as one:
        as_owner.get("/api/jobs/")
    for _ in range(9):
        make_job(owner=owner, max_runs=3)
    with CaptureQueriesContext(connection) as ten:
        assert len(as_owner.get("/api/jobs/").json()["results"]) == 10
    assert len(ten) == len(one)


# FastScheduler's API ----------------------------------------------------------------------

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def test_fastschedulers_list_drops_jobs_that_will_never_run_again(as_owner, state_jobs):
    listed_names = {row["job_name"]: row for row in as_owner.get("/scheduler/api/jobs").json()["jobs"]}
    assert set(listed_names) == {state_jobs[case].name for case in ("scheduled", "not_started", "paused")}
    for row in listed_names.values():
        assert TIME.match(row["next_run"]) and row["next_run_in"] >= 0


def test_fastschedulers_list_of_a_group_drops_them_too(as_owner, state_jobs):
    rows = as_owner.get("/scheduler/api/groups/default/jobs").json()["jobs"]
    assert all(TIME.match(row["next_run"]) for row in rows) and rows


def test_fastschedulers_paused_job_keeps_the_run_it_would_make(as_owner, state_jobs):
    row = as_owner.get(f"/scheduler/api/jobs/job_{state_jobs['paused'].pk}").json()["job"]
    assert row["status"] == "paused" and row["next_run"] == "2026-03-02 12:05:00"


def test_a_finished_one_off_reads_as_completed_with_no_next_run(as_owner, state_jobs):
    row = as_owner.get(f"/scheduler/api/jobs/job_{state_jobs['finished-one-off-that-ran'].pk}").json()["job"]
    assert row["status"] == "completed" and row["next_run"] is None and row["next_run_in"] is None


def test_a_one_off_disappears_from_fastschedulers_list_once_it_ran(as_owner, fastscheduler_tasks, at_now):
    from tests.api.test_fastscheduler import create, job_of

    response = create(as_owner, schedule_type="once", schedule_config={"delay": 60, "unit": "seconds"})
    job = job_of(response)
    assert [row["job_id"] for row in as_owner.get("/scheduler/api/jobs").json()["jobs"]] == [f"job_{job.pk}"]
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        job_states._ran(job, NOW + timedelta(minutes=1))
        assert as_owner.get("/scheduler/api/jobs").json()["jobs"] == []
