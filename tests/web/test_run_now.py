"""The job page's "Run now with other arguments": the run records them and the run's page shows
them; arguments that do not fit the task are refused, naming the field, and nothing is run."""

from __future__ import annotations

import pytest

from scheduler_app.models import Execution
from tests.web.conftest import htmx

pytestmark = pytest.mark.django_db


def test_the_job_page_offers_to_run_with_other_arguments(owner_client, job):
    body = owner_client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Run now with other arguments" in body and 'name="kwargs"' in body


def test_running_with_other_keyword_arguments_records_them(owner_client, job):
    response = owner_client.post(f"/jobs/{job.pk}/run/", {"args": "", "kwargs": '{"message": "just once"}'})
    assert response.status_code == 302
    execution = Execution.objects.get(job=job)
    assert (execution.args, execution.kwargs) == (None, {"message": "just once"})
    page = owner_client.get(f"/executions/{execution.pk}/").content.decode()
    assert "given to this run" in page and "just once" in page


def test_the_run_buttons_without_arguments_use_the_jobs_own(owner_client, job):
    owner_client.post(f"/jobs/{job.pk}/run/")
    execution = Execution.objects.get(job=job)
    assert (execution.args, execution.kwargs) == (None, None)
    assert "the job's own" in owner_client.get(f"/executions/{execution.pk}/").content.decode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"kwargs": '{"message": '}, "not valid JSON"),
        ({"kwargs": '{"mesage": "typo"}'}, "do not fit the task"),
        ({"args": '{"a": 1}'}, "Args must be a JSON list"),
    ],
)
def test_arguments_that_do_not_fit_are_refused_and_nothing_runs(owner_client, job, data, words):
    response = owner_client.post(f"/jobs/{job.pk}/run/", data, **htmx())
    assert response.status_code == 204
    assert words in response["HX-Trigger"] and '"level": "error"' in response["HX-Trigger"]
    assert not Execution.objects.exists()
