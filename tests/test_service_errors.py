"""The services are the one check of a job and its triggers; one helper (services/errors.py)
puts their errors where each interface shows them: `triggers.<i>.<field>` is the i-th
trigger's field in the API's nested errors, on the console's and on the admin's row forms."""

from __future__ import annotations

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.urls import reverse

from scheduler_app import triggers
from scheduler_app.models import Job
from scheduler_app.services.errors import ErrorPlaces
from tests.api.conftest import _client, fastscheduler_tasks  # noqa: F401  (a fixture)
from tests.test_admin import job_form as admin_job_form
from tests.test_admin import rows as admin_rows
from tests.web.conftest import client_for
from tests.web.test_job_form import form_data as console_job_form

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:No directory at:UserWarning")]

BAD_CRON = "0 25 * * *"


def _why(expression: str) -> str:
    with pytest.raises(triggers.ScheduleError) as excinfo:
        triggers.parse_cron(expression)
    return excinfo.value.message


def test_it_reads_the_keys_of_a_service_error_once():
    places = ErrorPlaces.of(
        ValidationError(
            {
                "name": ["taken"],
                NON_FIELD_ERRORS: ["no"],
                "triggers.1.cron_expression": ["bad hour"],
                "triggers.7.kind": ["?"],
            }
        )
    )
    assert places.own == {"name": ["taken"], NON_FIELD_ERRORS: ["no"]}
    assert places.drf("non_field_errors") == {
        "name": ["taken"],
        "non_field_errors": ["no"],
        "triggers": {"1": {"cron_expression": ["bad hour"]}, "7": {"kind": ["?"]}},
    }
    assert places.row_errors("triggers", 2) == ({1: {"cron_expression": ["bad hour"]}}, ["?"])
    assert ErrorPlaces.of(ValidationError("whole")).own == {NON_FIELD_ERRORS: ["whole"]}


def test_the_api_answers_the_services_trigger_error_nested_by_index(owner):
    body = {
        "name": "report",
        "task": "tempora.sample_job",
        "kwargs": {"message": "hi"},
        "triggers": [{"kind": "cron", "cron_expression": "0 9 * * *"}, {"kind": "cron", "cron_expression": BAD_CRON}],
    }
    response = _client(owner).post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"triggers": {"1": {"cron_expression": [_why(BAD_CRON)]}}}
    assert not Job.objects.exists()


def test_the_console_shows_the_services_trigger_error_on_the_second_trigger(owner):
    data = console_job_form(
        **{
            "triggers-TOTAL_FORMS": 2,
            "triggers-1-kind": "cron",
            "triggers-1-cron_expression": BAD_CRON,
            "triggers-1-jitter_seconds": 0,
            "triggers-1-interval_unit": "60",
        }
    )
    formset = client_for(owner).post("/jobs/new/", data).context["formset"]
    assert formset.forms[0].errors == {}
    assert formset.forms[1].errors == {"cron_expression": [_why(BAD_CRON)]}
    assert not Job.objects.exists()


def test_the_console_shows_trigger_errors_while_the_jobs_own_fields_are_wrong_too(owner):
    data = console_job_form(**{"triggers-0-cron_expression": BAD_CRON, "args": "[1,"})
    context = client_for(owner).post("/jobs/new/", data).context
    assert "args" in context["form"].errors
    assert context["formset"].forms[0].errors == {"cron_expression": [_why(BAD_CRON)]}


def test_the_admin_shows_the_services_trigger_error_on_its_row(admin_client):
    data = admin_job_form(
        **admin_rows(
            {"kind": "cron", "cron_expression": "0 9 * * *"},
            {"kind": "interval", "interval_seconds": "0"},
        )
    )
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), data)
    assert response.status_code == 200
    [first, second] = response.context["inline_admin_formsets"][0].formset.forms
    assert first.errors == {} and "interval_seconds" in second.errors
    assert not Job.objects.exists()


@pytest.mark.usefixtures("fastscheduler_tasks")
def test_the_fastscheduler_api_answers_a_services_refusal_in_its_own_shape(owner):
    body = {
        "func_name": "data_sync_task",
        "func_module": "dev.test_app",
        "schedule_type": "interval",
        "schedule_config": {"interval": 30, "unit": "seconds"},
        "kwargs": {"colour": "red"},
    }
    response = _client(owner).post("/scheduler/api/jobs", body, format="json")
    assert response.status_code == 400
    assert "kwargs" in response.json()["detail"] and "colour" in response.json()["detail"]
