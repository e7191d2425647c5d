"""A job's field bounds are the model's: the console's form, the API and the admin refuse the
same out-of-range value with the same bound, on the field it names."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduler_app.models import Job
from tests.api.conftest import _client
from tests.test_admin import job_form as admin_job_form
from tests.web.conftest import client_for
from tests.web.test_job_form import form_data as console_job_form

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]

# (field, the first value out of range, the bound as Django and DRF word it)
OUT_OF_RANGE = [
    ("priority", 11, "less than or equal to 10"),
    ("priority", 0, "greater than or equal to 1"),
    ("max_retries", 101, "less than or equal to 100"),
    ("retry_backoff", 7 * 86_400 + 1, "less than or equal to 604800"),
    ("retry_backoff_max", 0, "greater than or equal to 1"),
    ("retry_backoff_max", 7 * 86_400 + 1, "less than or equal to 604800"),
    ("max_instances", 1001, "less than or equal to 1000"),
    ("misfire_grace_time", 0, "greater than or equal to 1"),
    ("misfire_grace_time", 7 * 86_400 + 1, "less than or equal to 604800"),
    ("max_runs", 2_000_000_001, "less than or equal to 2000000000"),
]


def _as_text(messages) -> str:
    return " ".join(str(message) for message in messages)


@pytest.mark.parametrize("field, value, bound", OUT_OF_RANGE)
def test_the_api_refuses_it_naming_the_field(owner, field, value, bound):
    body = {"name": "report", "task": "tempora.sample_job", "kwargs": {"message": "hi"}, field: value}
    response = _client(owner).post("/api/jobs/", body, format="json")
    assert response.status_code == 400, response.json()
    assert bound in _as_text(response.json()[field])
    assert not Job.objects.exists()


@pytest.mark.parametrize("field, value, bound", OUT_OF_RANGE)
def test_the_console_form_refuses_it_next_to_the_field(owner, field, value, bound):
    response = client_for(owner).post("/jobs/new/", console_job_form(**{field: value}))
    assert response.status_code == 200
    assert bound in _as_text(response.context["form"].errors[field])
    assert not Job.objects.exists()


@pytest.mark.parametrize("field, value, bound", OUT_OF_RANGE)
def test_the_admin_refuses_it_on_the_field(admin_client, field, value, bound):
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), admin_job_form(**{field: str(value)}))
    assert response.status_code == 200
    assert bound in _as_text(response.context["adminform"].form.errors[field])
    assert not Job.objects.exists()


def test_the_database_refuses_more_retries_than_the_bound(make_job):
    from django.db import IntegrityError, transaction

    job = make_job(name="many-retries")
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(max_retries=101)
