"""The calendar: what it shows is true, and what it costs does not grow with the number of jobs."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler_app import triggers
from scheduler_app.models import Job, Trigger
from scheduler_app.web import calendar_runs
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db

MONTH = "/calendar/?month=2099-01"
DAY = "/calendar/2099-01-15/"


@pytest.fixture(autouse=True)
def _empty_cache():
    calendar_runs.clear_cache()
    yield
    calendar_runs.clear_cache()


def many_jobs(owner, n: int, *, cron=lambda i: f"{i % 2} 6 * * *", **fields) -> list[Job]:
    """n jobs firing daily, on 2 distinct schedules, written in bulk (the services take a second each 100)."""
    jobs = Job.objects.bulk_create(
        Job(name=f"bulk-{i:04d}", task="tempora.sample_job", owner=owner, **fields) for i in range(n)
    )
    jobs = list(Job.objects.filter(name__startswith="bulk-").order_by("name"))
    Trigger.objects.bulk_create(Trigger(job=job, kind="cron", cron_expression=cron(i)) for i, job in enumerate(jobs))
    return jobs


@pytest.fixture
def fire_times_computed(monkeypatch):
    """How many fire times the page computed, through triggers.next_runs (models and calendar alike)."""
    computed = {"n": 0}
    real = triggers.next_runs

    def counting(*args, **kwargs):
        runs = real(*args, **kwargs)
        computed["n"] += len(runs) + 1
        return runs

    monkeypatch.setattr(triggers, "next_runs", counting)
    return computed


def day_total(body: str, day: str) -> str:
    cell = body.split(f'href="/calendar/{day}/"', 1)[1].split("</a>", 1)[0]
    found = re.search(r'class="day-total">([^<]*)<', cell)
    return found.group(1) if found else ""


def test_the_month_computes_a_bounded_number_of_fire_times_whatever_the_number_of_jobs(
    owner_client, owner, fire_times_computed
):
    many_jobs(owner, 400, cron=lambda i: f"{i % 10} 6 * * *")
    body = owner_client.get(MONTH).content.decode()
    assert fire_times_computed["n"] <= calendar_runs.BUDGET + 2 * calendar_runs.CAP
    # Every job counted, none dropped: 400 daily jobs on 10 schedules run 400 times a day.
    assert day_total(body, "2099-01-15") == "400"
    assert "not counted" not in body


def test_the_month_makes_as_many_queries_for_400_jobs_as_for_4(owner_client, owner):
    many_jobs(owner, 4)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(MONTH)
    Job.objects.all().delete()
    many_jobs(owner, 400)
    calendar_runs.clear_cache()
    with CaptureQueriesContext(connection) as many:
        owner_client.get(MONTH)
    assert len(many) == len(few)


def test_a_warm_month_computes_nothing_again(owner_client, owner, fire_times_computed):
    many_jobs(owner, 40)
    owner_client.get(MONTH)
    before = fire_times_computed["n"]
    owner_client.get(MONTH)
    assert fire_times_computed["n"] == before


def test_a_job_running_more_often_than_the_cap_says_its_count_is_cut_short(owner_client, make_job, owner):
    make_job(name="every-five", owner=owner, triggers=[{"kind": "cron", "cron_expression": "*/5 * * * *"}])
    body = owner_client.get(MONTH).content.decode()
    assert day_total(body, "2099-01-15") == f"{calendar_runs.CAP}+"
    assert f"×{calendar_runs.CAP}+" in body
    day = owner_client.get(DAY, **htmx("day-panel")).content.decode()
    assert f"more than {calendar_runs.DAY_CAP} runs" in day
    assert day.count('class="time-chip"') == calendar_runs.DAY_CAP


def test_what_the_work_budget_leaves_out_is_said_not_counted(owner_client, owner, monkeypatch):
    monkeypatch.setattr(calendar_runs, "BUDGET", 30)
    many_jobs(owner, 40)
    body = owner_client.get(MONTH).content.decode()
    assert "jobs are not counted here" in body
    # Each reload counts more, from the cache, until every job is counted.
    for _ in range(10):
        body = owner_client.get(MONTH).content.decode()
    assert "not counted here" not in body and day_total(body, "2099-01-15") == "40"


def test_jobs_with_a_schedule_of_their_own_beyond_the_cap_are_said_not_counted(
    owner_client, make_job, owner, monkeypatch
):
    monkeypatch.setattr(calendar_runs, "MAX_OWN", 2)
    for n in range(3):
        make_job(name=f"interval-{n}", owner=owner, triggers=[{"kind": "interval", "interval_seconds": 3600}])
    body = owner_client.get(MONTH).content.decode()
    assert "1 more job with a schedule of its own" in body


def test_a_day_cell_names_at_most_three_jobs_and_links_the_rest(owner_client, owner):
    many_jobs(owner, 5)
    body = owner_client.get(MONTH).content.decode()
    cell = body.split('href="/calendar/2099-01-15/"', 1)[1].split("</td>", 1)[0]
    # The cell names a job of each schedule that runs that day (at most three), and counts the rest.
    named = cell.count("bulk-")
    assert 1 <= named <= 3 and f"and {5 - named} more jobs" in cell


def test_a_job_with_max_runs_counts_only_its_runs_left(owner_client, make_job, owner):
    make_job(name="three-runs", owner=owner, max_runs=3, triggers=[{"kind": "cron", "cron_expression": "0 * * * *"}])
    body = owner_client.get("/calendar/").content.decode()
    totals = [int(n.rstrip("+")) for n in re.findall(r'class="day-total">([^<]*)<', body)]
    assert sum(totals) == 3


def test_a_broken_job_degrades_only_its_own_row(owner_client, make_job, owner):
    make_job(name="healthy", owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 6 * * *"}])
    broken = make_job(name="corrupt-cron", owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 7 * * *"}])
    lost_zone = make_job(name="lost-zone", owner=owner, triggers=[{"kind": "cron", "cron_expression": "0 8 * * *"}])
    # Rows changed outside the services.
    Trigger.objects.filter(job=broken).update(cron_expression="61 * * * *")
    Job.objects.filter(pk=lost_zone.pk).update(timezone="Mars/Olympus")
    response = owner_client.get(MONTH)
    assert response.status_code == 200
    body = response.content.decode()
    notice = body.split("Schedule cannot be computed", 1)[1].split("</p>", 1)[0]
    assert "corrupt-cron" in notice and "lost-zone" in notice and "healthy" not in notice
    assert day_total(body, "2099-01-15") == "1"
    day = owner_client.get(DAY, **htmx("day-panel"))
    assert day.status_code == 200
    text = day.content.decode()
    assert "Schedule cannot be computed" in text and "2099-01-15 06:00:00 UTC" in text


def test_the_day_panel_pages_through_the_jobs_that_may_run(owner_client, owner, monkeypatch):
    from scheduler_app.web.views import calendar

    monkeypatch.setattr(calendar, "DAY_PAGE", 2)
    many_jobs(owner, 3)
    first = owner_client.get(DAY, **htmx("day-panel")).content.decode()
    assert "bulk-0000" in first and "bulk-0002" not in first and "Jobs 1–2 of the 3" in first
    second = owner_client.get(DAY + "?page=2", **htmx("day-panel")).content.decode()
    assert "bulk-0002" in second


def test_the_grid_counts_in_the_viewers_zone(owner_client, make_job, owner):
    # 23:30 UTC on the 14th is 00:30 on the 15th in Berlin.
    make_job(name="late", owner=owner, triggers=[{"kind": "once", "run_at": "2099-01-14T23:30:00Z"}])
    owner_client.cookies["tempora_tz"] = "Europe/Berlin"
    body = owner_client.get(MONTH).content.decode()
    assert day_total(body, "2099-01-15") == "1" and day_total(body, "2099-01-14") == ""
