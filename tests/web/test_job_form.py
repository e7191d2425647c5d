"""Creating and editing jobs in the console: every trigger kind, inline errors naming the
field, the live preview and the cron builder, all through triggers.py and the services."""

from __future__ import annotations

import pytest

from scheduler_app.models import Job
from scheduler_app.web import cron_builder
from tests.web.conftest import htmx


def form_data(**overrides) -> dict:
    data = {
        "name": "report",
        "task": "tempora.sample_job",
        "group": "default",
        "tags": "etl, Nightly",
        "priority": 5,
        "timezone": "Europe/Berlin",
        "max_retries": 2,
        "retry_backoff": 30,
        "retry_backoff_max": 3600,
        "overlap_policy": "skip",
        "max_instances": 1,
        "misfire_grace_time": 60,
        "catch_up": "once",
        "executor": "thread",
        "args": "[]",
        "kwargs": '{"message": "hi"}',
        "triggers-TOTAL_FORMS": 1,
        "triggers-INITIAL_FORMS": 0,
        "triggers-MIN_NUM_FORMS": 0,
        "triggers-MAX_NUM_FORMS": 20,
        "triggers-0-kind": "cron",
        "triggers-0-cron_expression": "30 9 * * 1-5",
        "triggers-0-jitter_seconds": 0,
        "triggers-0-interval_unit": "60",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trigger, expected",
    [
        ({"triggers-0-kind": "cron", "triggers-0-cron_expression": "30 9 * * 1-5"}, ("cron", "30 9 * * 1-5", "")),
        ({"triggers-0-kind": "daily", "triggers-0-at": "07:15"}, ("cron", "15 7 * * *", "daily")),
        (
            {"triggers-0-kind": "weekly", "triggers-0-at": "10:00", "triggers-0-days": ["0", "4"]},
            ("cron", "0 10 * * 1,5", "weekly"),
        ),
        ({"triggers-0-kind": "hourly", "triggers-0-minute": "45"}, ("cron", "45 * * * *", "hourly")),
        (
            {"triggers-0-kind": "interval", "triggers-0-interval_value": "5", "triggers-0-interval_unit": "60"},
            ("interval", 300, ""),
        ),
        (
            {"triggers-0-kind": "once", "triggers-0-run_at": "2099-12-25T09:00"},
            ("once", "2099-12-25 08:00:00+00:00", ""),
        ),
    ],
)
def test_it_creates_a_job_with_each_kind_of_trigger(owner_client, owner, trigger, expected):
    response = owner_client.post("/jobs/new/", form_data(**trigger))
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(name="report")
    assert job.owner == owner and job.tags == ["etl", "nightly"] and job.kwargs == {"message": "hi"}
    row = job.triggers.get()
    kind, value, preset = expected
    assert row.kind == kind and row.preset == preset
    assert {"cron": row.cron_expression, "interval": row.interval_seconds, "once": str(row.run_at)}[kind] == value
    assert response["Location"] == f"/jobs/{job.pk}/"


@pytest.mark.django_db
def test_it_sets_the_lost_policy_and_keeps_the_default_when_none_is_posted(owner_client):
    assert owner_client.post("/jobs/new/", form_data(lost_policy="record")).status_code == 302
    assert Job.objects.get(name="report").lost_policy == "record"
    assert owner_client.post("/jobs/new/", form_data(name="other")).status_code == 302
    assert Job.objects.get(name="other").lost_policy == "auto"


