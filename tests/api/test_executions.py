"""/api/executions/ and /api/dead-letters/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import Execution, SchedulerNode

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(make_job, owner):
    now = timezone.now()
    job = make_job(name="etl job", owner=owner, group="etl")
    other = make_job(name="mail job", owner=owner, group="mail")

    def run(j, minutes_ago, status, **fields):
        at = now - timedelta(minutes=minutes_ago)
        finished = status not in ("scheduled", "queued", "running")
        return Execution.objects.create(
            job=j,
            job_name=j.name,
            scheduled_for=at,
            run_after=at,
            status=status,
            started_at=at if status != "scheduled" else None,
            finished_at=at + timedelta(seconds=2) if finished else None,
            **fields,
        )

    return {
        "ok": run(job, 50, "succeeded", output="all rows copied", result={"rows": 10}),
        "failed": run(job, 40, "failed", error="ConnectionError: database away", traceback="Traceback ..."),
        "manual": run(other, 30, "succeeded", reason="manual"),
        "dead": run(other, 20, "timed_out", error="took too long", dead_letter=True),
        "running": run(job, 1, "running"),
        "waiting": run(job, -5, "scheduled"),
        "now": now,
    }


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_the_list_is_newest_first_without_bulky_fields(as_owner, runs):
    body = as_owner.get("/api/executions/").json()
    assert len(body["results"]) == 6 and body["next"] is None and body["previous"] is None
    assert "count" not in body  # counting ten million rows is what made the list slow (issue 11)
    assert body["results"][0]["id"] == runs["waiting"].pk
    assert "output" not in body["results"][0] and "traceback" not in body["results"][0]


def test_it_pages_by_cursor_through_every_run_once_in_order(as_owner, runs, make_job, owner):
    job = runs["ok"].job
    same_time = runs["now"] - timedelta(minutes=60)
    for attempt in range(1, 4):  # ties on scheduled_for: the id decides
        Execution.objects.create(
            job=job, job_name=job.name, scheduled_for=same_time, run_after=same_time, attempt=attempt, status="failed"
        )
    expected = list(Execution.objects.order_by("-scheduled_for", "-id").values_list("id", flat=True))
    seen, url = [], "/api/executions/?page_size=2"
    while url:
        body = as_owner.get(url).json()
        assert len(body["results"]) <= 2
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == expected
    back = as_owner.get(as_owner.get("/api/executions/?page_size=2").json()["next"]).json()["previous"]
    assert [row["id"] for row in as_owner.get(back).json()["results"]] == expected[:2]


@pytest.mark.parametrize("cursor", ["nonsense", "cD1ub3QtYS1kYXRl"])  # the second: a position that is not a time
def test_a_bad_cursor_is_a_400_naming_it(as_owner, runs, cursor):
    response = as_owner.get(f"/api/executions/?cursor={cursor}")
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()


def test_ordering_by_a_column_the_list_does_not_offer_is_a_400_naming_it(as_owner, runs):
    # started_at has nulls no cursor can follow, and no index serves it; answering the default
    # order instead (DRF's own behaviour) would show an order that was not asked for.
    response = as_owner.get("/api/executions/?ordering=started_at")
    assert response.status_code == 400, response.content
    assert "scheduled_for" in response.json()["ordering"][0]
    assert as_owner.get("/api/jobs/?ordering=-nonsense").json()["ordering"][0].startswith("Cannot order by -nonsense")
    assert as_owner.get("/api/executions/?ordering=-id").status_code == 200


def test_search_looks_only_among_the_newest_runs(as_owner, runs, monkeypatch):
    monkeypatch.setattr("scheduler_app.filtersets.SEARCH_WINDOW", 3)
    assert ids(as_owner.get("/api/executions/?search=too+long")) == [runs["dead"].pk]  # 4th newest
    assert ids(as_owner.get("/api/executions/?search=database")) == []  # 5th newest: outside
    # The other filters narrow the runs first: the failed ones are few, so the window reaches it.
    assert ids(as_owner.get("/api/executions/?search=database&status=failed")) == [runs["failed"].pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", ["failed"]),
        ("status=failed&status=timed_out", ["dead", "failed"]),
        ("reason=manual", ["manual"]),
        ("group=mail", ["dead", "manual"]),
        ("search=database", ["failed"]),
        ("search=rows+copied", ["ok"]),
        ("dead_letter=true", ["dead"]),
        ("ordering=scheduled_for&status=succeeded", ["ok", "manual"]),
    ],
)
def test_filters(as_owner, runs, query, expected):
    response = as_owner.get(f"/api/executions/?{query}")
    assert response.status_code == 200
    assert ids(response) == [runs[name].pk for name in expected]


def test_filter_by_job_and_date_range(as_owner, runs):
    job = runs["ok"].job
    after = (runs["now"] - timedelta(minutes=45)).isoformat()
    before = (runs["now"] - timedelta(minutes=10)).isoformat()
    response = as_owner.get("/api/executions/", {"job": job.pk, "scheduled_after": after, "scheduled_before": before})
    assert ids(response) == [runs["failed"].pk]


@pytest.mark.parametrize(
    "query", ["status=exploded", "job=abc", "scheduled_after=yesterday", "scheduled_after=9999-12-31T23:59:59-12:00"]
)
def test_bad_filter_values_are_400(as_owner, runs, query):
    assert as_owner.get(f"/api/executions/?{query}").status_code == 400


def test_retrieve_has_result_output_and_traceback(as_owner, runs):
    body = as_owner.get(f"/api/executions/{runs['failed'].pk}/").json()
    assert body["error"].startswith("ConnectionError") and body["traceback"] == "Traceback ..."
    ok = as_owner.get(f"/api/executions/{runs['ok'].pk}/").json()
    assert ok["result"] == {"rows": 10} and ok["output"] == "all rows copied" and ok["duration_seconds"] == 2.0


def test_retry_creates_the_next_attempt(as_owner, runs, owner):
    response = as_owner.post(f"/api/executions/{runs['failed'].pk}/retry/")
    assert response.status_code == 201
    retry = Execution.objects.get(pk=response.json()["id"])
    assert (retry.attempt, retry.reason, retry.status, retry.requested_by) == (2, "retry", "scheduled", owner)


def test_retrying_a_success_is_a_409(as_owner, runs):
    response = as_owner.post(f"/api/executions/{runs['ok'].pk}/retry/")
    assert response.status_code == 409
    assert "status" in response.json()


def test_cancel(as_owner, runs):
    waiting = as_owner.post(f"/api/executions/{runs['waiting'].pk}/cancel/")
    assert waiting.status_code == 200 and waiting.json()["status"] == "cancelled"
    assert waiting.json()["cancel_pending"] is False
    finished = as_owner.post(f"/api/executions/{runs['ok'].pk}/cancel/")
    assert finished.status_code == 409


def test_cancelling_a_running_run_is_accepted_and_says_cancel_requested_until_it_stops(as_owner, runs):
    # It used to answer 200 as though it were done, and the run then finished as succeeded.
    running = as_owner.post(f"/api/executions/{runs['running'].pk}/cancel/")
    assert running.status_code == 202
    body = running.json()
    assert (body["status"], body["cancel_pending"]) == ("running", True) and body["cancel_requested_at"]
    assert as_owner.get(f"/api/executions/{runs['running'].pk}/").json()["cancel_pending"] is True


def test_cancelling_a_run_whose_scheduler_is_dead_is_a_409_saying_why(as_owner, runs):
    long_ago = runs["now"] - timedelta(hours=1)
    SchedulerNode.objects.create(name="host:9:gone", hostname="host", pid=9, started_at=long_ago, last_beat_at=long_ago)
    Execution.objects.filter(pk=runs["running"].pk).update(worker="host:9:gone")
    response = as_owner.post(f"/api/executions/{runs['running'].pk}/cancel/")
    assert response.status_code == 409
    assert "its scheduler host:9:gone is not running" in response.json()["detail"]


def test_an_unknown_execution_is_a_404(as_owner, runs):
    assert as_owner.get("/api/executions/987654/").status_code == 404
    assert as_owner.get("/api/executions/99999999999999999999999/").status_code == 404


# Dead letters ----------------------------------------------------------------------------


def test_dead_letters_list_only_new_ones_unless_asked(as_owner, runs):
    assert ids(as_owner.get("/api/dead-letters/")) == [runs["dead"].pk]
    as_owner.post(f"/api/dead-letters/{runs['dead'].pk}/acknowledge/")
    assert ids(as_owner.get("/api/dead-letters/")) == []
    assert ids(as_owner.get("/api/dead-letters/?acknowledged=true")) == [runs["dead"].pk]


def test_a_failure_that_is_not_a_dead_letter_is_not_found_there(as_owner, runs):
    assert as_owner.get(f"/api/dead-letters/{runs['failed'].pk}/").status_code == 404


def test_acknowledge_and_delete_one(as_owner, runs):
    body = as_owner.post(f"/api/dead-letters/{runs['dead'].pk}/acknowledge/").json()
    assert body["acknowledged_at"]
    other = Execution.objects.create(
        job=runs["ok"].job,
        job_name="x",
        scheduled_for=runs["now"],
        run_after=runs["now"],
        status="failed",
        dead_letter=True,
    )
    assert as_owner.delete(f"/api/dead-letters/{other.pk}/").status_code == 204
    other.refresh_from_db()
    assert other.acknowledged_at is not None  # the run stays in the history


def test_retry_a_dead_letter_acknowledges_it(as_owner, runs):
    response = as_owner.post(f"/api/dead-letters/{runs['dead'].pk}/retry/")
    assert response.status_code == 201 and response.json()["attempt"] == 2
    runs["dead"].refresh_from_db()
    assert runs["dead"].acknowledged_at is not None


def test_delete_on_the_list_clears_the_queue(as_owner, runs):
    response = as_owner.delete("/api/dead-letters/")
    assert response.status_code == 200 and response.json() == {"cleared": 1}
    assert as_owner.delete("/api/dead-letters").json() == {"cleared": 0}
    assert Execution.objects.filter(pk=runs["dead"].pk).exists()
