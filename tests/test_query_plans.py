"""The run-history lists read a page from an index in their order, at any history size (issue 11).

Each list page is requested as the console and the API serve it; every query it sends for its
rows (the ones with the page's LIMIT) is EXPLAINed, and the plan must walk the intended index
and sort nothing: no "USE TEMP B-TREE" on SQLite, no Sort node on PostgreSQL (with sequential
scans and sorts priced out, as they would be at ten million rows). A plan that sorts costs time in
proportion to the history, which is what made these pages slow.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db

# A page of 50 (20 on a job's page) is read as LIMIT 51 (21): one more tells whether there is a next page.
PAGE_LIMITS = re.compile(r"LIMIT (51|21)\b|LIMIT 1 OFFSET")


@pytest.fixture
def history(make_job, owner, django_user_model):
    """A little history for two owners; the plans are what matter, not the rows."""
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    other = django_user_model.objects.create_user("other")
    mine, theirs = make_job(name="mine", owner=owner), make_job(name="theirs", owner=other)
    now = timezone.now()
    Execution.objects.bulk_create(
        Execution(
            job=job,
            job_name=job.name,
            scheduled_for=now - timedelta(minutes=n),
            run_after=now - timedelta(minutes=n),
            started_at=now - timedelta(minutes=n),
            finished_at=now - timedelta(minutes=n, seconds=-1),
            status="failed" if n % 3 == 0 else "succeeded",
            error="ValueError: malformed" if n % 3 == 0 else "",
            dead_letter=n % 6 == 0,
        )
        for n in range(160)
        for job in (mine, theirs)
    )
    if connection.vendor == "sqlite":
        # SQLite's planner knows the tables' sizes, as in production. PostgreSQL's is left with its
        # default estimates (an equality matches 0.5 %), which is how a status or a job selects at
        # ten million runs; analysed, these few rows (a third failed, half one job's) make walking
        # the plain order index and filtering just as good.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"admin": admin, "owner": owner, "job": mine}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _page_queries(client, url: str) -> list[tuple[str, tuple]]:
    """The SQL (with parameters) of the row queries `url` sends; the page must answer 200."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    found = [
        (query["sql"], query.get("params") or ())
        for query in captured.captured_queries
        if '"scheduler_app_execution"' in query["sql"] and PAGE_LIMITS.search(query["sql"])
    ]
    assert found, f"no page query seen for {url}"
    return found


def _plan(sql: str) -> str:
    """The database's plan for `sql` as sent (captured SQL has its parameters inlined)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        # A few hundred rows: priced as they are, a sequential scan and a sort are cheapest. Priced
        # out, as ten million rows price them, the plan sorts only if no index serves the order.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def _sorts(plan: str) -> bool:
    if connection.vendor == "sqlite":
        return "TEMP B-TREE" in plan
    return bool(re.search(r"(^|\s|>)Sort\b", plan, re.MULTILINE)) or "Incremental Sort" in plan


def _older(client, url: str) -> str:
    """The Older link of a console list (its keyset page)."""
    page = client.get(url).context["page"]
    assert page.older_url, "the list needs a second page"
    return url.split("?")[0] + page.older_url


def _next(client, url: str) -> str:
    body = client.get(url).json()
    assert body["next"], "the list needs a second page"
    return body["next"]


CASES = [
    # (role, url, the index its page query must walk)
    ("admin", "/executions/", "execution_recent"),
    ("owner", "/executions/", "execution_recent"),
    ("admin", "/executions/?status=failed", "execution_status_recent"),
    ("owner", "/executions/?status=failed", "execution_status_recent"),
    ("admin", "/executions/?q=malformed", "execution_recent"),
    ("owner", "/executions/?q=malformed", "execution_recent"),
    ("admin", "/dead-letters/", "execution_dead_letters"),
    ("owner", "/dead-letters/", "execution_dead_letters"),
    ("owner", "/jobs/{job}/", "execution_job_history"),
    ("owner", "/jobs/{job}/?status=failed", "execution_job_history"),
    ("admin", "/api/executions/", "execution_recent"),
    ("owner", "/api/executions/", "execution_recent"),
    ("admin", "/api/executions/?status=failed", "execution_status_recent"),
    ("owner", "/api/executions/?status=failed", "execution_status_recent"),
    ("admin", "/api/executions/?search=malformed", "execution_recent"),
    ("owner", "/api/jobs/{job}/executions/", "execution_job_history"),
    ("admin", "/api/dead-letters/", "execution_dead_letters"),
]


@pytest.mark.parametrize(("role", "url", "index"), CASES)
def test_a_list_page_walks_its_index_without_sorting(history, role, url, index):
    client = _client(history[role])
    url = url.format(job=history["job"].pk)
    for sql, _params in _page_queries(client, url):
        plan = _plan(sql)
        assert index in plan, f"{url}: expected {index}\n{sql}\n{plan}"
        assert not _sorts(plan), f"{url} sorts:\n{sql}\n{plan}"


@pytest.mark.parametrize(
    ("role", "url", "index"),
    [
        ("admin", "/executions/", "execution_recent"),
        ("owner", "/executions/?status=failed", "execution_status_recent"),
        ("owner", "/jobs/{job}/", "execution_job_history"),
    ],
)
def test_an_older_page_starts_from_its_place_in_the_index(history, role, url, index):
    client = _client(history[role])
    older = _older(client, url.format(job=history["job"].pk))
    for sql, _params in _page_queries(client, older):
        plan = _plan(sql)
        assert index in plan and not _sorts(plan), f"{older}:\n{sql}\n{plan}"


@pytest.mark.parametrize(
    ("url", "index"),
    [
        ("/api/executions/?page_size=50", "execution_recent"),
        ("/api/executions/?status=failed&page_size=20", "execution_status_recent"),
    ],
)
def test_an_api_cursor_page_starts_from_its_place_in_the_index(history, url, index):
    client = _client(history["admin"])
    following = _next(client, url)
    for sql, _params in _page_queries(client, following):
        plan = _plan(sql)
        assert index in plan and not _sorts(plan), f"{following}:\n{sql}\n{plan}"


def test_the_lists_scope_is_the_same_runs_as_visible_to(history, outsider):
    orphan = Execution.objects.filter(job=history["job"]).first()
    Execution.objects.filter(pk=orphan.pk).update(job=None)  # a deleted job's run: only with view_job
    from django.contrib.auth.models import AnonymousUser

    anonymous = AnonymousUser()
    for user in (history["admin"], history["owner"], outsider, anonymous):
        listed = set(Execution.objects.listed_for(user).values_list("id", flat=True))
        assert listed == set(Execution.objects.visible_to(user).values_list("id", flat=True)), user


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_the_dashboards_latest_runs_are_read_newest_first_without_sorting(history, role):
    with CaptureQueriesContext(connection) as captured:
        assert _client(history[role]).get("/").status_code == 200
    latest = [q["sql"] for q in captured.captured_queries if "ORDER BY" in q["sql"] and "LIMIT 10" in q["sql"]]
    assert latest, "no latest-runs query seen"
    for sql in latest:
        plan = _plan(sql)
        assert not _sorts(plan), f"{sql}\n{plan}"
