"""User text is text: a job named <img src=x onerror=alert(1)>, with such args, output and
errors, never reaches a page, a fragment or a toast as markup."""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import XSS, client_for, htmx

ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def pages(job, execution):
    return [
        ("/", None),
        ("/", "dashboard-live"),
        ("/jobs/", None),
        ("/jobs/", "jobs-table"),
        (f"/jobs/?q={XSS}", None),
        (f"/jobs/?group={XSS}", "jobs-table"),
        (f"/jobs/{job.pk}/", None),
        (f"/jobs/{job.pk}/", "job-summary"),
        (f"/jobs/{job.pk}/", "job-history"),
        (f"/jobs/{job.pk}/", "job-next-runs"),
        (f"/jobs/{job.pk}/edit/", None),
        (f"/jobs/{job.pk}/edit/", "job-form-area"),
        (f"/jobs/{job.pk}/delete/", None),
        ("/executions/", None),
        ("/executions/", "executions-table"),
        (f"/executions/?q={XSS}", None),
        (f"/executions/{execution.pk}/", None),
        (f"/executions/{execution.pk}/", "execution-summary"),
        ("/dead-letters/", None),
        ("/dead-letters/", "dead-letters-table"),
        ("/calendar/", None),
        ("/calendar/", "calendar-grid"),
        ("/calendar/2099-01-01/", "day-panel"),
        ("/scheduler/", None),
        (f"/jobs/task/?task={XSS}", None),
        (f"/jobs/task/?task={XSS}", "task-info"),
    ]


@pytest.mark.django_db
def test_hostile_text_is_escaped_on_every_page_and_fragment(hostile_job, owner):
    job, execution = hostile_job
    client = client_for(owner)
    for url, target in pages(job, execution):
        response = client.get(url, **(htmx(target) if target else {}))
        assert response.status_code == 200, (url, target)
        body = response.content.decode()
        assert "<img src=x" not in body, (url, target)
        assert "onerror=alert(1)>" not in body.replace(ESCAPED, ""), (url, target)
    detail = client.get(f"/jobs/{job.pk}/").content.decode()
    assert detail.count(ESCAPED) >= 2  # the name and the description
    run = client.get(f"/executions/{execution.pk}/").content.decode()
    assert run.count(ESCAPED) >= 4  # result, output, error, traceback


@pytest.mark.django_db
def test_hostile_text_in_the_job_form_and_its_preview_is_escaped(hostile_job, owner):
    client = client_for(owner)
    data = {
        "name": XSS,
        "task": XSS,
        "timezone": XSS,
        "args": XSS,
        "kwargs": XSS,
        "group": XSS,
        "tags": XSS,
        "triggers-TOTAL_FORMS": 1,
        "triggers-INITIAL_FORMS": 0,
        "triggers-0-kind": "cron",
        "triggers-0-cron_expression": XSS,
        "_source": "triggers-0-cron_expression",
    }
    for url, target in [
        ("/jobs/new/", None),
        ("/jobs/new/", "job-form-area"),
        ("/jobs/preview/", "preview"),
        ("/jobs/preview/", None),
    ]:
        body = client.post(url, data, **(htmx(target) if target else {})).content.decode()
        assert "<img src=x" not in body, (url, target)


@pytest.mark.django_db
def test_toasts_carry_hostile_names_as_json_text(hostile_job, owner):
    job, _ = hostile_job
    response = client_for(owner).post(f"/jobs/{job.pk}/run/", **htmx())
    events = json.loads(response["HX-Trigger"])
    assert XSS in events["toast"]["message"]  # app.js writes it with textContent
    assert "<" not in response["HX-Trigger"]  # and the header itself holds no raw markup


@pytest.mark.django_db
def test_messages_after_a_redirect_are_escaped(hostile_job, owner):
    job, _ = hostile_job
    client = client_for(owner)
    client.post(f"/jobs/{job.pk}/pause/")
    body = client.get("/jobs/").content.decode()
    assert "Paused " + ESCAPED in body and "<img src=x" not in body
