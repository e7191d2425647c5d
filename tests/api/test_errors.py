"""Errors and input: oversized bodies are 413, writes are throttled, and no input is a 500."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from scheduler_app.models import Job

pytestmark = pytest.mark.django_db


def test_an_oversized_body_is_a_413(as_owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = {"name": "big", "task": "tempora.sample_job", "description": "x" * 5000}
    response = as_owner.post("/api/jobs/", body, format="json")
    assert response.status_code == 413
    assert "limit is 2048" in response.json()["detail"]
    assert not Job.objects.exists()


def test_an_oversized_body_is_a_413_on_every_kind_of_endpoint(as_owner, owned_job, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    padding = json.dumps({"pad": "x" * 4096})
    for path in (f"/api/jobs/{owned_job.pk}/pause/", "/api/schedules/preview", "/scheduler/api/jobs", "/api/tokens/"):
        response = as_owner.generic("POST", path, padding, content_type="application/json")
        assert response.status_code == 413, path


def test_an_oversized_body_of_any_type_is_a_413(as_owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = as_owner.post("/api/calendars/", {"name": "x" * 4000}, format="multipart")
    assert response.status_code == 413


def test_the_api_speaks_json(as_owner):
    response = as_owner.post("/api/calendars/", {"name": "holidays"}, format="multipart")
    assert response.status_code == 415


def test_json_nested_too_deeply_is_a_400(as_owner):
    body = "[" * 100_000 + "]" * 100_000
    response = as_owner.generic("POST", "/api/jobs/", body, content_type="application/json")
    assert response.status_code in (400, 413)
    deep = json.dumps({"name": "d", "task": "tempora.sample_job", "args": [json.loads("[" * 80 + "]" * 80)]})
    response = as_owner.generic("POST", "/api/jobs/", deep, content_type="application/json")
    assert response.status_code == 400 and "args" in response.json()


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"name": "x", "task": "tempora.sample_job", "args": [NaN]}',
        '{"name": "x", "task": "tempora.sample_job", "kwargs": {"a\\u0000b": 1}}',
        '{"name": "x", "task": "tempora.sample_job", "args": ["\\ud800"]}',
        '{"name": "\\ud800", "task": "tempora.sample_job"}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": "daily"}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": [null]}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": [{"kind": "once", "run_at": 12}]}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": [{"kind": "weekly", "days": ["mon"], "at": "10:00"}]}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": [{"kind": "interval", "interval_seconds": 1e400}]}',
        '{"name": "x", "task": "tempora.sample_job", "triggers": [{"kind": "interval", "interval_seconds": 99999999999999999999}]}',
        '{"name": "x", "task": "tempora.sample_job", "start_at": "9999-12-31T23:59:59-12:00"}',
        '{"name": "x", "task": "tempora.sample_job", "max_runs": -1}',
        '{"name": "x", "task": ["tempora.sample_job"]}',
        "[]",
        '"a string"',
    ],
)
def test_malformed_job_input_is_a_400(as_owner, body):
    response = as_owner.generic("POST", "/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize(
    "query",
    [
        "search=%00",
        "group=%00",
        "ordering=nonsense",
        "page=999",
        "page=abc",
        "page_size=-1",
        "tag=%00",
        "search=" + "a+" * 300,
    ],
)
def test_odd_query_strings_never_fail(as_owner, owned_job, query):
    response = as_owner.get(f"/api/jobs/?{query}")
    assert response.status_code in (200, 400, 404), response.content


def test_odd_compat_input_never_fails(as_owner, owned_job):
    assert as_owner.get("/scheduler/api/jobs/job_99999999999999999999999").status_code == 404
    assert as_owner.get("/scheduler/api/jobs/%00").status_code == 404
    assert as_owner.get("/scheduler/api/history?limit=-3").status_code == 400
    assert as_owner.get("/scheduler/api/groups/%00/jobs").status_code == 200
    assert as_owner.delete("/scheduler/api/groups/" + "g" * 300).status_code == 200


# Throttling ------------------------------------------------------------------------------------


def test_writes_are_throttled_per_user_and_reads_are_not(owner, outsider, owned_job, settings):
    settings.TEMPORA = {**settings.TEMPORA, "API_WRITE_THROTTLE": "3/minute"}
    mine, theirs = APIClient(), APIClient()
    mine.force_authenticate(owner)
    theirs.force_authenticate(outsider)
    codes = [mine.post(f"/api/jobs/{owned_job.pk}/pause/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = mine.post(f"/api/jobs/{owned_job.pk}/pause/")
    assert int(throttled["Retry-After"]) > 0
    assert mine.get("/api/jobs/").status_code == 200  # reads are not counted
    assert theirs.post("/api/tokens/", {"name": "x"}, format="json").status_code == 201  # per user
    assert mine.post("/scheduler/api/jobs/job_1/pause").status_code == 429  # the compat API counts too


def test_an_id_beyond_the_database_range_is_a_400(as_owner, owned_job):
    assert as_owner.delete("/api/dead-letters/?job=115373431317214281728").status_code == 400
    assert as_owner.get("/api/executions/?job=-1").status_code == 400


def test_a_bad_search_term_names_search(as_owner, owned_job):
    response = as_owner.get("/api/calendars/?search=a%00b")
    assert response.status_code == 400 and "search" in response.json()


def test_an_offset_postgresql_refuses_is_still_an_instant(as_owner, owned_job):
    # Python accepts +23:22; PostgreSQL's range ends at ±15:59.
    response = as_owner.get("/api/executions/", {"scheduled_before": "0164-07-17T15:01:26+23:22"})
    assert response.status_code == 200
