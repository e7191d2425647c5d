"""The admin shows each job's state (Job.schedule_state) and no next run for a job without one."""

from __future__ import annotations

import re

import pytest

from scheduler_app.models import Job
from tests import job_states
from tests.test_admin import change, changelist

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]


def changelist_row(body: str, job: Job) -> str:
    match = re.search(rf"<tr>(?:(?!</tr>).)*?/{job.pk}/change/(?:(?!</tr>).)*</tr>", body, re.S)
    assert match, job.name
    return match.group(0)


@pytest.mark.parametrize("case", ["scheduled", "paused", *job_states.WITHOUT_NEXT_RUN])
def test_the_changelist_shows_each_jobs_state_and_no_stale_next_run(admin_client, state_jobs, case):
    body = admin_client.get(changelist(Job)).content.decode()
    row = changelist_row(body, state_jobs[case])
    assert job_states.LABELS[job_states.state_of(case)] in row
    if case in job_states.WITHOUT_NEXT_RUN:
        # Not the 11:59 the scheduler last planned for.
        assert 'class="field-next_run">-</td>' in row


@pytest.mark.parametrize("state", ["finished", "ended", "schedule_error"])
def test_the_changelist_filters_by_state(admin_client, state_jobs, state):
    body = admin_client.get(changelist(Job), {"state": state}).content.decode()
    shown = {job.name for job in state_jobs.values() if f"/{job.pk}/change/" in body}
    assert shown == {job.name for case, job in state_jobs.items() if job_states.state_of(case) == state}


def test_the_change_form_of_a_job_without_a_trigger_shows_its_state(admin_client, state_jobs):
    response = admin_client.get(change(state_jobs["no_schedule"]))
    assert response.status_code == 200 and "No schedule" in response.content.decode()


def test_the_changelist_costs_the_same_queries_with_max_runs_jobs(
    admin_client, make_job, django_assert_max_num_queries
):
    for _ in range(3):
        make_job(max_runs=5)
    admin_client.get(changelist(Job))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        admin_client.get(changelist(Job))
    for _ in range(6):
        make_job(max_runs=5)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(changelist(Job))
    assert len(many) == len(few)
