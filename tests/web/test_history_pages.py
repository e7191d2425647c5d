"""The console's run histories page by Newer / Older links (web/keyset.py), without a total (issue 11)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(job, now):
    """120 runs of one job, one a minute, every third failed; two share a time (the id decides)."""
    Execution.objects.bulk_create(
        Execution(
            job=job,
            job_name=job.name,
            scheduled_for=now - timedelta(minutes=min(n, 119)),
            run_after=now - timedelta(minutes=min(n, 119)),
            finished_at=now - timedelta(minutes=min(n, 119)),
            status="failed" if n % 3 == 0 else "succeeded",
            error=f"error {n}" if n % 3 == 0 else "",
            traceback="Traceback ..." if n % 3 == 0 else "",
            dead_letter=n % 3 == 0,
            reason="manual",  # not an occurrence: two may share a time
        )
        for n in range(121)
    )
    return list(Execution.objects.order_by("-scheduled_for", "-id").values_list("id", flat=True))


def walk(client, url: str, direction: str = "older_url") -> list[list[int]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        page = response.context["page"]
        pages.append([run.pk for run in page])
        link = getattr(page, direction)
        url = url.split("?")[0] + link if link else None
    return pages


def test_older_links_visit_every_run_once_newest_first(owner_client, history):
    pages = walk(owner_client, "/executions/")
    assert [len(page) for page in pages] == [50, 50, 21]
    assert [pk for page in pages for pk in page] == history


def test_newer_links_come_back_to_the_newest_page(owner_client, history):
    last = owner_client.get("/executions/").context["page"]
    last = owner_client.get("/executions/" + last.older_url).context["page"]
    last = owner_client.get("/executions/" + last.older_url).context["page"]
    back = walk(owner_client, "/executions/" + last.newer_url, direction="newer_url")
    assert back[-1] == history[:50]  # the newest page, full, without a Newer link
    assert [pk for page in reversed(back) for pk in page] == history[:100]


def test_the_links_keep_the_filters_and_the_page_shows_no_total(owner_client, history, job):
    body = owner_client.get(f"/executions/?reason=manual&job={job.pk}").content.decode()
    older = re.search(r'href="(\?[^"]*older=[^"]*)"', body).group(1).replace("&amp;", "&")
    assert "reason=manual" in older and f"job={job.pk}" in older
    assert "Page " not in body and " runs ·" not in body
    searched = owner_client.get("/executions/?q=error").content.decode()
    assert "Searched every run that matches the other filters." in searched


def test_a_search_says_it_looked_only_among_the_newest_runs(owner_client, history, monkeypatch):
    monkeypatch.setattr("scheduler_app.filtersets.SEARCH_WINDOW", 10)
    body = owner_client.get("/executions/?q=error").content.decode()
    assert "Searched the newest 10 runs that match the other filters" in body
    assert body.count('aria-label="Run ') == 4  # runs 0, 3, 6 and 9 of the newest ten


def test_a_page_link_edited_into_nonsense_is_a_400_that_says_so(owner_client, history):
    for url in ("/executions/?older=yesterday", "/executions/?newer=2026-03-01T00:00:00_x", "/dead-letters/?older=1"):
        response = owner_client.get(url)
        assert response.status_code == 400, url
        assert "This page link is not valid" in response.content.decode(), url


def test_a_job_page_pages_its_history(owner_client, history, job):
    pages = walk(owner_client, f"/jobs/{job.pk}/?status=failed")
    failed = list(
        Execution.objects.filter(status="failed").order_by("-scheduled_for", "-id").values_list("id", flat=True)
    )
    assert [len(page) for page in pages] == [20, 20, 1]
    assert [pk for page in pages for pk in page] == failed


def test_the_dead_letters_page_by_their_failure_time(owner_client, history):
    pages = walk(owner_client, "/dead-letters/")
    letters = Execution.objects.filter(dead_letter=True).order_by("-finished_at", "-id").values_list("id", flat=True)
    assert [len(page) for page in pages] == [41]
    assert pages[0] == list(letters)


@pytest.mark.parametrize("url", ["/executions/", "/dead-letters/", "/jobs/{job}/"])
def test_a_list_reads_neither_output_nor_traceback(owner_client, history, job, url):
    with CaptureQueriesContext(connection) as captured:
        assert owner_client.get(url.format(job=job.pk)).status_code == 200
    page_queries = [q["sql"] for q in captured.captured_queries if re.search(r"LIMIT (51|21)\b", q["sql"])]
    assert page_queries
    for sql in page_queries:
        assert '"traceback"' not in sql and '"output"' not in sql and '"result"' not in sql, sql