@pytest.mark.django_db
def test_it_shows_errors_next_to_the_field_they_name(owner_client):
    response = owner_client.post(
        "/jobs/new/",
        form_data(
            **{
                "triggers-0-cron_expression": "0 25 * * *",
                "args": "[1,",
                "timezone": "Mars/Base",
                "priority": 11,
            }
        ),
        **htmx("job-form-area"),
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "The hour field &#x27;25&#x27; is not valid" in body
    assert 'id="id_triggers-0-cron_expression_error"' in body
    assert 'aria-invalid="true"' in body
    assert "This is not valid JSON" in body and 'id="id_args_error"' in body
    assert "is not an IANA time zone name" in body and 'id="id_timezone_error"' in body
    assert 'id="id_priority_error"' in body
    assert '"level": "error"' in response["HX-Trigger"]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_it_puts_the_services_refusal_on_the_field(owner_client, make_job):
    make_job(name="taken")
    body = owner_client.post("/jobs/new/", form_data(name="taken")).content.decode()
    assert 'id="id_name_error"' in body and "already exists" in body


@pytest.mark.django_db
def test_a_timeout_above_the_maximum_is_an_inline_error(owner_client, settings):
    settings.SCHEDULER_MAX_TIMEOUT = 300
    body = owner_client.post("/jobs/new/", form_data(timeout=301)).content.decode()
    assert 'id="id_timeout_error"' in body and "The timeout is at most 300 seconds" in body
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_it_validates_arguments_with_the_models_validators(owner_client):
    body = owner_client.post("/jobs/new/", form_data(args='{"a": 1}', kwargs="[1]")).content.decode()
    assert "Args must be a JSON list" in body and "Kwargs must be a JSON object" in body


@pytest.mark.django_db
def test_editing_leaves_unchanged_triggers_alone(owner_client, job):
    trigger_id = job.triggers.get().pk
    data = form_data(
        name="renamed",
        timezone="Europe/Berlin",
        **{"triggers-INITIAL_FORMS": 1, "triggers-0-cron_expression": "0 9 * * 1-5"},
    )
    assert owner_client.post(f"/jobs/{job.pk}/edit/", data).status_code == 302
    job.refresh_from_db()
    assert job.name == "renamed" and job.triggers.get().pk == trigger_id
    data["triggers-0-cron_expression"] = "0 10 * * *"
    owner_client.post(f"/jobs/{job.pk}/edit/", data)
    assert job.triggers.get().cron_expression == "0 10 * * *"


@pytest.mark.django_db
def test_edit_shows_the_jobs_triggers_as_they_were_entered(owner_client, make_job, owner):
    job = make_job(name="weekly", owner=owner, triggers=[{"kind": "weekly", "days": [0, 2], "at": "08:30"}])
    body = owner_client.get(f"/jobs/{job.pk}/edit/").content.decode()
    assert '<option value="weekly" selected>' in body
    assert 'value="08:30"' in body


@pytest.mark.django_db
def test_removing_and_adding_triggers(owner_client, job):
    data = form_data(name=job.name, **{"triggers-INITIAL_FORMS": 1, "triggers-0-DELETE": "on"})
    assert owner_client.post(f"/jobs/{job.pk}/edit/", data).status_code == 302
    assert not job.triggers.exists()
    added = owner_client.post(f"/jobs/{job.pk}/edit/", {**data, "_add_trigger": "1"}, **htmx("job-form-area"))
    body = added.content.decode()
    assert 'name="triggers-1-kind"' in body and 'value="2"' in body
    assert "error" not in body.lower().replace("form-errors", "")


@pytest.mark.django_db
def test_a_code_defined_job_is_not_edited_here(owner_client, make_job, owner):
    job = make_job(name="from-code", owner=owner, code_defined=True)
    body = owner_client.get(f"/jobs/{job.pk}/edit/").content.decode()
    assert "defined in code" in body
    owner_client.post(f"/jobs/{job.pk}/edit/", form_data(name="changed"))
    job.refresh_from_db()
    assert job.name == "from-code"


@pytest.mark.django_db
def test_the_preview_describes_the_schedule_and_lists_the_next_runs(owner_client):
    response = owner_client.post(
        "/jobs/preview/", form_data(**{"triggers-0-cron_expression": "0 9 * * 1-5"}), **htmx("preview")
    )
    body = response.content.decode()
    assert "At 09:00, Monday through Friday (Europe/Berlin)" in body
    assert (body.count("<li>") >= 5 and "CET" in body) or "CEST" in body


@pytest.mark.django_db
def test_the_preview_reports_a_bad_expression(owner_client):
    body = owner_client.post(
        "/jobs/preview/", form_data(**{"triggers-0-cron_expression": "0 0 30 2 *"}), **htmx("preview")
    ).content.decode()
    assert "never fires" in body and "day 30 does not exist in February" in body


@pytest.mark.django_db
def test_a_picker_writes_the_expression_out_of_band(owner_client):
    data = form_data(
        **{
            "_source": "triggers-0-cb_minute_mode",
            "triggers-0-cb_minute_mode": "step",
            "triggers-0-cb_minute_step": "15",
            "triggers-0-cb_hour_mode": "specific",
            "triggers-0-cb_hour": ["9", "10", "11", "17"],
            "triggers-0-cb_day_mode": "every",
            "triggers-0-cb_month_mode": "every",
            "triggers-0-cb_weekday_mode": "specific",
            "triggers-0-cb_weekday": ["1", "2", "3", "4", "5"],
        }
    )
    body = owner_client.post("/jobs/preview/", data, **htmx("preview")).content.decode()
    assert 'id="id_triggers-0-cron_expression"' in body and 'hx-swap-oob="true"' in body
    assert 'value="*/15 9-11,17 * * 1-5"' in body
    assert "Every 15 minutes" in body


@pytest.mark.django_db
def test_the_expression_redraws_the_pickers_out_of_band(owner_client):
    data = form_data(**{"_source": "triggers-0-cron_expression", "triggers-0-cron_expression": "0 12 * JAN,JUL MON"})
    body = owner_client.post("/jobs/preview/", data, **htmx("preview")).content.decode()
    assert 'id="cb-triggers-0" hx-swap-oob="true"' in body
    assert 'name="triggers-0-cb_month" value="7" checked' in body
    assert 'name="triggers-0-cb_weekday" value="1" checked' in body


@pytest.mark.django_db
def test_the_task_field_shows_the_tasks_description_and_parameters(owner_client):
    body = owner_client.get("/jobs/task/?task=tempora.send_email", **htmx("task-info")).content.decode()
    assert "Send an email" in body and "<code>subject</code>" in body and "required" in body


@pytest.mark.django_db
def test_showing_a_task_never_runs_it(owner_client, caplog):
    owner_client.get("/jobs/task/?task=tempora.sample_job")
    assert "sample_job:" not in caplog.text


def test_the_builder_reads_and_writes_expressions():
    picks, note = cron_builder.decompose("*/5 9-17 * * MON-FRI")
    assert note == "" and picks["minute"].mode == "step" and picks["minute"].step == 5
    assert picks["hour"].values == list(range(9, 18)) and picks["weekday"].values == [1, 2, 3, 4, 5]
    assert cron_builder.compose(picks) == "*/5 9-17 * * 1-5"
    assert cron_builder.decompose("0 0 L * *")[0]["day"].mode == "custom"
    assert cron_builder.compose(cron_builder.decompose("0 0 L * *")[0]) == "0 0 L * *"
    assert cron_builder.decompose("*/10 * * * * *")[1] == "seconds"
    assert cron_builder.decompose("nonsense")[1].startswith("A cron expression has 5 fields")
    assert cron_builder.compose(cron_builder.decompose("@daily")[0]) == "0 0 * * *"
    assert cron_builder.compose(cron_builder.decompose("0 0 * * 0,7")[0]) == "0 0 * * 0"


def test_the_builder_writes_ranges_compactly():
    assert cron_builder._ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7,8"
