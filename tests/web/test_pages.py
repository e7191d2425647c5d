"""Every console page answers the whole page, and the fragments it declares from the same URL."""

from __future__ import annotations

import pytest

from scheduler_app import services
from scheduler_app.models import Execution, Job
from tests.web.conftest import htmx


def page_urls(job, execution):
    return [
        ("/", ["dashboard-live"]),
        ("/jobs/", ["jobs-table"]),
        ("/jobs/new/", ["job-form-area"]),
        (f"/jobs/{job.pk}/", ["job-summary", "job-history", "job-next-runs"]),
        (f"/jobs/{job.pk}/edit/", ["job-form-area"]),
        ("/executions/", ["executions-table"]),
        (f"/executions/{execution.pk}/", ["execution-summary"]),
        ("/dead-letters/", ["dead-letters-table"]),
        ("/calendar/", ["calendar-grid"]),
        ("/calendar/2026-03-02/", ["day-panel"]),
        ("/calendars/new/", ["calendar-form"]),
        ("/scheduler/", ["scheduler-status", "scheduler-settings"]),
        ("/jobs/task/?task=tempora.sample_job", ["task-info"]),
    ]


@pytest.fixture
def execution(job, now):
    return Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now,
        run_after=now,
        status="failed",
        finished_at=now,
        error="boom",
        dead_letter=True,
    )


@pytest.mark.django_db
def test_it_renders_every_page_whole_and_each_fragment_alone(owner_client, job, execution):
    for url, fragments in page_urls(job, execution):
        page = owner_client.get(url)
        assert page.status_code == 200, url
        assert b"<html" in page.content and b'id="main"' in page.content, url
        assert "HX-Request" in page["Vary"], url
        for fragment in fragments:
            part = owner_client.get(url, **htmx(fragment))
            assert part.status_code == 200, (url, fragment)
            body = part.content.decode()
            assert "<html" not in body and 'id="main"' not in body, (url, fragment)
            assert f'id="{fragment}"' in body or fragment in ("preview",), (url, fragment)


@pytest.mark.django_db
def test_it_answers_the_whole_page_to_an_htmx_request_for_an_unknown_target(owner_client, job):
    response = owner_client.get("/jobs/", **htmx("somewhere-else"))
    assert b"<html" in response.content


