"""The console's job creation and duplication count against the API's per-user write rate
(API_WRITE_THROTTLE): one limit, one count, whichever interface the writes come from."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from scheduler_app.models import Job
from tests.web.conftest import client_for, htmx
from tests.web.test_job_form import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def rate(settings):
    settings.TEMPORA = {**settings.TEMPORA, "API_WRITE_THROTTLE": "3/minute"}


def create(client, name: str, **headers):
    return client.post("/jobs/new/", form_data(name=name), **headers)


def toast(response) -> dict:
    return json.loads(response["HX-Trigger"])["toast"]


def test_console_creates_past_the_rate_are_refused_with_when_to_retry(owner, rate):
    client = client_for(owner)
    assert [create(client, f"job-{n}").status_code for n in range(3)] == [302, 302, 302]
    refused = create(client, "one-too-many")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    body = refused.content.decode()
    assert "Too many changes in a short time" in body and f"{refused['Retry-After']} seconds" in body
    assert 'value="one-too-many"' in body  # the form comes back as typed
    assert not Job.objects.filter(name="one-too-many").exists()


def test_a_throttled_htmx_create_answers_the_form_with_the_error_and_a_toast(owner, rate):
    client = client_for(owner)
    for n in range(3):
        create(client, f"job-{n}", **htmx("job-form-area"))
    refused = create(client, "one-too-many", **htmx("job-form-area"))
    assert refused.status_code == 429
    assert "<html" not in refused.content.decode() and "Too many changes" in refused.content.decode()
    assert toast(refused)["level"] == "error" and "Too many changes" in toast(refused)["message"]
    assert not Job.objects.filter(name="one-too-many").exists()


def test_api_and_console_writes_share_one_count(owner, make_job, rate):
    job = make_job(owner=owner)
    api = APIClient()
    api.force_authenticate(owner)
    assert api.post(f"/api/jobs/{job.pk}/pause/").status_code == 200
    assert api.post(f"/api/jobs/{job.pk}/resume/").status_code == 200
    console = client_for(owner)
    assert create(console, "third-write").status_code == 302
    assert create(console, "fourth-write").status_code == 429
    assert api.post(f"/api/jobs/{job.pk}/pause/").status_code == 429


def test_a_throttled_duplicate_is_refused_and_copies_nothing(owner, make_job, rate):
    job = make_job(name="original", owner=owner)
    client = client_for(owner)
    for _ in range(3):
        assert client.post(f"/jobs/{job.pk}/duplicate/", **htmx()).status_code == 200
    refused = client.post(f"/jobs/{job.pk}/duplicate/", **htmx())
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many changes" in toast(refused)["message"]
    assert Job.objects.filter(name__startswith="original").count() == 4
    plain = client.post(f"/jobs/{job.pk}/duplicate/")
    assert plain.status_code == 429 and "Too many changes" in plain.content.decode()
    assert Job.objects.filter(name__startswith="original").count() == 4


def test_the_rate_is_per_user(owner, outsider, rate):
    mine, theirs = client_for(owner), client_for(outsider)
    for n in range(4):
        create(mine, f"mine-{n}")
    assert create(theirs, "theirs").status_code == 302


def test_editing_the_form_without_saving_does_not_count(owner, rate):
    client = client_for(owner)
    for _ in range(5):
        assert client.post("/jobs/new/", {**form_data(name="draft"), "_add_trigger": "1"}).status_code == 200
        assert client.post("/jobs/preview/", form_data(name="draft"), **htmx("preview")).status_code == 200
    assert create(client, "saved").status_code == 302
