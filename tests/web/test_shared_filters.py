"""The console's list filters are the API's FilterSets (api/filters.py): one definition of each
filter, the console keeping its own query parameters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.filtersets import ExecutionFilter, JobFilter
from scheduler_app.models import Execution
from scheduler_app.web.filters import ExecutionListFilter, HistoryFilter, JobListFilter
from tests.api.conftest import _client

pytestmark = pytest.mark.django_db


def test_the_console_filters_are_the_apis_own():
    for name in ("group", "tag", "task"):
        assert JobListFilter.base_filters[name] is JobFilter.base_filters[name]
    for name in ("job", "status", "reason", "group"):
        assert ExecutionListFilter.base_filters[name] is ExecutionFilter.base_filters[name]
    assert ExecutionListFilter.base_filters["job_name"] is ExecutionFilter.base_filters["job_name_contains"]
    assert HistoryFilter.base_filters["status"] is ExecutionFilter.base_filters["status"]


@pytest.fixture
def world(make_job, owner, now):
    jobs = {
        "a": make_job(name="etl-a", owner=owner, group="etl", tags=["nightly"]),
        "b": make_job(name="etl-b", owner=owner, group="etl", task="tempora.noop"),
        "c": make_job(name="web-c", owner=owner, group="web", tags=["nightly"]),
    }
    for index, (job, status, reason) in enumerate(
        [
            (jobs["a"], "failed", "schedule"),
            (jobs["a"], "succeeded", "manual"),
            (jobs["b"], "failed", "manual"),
        ]
    ):
        at = now - timedelta(minutes=index)
        Execution.objects.create(
            job=job, job_name=job.name, scheduled_for=at, run_after=at, status=status, reason=reason
        )
    return jobs


@pytest.mark.parametrize(
    "query", ["group=etl", "tag=nightly", "task=tempora.noop", "group=etl&tag=nightly", "group=none"]
)
def test_the_console_and_the_api_list_the_same_jobs(owner_client, owner, world, query):
    console = {job.name for job in owner_client.get(f"/jobs/?{query}").context["page"].object_list}
    api = {job["name"] for job in _client(owner).get(f"/api/jobs/?{query}").json()["results"]}
    assert console == api


@pytest.mark.parametrize(
    "query", ["status=failed", "reason=manual", "group=etl&status=failed", "job_name=ETL-A", "status="]
)
def test_the_console_and_the_api_list_the_same_runs(owner_client, owner, world, query):
    api_query = query.replace("job_name=", "job_name_contains=")
    console = {run.pk for run in owner_client.get(f"/executions/?{query}").context["page"].rows}
    response = _client(owner).get(f"/api/executions/?{api_query}")
    assert response.status_code == 200, response.json()
    assert console == {run["id"] for run in response.json()["results"]}