@pytest.mark.django_db
def test_it_answers_the_whole_page_to_a_boosted_request(owner_client, job):
    response = owner_client.get("/jobs/", **htmx("jobs-table", HTTP_HX_BOOSTED="true"))
    assert b"<html" in response.content


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_the_login_page(client, job):
    for url in ["/", "/jobs/", f"/jobs/{job.pk}/", "/executions/", "/calendar/", "/scheduler/", "/dead-letters/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), url


@pytest.mark.django_db
def test_it_sends_an_htmx_request_without_a_session_to_the_login_page_as_a_whole_page(client):
    response = client.get("/", **htmx("dashboard-live"))
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/")


@pytest.mark.django_db
def test_it_signs_in_a_user_who_is_not_staff(client, owner):
    response = client.post("/login/", {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_it_filters_sorts_and_pages_the_jobs(owner_client, make_job, owner):
    for index in range(30):
        make_job(
            name=f"bulk-{index:02d}",
            owner=owner,
            group="bulk" if index % 2 else "other",
            tags=["even"] if index % 2 == 0 else [],
        )
    page = owner_client.get("/jobs/?group=bulk&sort=-name", **htmx("jobs-table")).content.decode()
    assert "bulk-29" in page and "bulk-28" not in page
    assert page.index("bulk-29") < page.index("bulk-27")
    assert "15 jobs" in page
    tagged = owner_client.get("/jobs/?tag=even&q=bulk-0").content.decode()
    assert "bulk-00" in tagged and "bulk-01" not in tagged
    second = owner_client.get("/jobs/?page=2").content.decode()
    assert "Page 2 of 2" in second


@pytest.mark.django_db
def test_it_filters_executions_by_status_reason_and_text(owner_client, job, now):
    Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, status="failed", error="disk full"
    )
    Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now,
        run_after=now,
        status="succeeded",
        output="all fine",
        reason="manual",
    )
    failed = owner_client.get("/executions/?status=failed").content.decode()
    assert "disk full" in failed and "all fine" not in failed
    found = owner_client.get("/executions/?q=fine&reason=manual").content.decode()
    assert found.count('aria-label="Run ') == 1  # one per row (the page has no total: issue 11)
    assert "Searched every run that matches the other filters." in found
    dated = owner_client.get("/executions/?from=2026-03-02").content.decode()
    assert 'aria-label="Run ' not in dated and "No runs yet." in dated


@pytest.mark.django_db
def test_it_shows_the_next_runs_in_the_jobs_zone_and_the_viewers(owner_client, job):
    owner_client.cookies["tempora_tz"] = "Asia/Shanghai"
    page = owner_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Europe/Berlin" in page and "Asia/Shanghai" in page
    assert "CST" in page and ("CET" in page or "CEST" in page)


@pytest.mark.django_db
def test_it_ignores_a_zone_cookie_that_is_not_a_zone(owner_client, job):
    owner_client.cookies["tempora_tz"] = "Mars/Olympus"
    assert owner_client.get("/").status_code == 200


@pytest.mark.django_db
def test_the_calendar_shows_upcoming_runs_of_a_month(owner_client, make_job, owner):
    make_job(name="monthly-close", owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 6 15 * *"}])
    page = owner_client.get("/calendar/?month=2099-01").content.decode()
    assert "monthly-close" in page and "January 2099" in page
    day = owner_client.get("/calendar/2099-01-15/", **htmx("day-panel")).content.decode()
    assert "monthly-close" in day and "2099-01-15 06:00:00 UTC" in day


@pytest.mark.django_db
def test_the_dashboard_counts_what_the_user_may_see(owner_client, job, make_job, outsider, now):
    make_job(name="not-mine", owner=outsider)
    services.job_run_now(job=job)
    page = owner_client.get("/").content.decode()
    assert 'data-stat="jobs">1<' in page
    assert "not-mine" not in page


def test_bulk_run_now_records_one_manual_run_per_ticked_job(owner_client, make_job, owner):
    ticked = [make_job(owner=owner), make_job(owner=owner)]
    make_job(owner=owner)
    response = owner_client.post("/jobs/bulk/", {"action": "run", "ids": [job.pk for job in ticked]}, follow=True)
    assert "Run requested for 2 jobs." in response.content.decode()
    assert sorted(Execution.objects.filter(reason="manual").values_list("job_id", flat=True)) == sorted(
        job.pk for job in ticked
    )


def test_bulk_delete_of_a_selection_with_a_code_defined_job_deletes_nothing_and_says_why(owner_client, make_job, owner):
    plain = make_job(owner=owner, name="alpha")  # first by name: a loop deleted it before refusing
    in_code = make_job(owner=owner, name="zulu-from-code")
    Job.objects.filter(pk=in_code.pk).update(code_defined=True)
    response = owner_client.post(
        "/jobs/bulk/", {"action": "delete", "confirm": "yes", "ids": [plain.pk, in_code.pk]}, **htmx()
    )
    assert response.status_code == 204
    assert (
        "zulu-from-code" in response.headers["HX-Trigger"] and "Nothing was deleted" in response.headers["HX-Trigger"]
    )
    assert Job.objects.filter(pk__in=[plain.pk, in_code.pk]).count() == 2


@pytest.mark.django_db
def test_the_dashboard_chart_counts_each_finished_run_in_its_hour(make_job, now):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from scheduler_app import statistics, tallies
    from scheduler_app.web import stats

    job = make_job()
    for status, ago in [("succeeded", 30), ("failed", 40), ("timed_out", 90), ("succeeded", 25 * 60), ("skipped", 10)]:
        at = now - timedelta(minutes=ago)
        Execution.objects.create(
            job=job, job_name=job.name, scheduled_for=at, run_after=at, finished_at=at, status=status
        )
    for counted in (False, True):  # the runs read raw, then counted into the tallies by the fold
        if counted:
            assert tallies.fold_all(now=now) == 5
        figures = statistics.Tallied.everyone(now=now + timedelta(minutes=5))
        bars = stats.runs_per_hour(figures, ZoneInfo("Asia/Kolkata"))
        assert len(bars) == 24
        # 10:00, 11:00 and the current 12:00 hour (UTC); skipped runs are not drawn.
        assert [(bar.succeeded, bar.failed) for bar in bars[-3:]] == [(0, 1), (1, 1), (0, 0)]
        assert sum(bar.succeeded for bar in bars) == 1  # the run 25 hours ago is outside the chart
        assert bars[-1].label == "17"  # 12:00 UTC is 17:30 IST: labelled by its local hour
        assert bars[-1].title.endswith("IST")


@pytest.mark.parametrize("url", ["/", "/jobs/", "/executions/", "/dead-letters/"])
def test_a_list_page_costs_the_same_queries_for_three_jobs_as_for_twelve(owner_client, make_job, owner, now, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def add_jobs(count: int) -> None:
        for _ in range(count):
            job = make_job(owner=owner, triggers=[{"kind": "cron", "cron_expression": "*/5 * * * *"}])
            Execution.objects.create(
                job=job,
                job_name=job.name,
                scheduled_for=now,
                run_after=now,
                finished_at=now,
                status="failed",
                dead_letter=True,
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(url).status_code == 200
        return len(captured)

    add_jobs(3)
    queries()  # the first request also creates the scheduler's state row
    few = queries()
    add_jobs(9)
    assert queries() == few  # no query per row
