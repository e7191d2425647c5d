"""Unknown input is a 400 naming it in both APIs, never silently dropped (issue 8): body fields a
serializer does not know, and query parameters an endpoint does not read."""

from __future__ import annotations

import pytest

from scheduler_app.models import ApiToken, Calendar, Job
from tests.api.test_fastscheduler import create

pytestmark = pytest.mark.django_db

JOB = {"name": "report", "task": "tempora.sample_job", "triggers": [{"kind": "cron", "cron_expression": "0 9 * * *"}]}


@pytest.mark.parametrize("extra", [{"metadata": {"team": "data"}}, {"depends_on": ["nightly"]}, {"Name": "x"}])
def test_creating_a_job_with_an_unknown_field_is_a_400_naming_it(as_owner, extra):
    response = as_owner.post("/api/jobs/", {**JOB, **extra}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == list(extra)
    assert not Job.objects.exists()


def test_an_unknown_field_of_a_trigger_is_a_400_naming_it(as_owner):
    body = {**JOB, "triggers": [{"kind": "cron", "cron_expression": "0 9 * * *", "timezone": "Europe/Paris"}]}
    response = as_owner.post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert "timezone" in response.json()["triggers"]["0"]


def test_changing_a_job_with_an_unknown_field_is_a_400(as_owner, owned_job):
    response = as_owner.patch(f"/api/jobs/{owned_job.pk}/", {"retries": 3}, format="json")
    assert response.status_code == 400 and "retries" in response.json()
    owned_job.refresh_from_db()
    assert owned_job.max_retries == 0


def test_a_job_read_can_be_written_back_whole(as_owner, owned_job):
    body = as_owner.get(f"/api/jobs/{owned_job.pk}/").json()
    response = as_owner.put(f"/api/jobs/{owned_job.pk}/", body, format="json")
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/calendars/", {"name": "holidays", "dates": ["2026-12-25"]}, "dates"),
        ("/api/tokens/", {"name": "ci", "expires": "2027-01-01"}, "expires"),
        ("/api/schedules/preview/", {"triggers": [{"kind": "daily", "at": "09:00"}], "zone": "UTC"}, "zone"),
        ("/api/cron/validate/", {"expression": "0 9 * * *", "tz": "UTC"}, "tz"),
    ],
)
def test_other_bodies_refuse_unknown_fields_by_name(as_owner, url, body, field):
    response = as_owner.post(url, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Calendar.objects.exists() and not ApiToken.objects.exists()


def test_copying_a_job_with_an_unknown_field_is_a_400(as_owner, owned_job):
    response = as_owner.post(f"/api/jobs/{owned_job.pk}/duplicate/", {"title": "copy"}, format="json")
    assert response.status_code == 400 and "title" in response.json()


def test_an_unknown_scheduler_setting_is_a_400_naming_it(as_team_admin):
    response = as_team_admin.patch("/api/scheduler/config/", {"max_workers": 4, "workers": 8}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["workers"]
    assert as_team_admin.get("/api/scheduler/config/").json()["max_workers"] != 4


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/jobs/?job_name=owned", "job_name"),
        ("/api/jobs/?grup=etl", "grup"),
        ("/api/executions/?jobname=owned", "jobname"),
        ("/api/dead-letters/?acknowleged=true", "acknowleged"),
        ("/api/groups/?name=etl", "name"),
        ("/api/tasks/?search=sample", "search"),
        ("/api/calendars/?owner=owner", "owner"),
        ("/api/stats/?day=3", "day"),
        ("/api/cron/validate/?expression=0+9+*+*+*&tz=UTC", "tz"),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(as_owner, owned_job, url, parameter):
    response = as_owner.get(url)
    assert response.status_code == 400, response.json()
    assert parameter in response.json()


def test_an_unknown_parameter_of_one_jobs_endpoints_is_a_400_too(as_owner, owned_job):
    for url in (
        f"/api/jobs/{owned_job.pk}/?fields=name",
        f"/api/jobs/{owned_job.pk}/next-runs/?counts=3",
        f"/api/jobs/{owned_job.pk}/executions/?sort=id",
    ):
        response = as_owner.get(url)
        assert response.status_code == 400, url


def test_the_standard_parameters_are_known(as_owner, owned_job):
    assert as_owner.get("/api/jobs/?page=1&page_size=10&ordering=-name&search=own&format=json").status_code == 200
    assert as_owner.get("/api/groups/?format=json").status_code == 200
    assert as_owner.get(f"/api/jobs/{owned_job.pk}/next-runs/?count=3").status_code == 200
    assert as_owner.get("/api/executions/?status=failed&status=lost&ordering=-id").status_code == 200


# FastScheduler's API ----------------------------------------------------------------------


def test_fastscheduler_create_refuses_an_unknown_field_naming_it(as_owner, fastscheduler_tasks):
    response = create(as_owner, priority="high")
    assert response.status_code == 400 and "priority" in response.json()["detail"]
    assert not Job.objects.exists()


def test_fastscheduler_update_refuses_an_unknown_field_naming_it(as_owner, fastscheduler_tasks):
    job_id = create(as_owner).json()["job_id"]
    response = as_owner.put(f"/scheduler/api/jobs/{job_id}", {"retries": 5}, format="json")
    assert response.status_code == 400 and "retries" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/scheduler/api/jobs?grp=data_sync",
        "/scheduler/api/jobs?limit=5",
        "/scheduler/api/history?function=x",
        "/scheduler/api/groups?group=x",
        "/scheduler/api/status?verbose=1",
    ],
)
def test_fastscheduler_refuses_an_unknown_query_parameter_naming_it(as_owner, url):
    response = as_owner.get(url)
    assert response.status_code == 400
    parameter = url.split("?")[1].split("=")[0]
    assert parameter in response.json()["detail"] and parameter in response.json()["errors"]


def test_fastschedulers_own_parameters_are_known(as_owner):
    for url in (
        "/scheduler/api/jobs?group=x",
        "/scheduler/api/history?func_name=x&limit=5",
        "/scheduler/api/dead-letters?limit=5",
    ):
        assert as_owner.get(url).status_code == 200, url
