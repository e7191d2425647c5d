"""Every console page tells a job's state truthfully: a job with no upcoming run has a clear
state and no "next run", and one job whose schedule cannot be computed degrades its own row,
never the page (issue 8, "States that lie")."""

from __future__ import annotations

import re

import pytest

from scheduler_app.models import Job
from tests import job_states
from tests.job_states import NOW
from tests.web.conftest import htmx
from tests.web.test_job_form import form_data

pytestmark = pytest.mark.django_db

ALL_CASES = ["scheduled", "not_started", "paused", *job_states.WITHOUT_NEXT_RUN]
LABELS = job_states.LABELS


def summary_card(body: str, label: str) -> str:
    """The text of one figure card of the job page ("Next run", ...)."""
    match = re.search(rf'<span class="card-label">{label}</span>(.*?)</div>', body, re.S)
    assert match, label
    return match.group(1)


def job_row(body: str, job: Job) -> str:
    match = re.search(rf'<tr id="job-row-{job.pk}">(.*?)</tr>', body, re.S)
    assert match, job.name
    return match.group(1)


@pytest.mark.parametrize("case", ALL_CASES)
def test_the_page_of_each_job_answers_with_its_state(owner_client, state_jobs, case):
    response = owner_client.get(f"/jobs/{state_jobs[case].pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert LABELS[job_states.state_of(case)] in body


@pytest.mark.parametrize("case", job_states.WITHOUT_NEXT_RUN)
def test_the_page_of_a_job_with_no_upcoming_run_shows_no_next_run(owner_client, state_jobs, case):
    body = owner_client.get(f"/jobs/{state_jobs[case].pk}/").content.decode()
    assert "<time" not in summary_card(body, "Next run")
    assert "<time" not in owner_client.get(f"/jobs/{state_jobs[case].pk}/", **htmx("job-next-runs")).content.decode()


@pytest.mark.parametrize("case", ["no_schedule", "finished-one-off-that-passed"])
def test_the_summary_fragment_of_such_a_job_answers_too(owner_client, state_jobs, case):
    assert owner_client.get(f"/jobs/{state_jobs[case].pk}/", **htmx("job-summary")).status_code == 200


def test_the_page_says_why_a_schedule_cannot_be_computed(owner_client, state_jobs):
    body = owner_client.get(f"/jobs/{state_jobs['schedule_error'].pk}/").content.decode()
    assert "Schedule cannot be computed" in body and "61" in body


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param({"triggers-TOTAL_FORMS": 0}, id="no-trigger"),
        pytest.param(
            {"triggers-0-kind": "once", "triggers-0-run_at": "2026-03-02T12:00"}, id="one-off-whose-time-passed"
        ),
        pytest.param({"end_at": "2026-03-01T00:00", "start_at": "2026-02-01T00:00"}, id="window-ended"),
    ],
)
def test_the_page_you_land_on_after_saving_such_a_job_answers(owner_client, at_now, trigger):
    saved = owner_client.post("/jobs/new/", form_data(timezone="UTC", **trigger))
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert owner_client.get(saved["Location"]).status_code == 200


@pytest.mark.parametrize("case", ALL_CASES)
def test_the_jobs_list_shows_each_state(owner_client, state_jobs, case):
    row = job_row(owner_client.get("/jobs/").content.decode(), state_jobs[case])
    assert LABELS[job_states.state_of(case)] in row
    assert ">Active<" not in row


@pytest.mark.parametrize("case", job_states.WITHOUT_NEXT_RUN)
def test_the_jobs_list_shows_no_next_run_for_a_job_without_one(owner_client, state_jobs, case):
    row = job_row(owner_client.get("/jobs/").content.decode(), state_jobs[case])
    assert "countdown" not in row and " ago" not in row


def test_the_jobs_list_shows_the_next_run_of_a_scheduled_job(owner_client, state_jobs):
    row = job_row(owner_client.get("/jobs/").content.decode(), state_jobs["scheduled"])
    assert 'datetime="2026-03-02T12:05:00Z"' in row


@pytest.mark.parametrize("state", ["finished", "ended", "no_schedule", "scheduled", "schedule_error"])
def test_the_jobs_list_filters_by_state(owner_client, state_jobs, state):
    body = owner_client.get(f"/jobs/?status={state}").content.decode()
    shown = {job.name for job in state_jobs.values() if f'id="job-row-{job.pk}"' in body}
    assert shown == {job.name for case, job in state_jobs.items() if job_states.state_of(case) == state}


def test_the_dashboard_lists_the_next_runs_and_the_job_it_cannot_plan(owner_client, state_jobs):
    response = owner_client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    upcoming = body.split('id="upcoming-title"')[1].split("</article>")[0]
    assert state_jobs["scheduled"].name in upcoming and "Schedule cannot be computed" in upcoming
    for case in ("finished-one-off-that-ran", "ended", "finished-max-runs"):
        assert state_jobs[case].name not in upcoming


@pytest.mark.parametrize("client_name", ["owner_client", "team_admin_client"])
def test_the_month_calendar_answers_when_one_schedule_cannot_be_computed(request, state_jobs, client_name):
    response = request.getfixturevalue(client_name).get("/calendar/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Schedule cannot be computed" in body and state_jobs["schedule_error"].name in body
    assert state_jobs["scheduled"].name in body


@pytest.mark.parametrize("month", ["9999-11", "9980-06"])
@pytest.mark.parametrize("client_name", ["owner_client", "team_admin_client"])
def test_the_month_calendar_answers_for_months_whose_runs_reach_beyond_year_9999(
    request, make_job, owner, at_now, month, client_name
):
    make_job(owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 9 * * *"}], now=NOW)
    response = request.getfixturevalue(client_name).get(f"/calendar/?month={month}")
    assert response.status_code == 200


def test_a_job_starting_in_year_9999_does_not_break_its_owners_calendar(owner_client, make_job, owner, at_now):
    from datetime import UTC, datetime

    make_job(owner=owner, name="far-future", start_at=datetime(9999, 11, 1, tzinfo=UTC), now=NOW)
    for url in ("/calendar/", "/calendar/?month=9999-11", "/calendar/9999-11-30/", "/", "/jobs/"):
        assert owner_client.get(url).status_code == 200, url


@pytest.mark.parametrize("url", ["/calendar/?month=9999-12", "/calendar/?month=0000-01", "/calendar/?month=june"])
def test_a_month_the_calendar_cannot_show_is_a_visible_error(owner_client, at_now, url):
    response = owner_client.get(url)
    assert response.status_code == 400
    assert "cannot show" in response.content.decode()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_day_the_calendar_cannot_show_is_not_found(owner_client, at_now, day):
    assert owner_client.get(f"/calendar/{day}/").status_code == 404


def test_the_day_view_answers_when_one_schedule_cannot_be_computed(owner_client, state_jobs):
    response = owner_client.get("/calendar/2026-03-03/")
    assert response.status_code == 200
    assert "Schedule cannot be computed" in response.content.decode()
