"""The console's list filters: a value a page cannot use, or a parameter it does not read, is an
error shown on the page and no rows, never every row as if there were no filter (issue 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.models import Execution
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(job, now, make_job, owner):
    for hours, status in ((1, "succeeded"), (30, "failed")):
        at = now - timedelta(hours=hours)
        Execution.objects.create(job=job, job_name=job.name, scheduled_for=at, run_after=at, status=status)
    other = make_job(name="hourly-sync", owner=owner)
    Execution.objects.create(job=other, job_name=other.name, scheduled_for=now, run_after=now, status="succeeded")
    return job


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("/jobs/?status=sleeping", "sleeping"),
        ("/jobs/?sort=colour", "colour"),
        ("/jobs/?job_name=nightly", "job_name"),
        ("/executions/?status=exploded", "exploded"),
        ("/executions/?reason=whim", "whim"),
        ("/executions/?from=yesterday", "From"),
        ("/executions/?to=2026-02-30", "To"),
        ("/executions/?job=abc", "Job"),
        ("/executions/?jobname=nightly", "jobname"),
    ],
)
def test_a_filter_the_page_cannot_use_is_shown_as_an_error_with_no_rows(owner_client, runs, url, words):
    response = owner_client.get(url)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'role="alert"' in body and words in body
    assert runs.name not in body.split('role="alert"')[1].split("</table>")[0]


def test_the_error_shows_in_the_table_fragment_too(owner_client, runs):
    response = owner_client.get("/executions/?status=exploded", **htmx("executions-table"))
    assert response.status_code == 400 and "exploded" in response.content.decode()


def test_the_job_pages_history_refuses_an_unknown_status(owner_client, runs):
    response = owner_client.get(f"/jobs/{runs.pk}/?status=exploded")
    assert response.status_code == 400 and "exploded" in response.content.decode()


def test_the_filters_the_pages_offer_still_work(owner_client, runs):
    assert (
        owner_client.get("/jobs/?status=scheduled&sort=-next_run_at&q=night&group=reports&tag=etl&page=1").status_code
        == 200
    )
    page = owner_client.get("/executions/?status=failed&reason=schedule&from=2026-02-27&to=2026-03-01&dead=&q=")
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("query", "shown"), [("job_name=nightly-report", 2), ("job_name=NIGHTLY", 2), ("job_name=other", 0)]
)
def test_the_executions_page_filters_by_job_name(owner_client, runs, query, shown):
    body = owner_client.get(f"/executions/?{query}").content.decode()
    assert body.count('aria-label="Run ') == shown  # one per row (the page has no total: issue 11)


def test_the_executions_page_filters_by_date(owner_client, runs, now):
    body = owner_client.get(f"/executions/?from={now:%Y-%m-%d}&to={now:%Y-%m-%d}&job_name=nightly").content.decode()
    assert body.count('aria-label="Run ') == 1
