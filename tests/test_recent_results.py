"""A job list's "last results": one query for a whole page of jobs (Job.objects.with_recent_results),
used by the console's jobs list and the API's jobs, whatever the number of jobs and runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler_app.models import Execution, Job
from tests.api.conftest import _client
from tests.web.conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]


@pytest.fixture
def add_jobs(make_job, owner, now):
    def add(count: int, runs: int = 7) -> list[Job]:
        jobs = [make_job(owner=owner) for _ in range(count)]
        Execution.objects.bulk_create(
            [
                Execution(
                    job=job,
                    job_name=job.name,
                    scheduled_for=now - timedelta(minutes=i),
                    run_after=now,
                    status="failed" if i % 2 else "succeeded",
                    finished_at=now,
                )
                for job in jobs
                for i in range(runs)
            ]
        )
        return jobs

    return add


def test_it_reads_every_jobs_last_five_finished_runs_in_one_query(add_jobs, django_assert_num_queries, now):
    add_jobs(3)
    Execution.objects.create(
        job=Job.objects.first(), job_name="x", scheduled_for=now + timedelta(hours=1), run_after=now, status="scheduled"
    )  # not finished: not a result
    with django_assert_num_queries(2):  # the jobs, then every job's results
        jobs = list(Job.objects.with_recent_results())
    for job in jobs:
        assert [run.scheduled_for for run in job.recent_results] == [now - timedelta(minutes=i) for i in range(5)]


def _queries(get) -> int:
    get()  # warm-up: the user's permissions are read once, then cached on it
    with CaptureQueriesContext(connection) as queries:
        assert get().status_code == 200
    return len(queries)


@pytest.mark.parametrize("interface", ["console", "api"])
def test_a_job_list_costs_the_same_queries_for_two_jobs_or_twelve(add_jobs, owner, interface):
    if interface == "console":
        client, path = client_for(owner), "/jobs/"
    else:
        client, path = _client(owner), "/api/jobs/"
    add_jobs(2)
    few = _queries(lambda: client.get(path))
    add_jobs(10, runs=20)
    assert _queries(lambda: client.get(path)) == few


def test_the_api_and_the_console_show_the_same_runs(add_jobs, owner):
    [job] = add_jobs(1)
    api = _client(owner).get(f"/api/jobs/{job.pk}/").json()["last_results"]
    console = client_for(owner).get("/jobs/").context["page"].object_list[0].recent
    assert [row["id"] for row in api] == [run.pk for run in reversed(console)]
