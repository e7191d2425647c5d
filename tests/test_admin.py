"""The Django admin: pages render, saves go through services, actions report what they did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from scheduler_app import services
from scheduler_app.admin.display import status_badge
from scheduler_app.models import Calendar, Execution, Job, SchedulerNode, SchedulerState, Trigger

pytestmark = [
    pytest.mark.django_db,
    # WhiteNoise notes that STATIC_ROOT is absent; tests do not run collectstatic.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

XSS = "<img src=x onerror=alert(1)>"


def changelist(model) -> str:
    return reverse(f"admin:scheduler_app_{model._meta.model_name}_changelist")


def change(obj) -> str:
    return reverse(f"admin:scheduler_app_{obj._meta.model_name}_change", args=[obj.pk])


def job_form(**overrides) -> dict:
    """The job add/change form as a browser posts it, with no trigger rows."""
    data = {
        "name": "nightly-report",
        "description": "",
        "task": "tempora.sample_job",
        "args": "[]",
        "kwargs": '{"message": "hi"}',
        "group": "default",
        "tags": "[]",
        "priority": "5",
        "owner": "",
        "timezone": "Europe/London",
        "start_at_0": "",
        "start_at_1": "",
        "end_at_0": "",
        "end_at_1": "",
        "max_runs": "",
        "executor": "thread",
        "timeout": "",
        "overlap_policy": "skip",
        "max_instances": "1",
        "misfire_grace_time": "60",
        "catch_up": "once",
        "max_retries": "0",
        "retry_backoff": "30",
        "retry_backoff_max": "3600",
        "lost_policy": "auto",
    }
    data.update(rows())
    data.update(overrides)
    return data


def rows(*triggers: dict, initial: int = 0) -> dict:
    """The Trigger inline's management form and rows: rows({"kind": "cron", ...}, ...)."""
    data = {
        "triggers-TOTAL_FORMS": str(len(triggers)),
        "triggers-INITIAL_FORMS": str(initial),
        "triggers-MIN_NUM_FORMS": "0",
        "triggers-MAX_NUM_FORMS": "1000",
    }
    for index, trigger in enumerate(triggers):
        row = {
            "kind": "",
            "cron_expression": "",
            "interval_seconds": "",
            "run_at_0": "",
            "run_at_1": "",
            "jitter_seconds": "0",
            "calendar": "",
            "id": "",
            "job": "",
            **trigger,
        }
        data.update({f"triggers-{index}-{key}": value for key, value in row.items()})
    return data


def action(client, model, name: str, objects) -> list[str]:
    response = client.post(
        changelist(model), {"action": name, "_selected_action": [obj.pk for obj in objects]}, follow=True
    )
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def calendar():
    return services.calendar_create(name="UK holidays", excluded_dates=["2026-12-25"])


@pytest.fixture
def job(make_job, calendar):
    return make_job(
        name="report",
        timezone="Europe/London",
        triggers=[
            {"kind": "daily", "at": "09:00", "calendar": calendar.pk},
            {"kind": "interval", "interval_seconds": 600},
        ],
    )


@pytest.fixture
def failed_run(job, now):
    return Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now,
        run_after=now,
        status=Execution.Status.FAILED,
        started_at=now,
        finished_at=now + timedelta(seconds=3),
        error="boom",
        dead_letter=True,
        result={"rows": 3},
        output="line one\nline two",
        traceback="Traceback ...",
        worker="node-a",
    )


# Pages -----------------------------------------------------------------------------------


def test_it_titles_the_site_tempora(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Tempora" in response.content.decode()


def test_it_passes_the_system_checks():
    call_command("check", "--fail-level", "WARNING")


def test_it_renders_every_changelist_and_change_form(admin_client, job, failed_run, calendar):
    node = SchedulerNode.objects.create(name="host:1:0", hostname="host", pid=1)
    state = SchedulerState.load()
    for obj in (job, failed_run, calendar, node, state):
        assert admin_client.get(changelist(type(obj))).status_code == 200, type(obj)
        assert admin_client.get(change(obj)).status_code == 200, type(obj)
    for model in (Job, Calendar):
        assert admin_client.get(reverse(f"admin:scheduler_app_{model._meta.model_name}_add")).status_code == 200


def test_it_lists_jobs_with_schedule_next_run_and_last_status(admin_client, job):
    Job.objects.filter(pk=job.pk).update(last_status="failed")
    page = admin_client.get(changelist(Job)).content.decode()
    assert "Every day at 09:00 (Europe/London)" in page
    assert "(Europe/London)" in page and ("GMT" in page or "BST" in page)
    assert "#cf222e" in page and "Failed" in page


def test_it_shows_an_execution_result_output_and_traceback_in_pre(admin_client, failed_run):
    Execution.objects.filter(pk=failed_run.pk).update(output=XSS, result={"html": XSS})
    page = admin_client.get(change(failed_run)).content.decode()
    assert "<pre" in page and "line two" not in page
    assert "&lt;img src=x" in page and "<img src=x" not in page
    assert "Traceback ..." in page


def test_it_offers_no_add_or_edit_of_executions(admin_client, failed_run):
    assert admin_client.get(reverse("admin:scheduler_app_execution_add")).status_code == 403
    response = admin_client.post(change(failed_run), {"status": "succeeded"})
    assert response.status_code == 403
    failed_run.refresh_from_db()
    assert failed_run.status == "failed"


# Saving jobs through services -------------------------------------------------------------


@pytest.fixture
def spy(monkeypatch):
    """spy("job_create"): record calls to a service while still running it."""
    calls: dict[str, list[dict]] = {}

    def watch(name: str) -> list[dict]:
        real = getattr(services, name)

        def recorded(**kwargs):
            calls[name].append(kwargs)
            return real(**kwargs)

        calls[name] = []
        monkeypatch.setattr(services, name, recorded)
        return calls[name]

    return watch


def test_it_creates_a_job_and_its_trigger_in_one_service_call(admin_client, spy, calendar):
    calls = spy("job_create")
    data = job_form(**rows({"kind": "cron", "cron_expression": "0 9 * * MON-FRI", "calendar": str(calendar.pk)}))
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    job = Job.objects.get(name="nightly-report")
    assert len(calls) == 1 and len(calls[0]["triggers"]) == 1
    assert job.updated_at is not None and job.next_run_at is not None
    assert job.kwargs == {"message": "hi"}
    trigger = job.triggers.get()
    assert (trigger.kind, trigger.cron_expression, trigger.calendar) == ("cron", "0 9 * * MON-FRI", calendar)
    assert response.url == reverse("admin:scheduler_app_job_changelist")


def test_it_sets_the_lost_policy(admin_client):
    data = job_form(lost_policy="record", **rows({"kind": "cron", "cron_expression": "0 9 * * *"}))
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert Job.objects.get(name="nightly-report").lost_policy == "record"


def test_it_shows_a_cron_that_never_fires_as_an_inline_error(admin_client):
    data = job_form(**rows({"kind": "cron", "cron_expression": "0 0 30 2 *"}))
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), data)
    assert response.status_code == 200
    assert "never fires" in response.content.decode()
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert "never fires" in str(row.errors["cron_expression"])
    assert not Job.objects.exists() and not Trigger.objects.exists()


def test_it_shows_an_interval_without_seconds_as_an_inline_error(admin_client):
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), job_form(**rows({"kind": "interval"})))
    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert "interval_seconds" in row.errors
    assert not Job.objects.exists()


def test_it_shows_a_job_field_error_on_its_field(admin_client, make_job):
    make_job(name="taken")
    response = admin_client.post(
        reverse("admin:scheduler_app_job_add"), job_form(name="taken", task="no.such.task", timezone="Mars/Base")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert {"name", "task", "timezone"} <= set(errors)
    assert Job.objects.count() == 1


def test_it_refuses_a_timeout_above_the_maximum_on_its_field(admin_client, settings):
    settings.SCHEDULER_MAX_TIMEOUT = 60
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), job_form(timeout=61))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["timeout"] == [
        "The timeout is at most 60 seconds (SCHEDULER_MAX_TIMEOUT)."
    ]
    assert not Job.objects.exists()


def test_it_shows_a_service_refusal_as_form_errors_not_a_500(admin_client, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError(
            {"name": ["Taken a moment ago."], "triggers.0.cron_expression": ["Refused by the service."]}
        )

    monkeypatch.setattr(services, "job_create", refuse)
    data = job_form(**rows({"kind": "cron", "cron_expression": "*/5 * * * *"}))
    response = admin_client.post(reverse("admin:scheduler_app_job_add"), data)
    assert response.status_code == 200
    assert "Taken a moment ago." in str(response.context["adminform"].form.errors["name"])
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert "Refused by the service." in str(row.errors["cron_expression"])
    assert not Job.objects.exists()


def test_it_updates_a_job_and_replaces_its_triggers_through_the_service(admin_client, spy, make_job, now):
    job = make_job(name="edit-me")
    old = job.triggers.get()
    calls = spy("job_update")
    data = job_form(
        name="edit-me",
        group="reports",
        **rows(
            {"id": str(old.pk), "job": str(job.pk), "kind": "cron", "cron_expression": "*/5 * * * *", "DELETE": "on"},
            {"kind": "interval", "interval_seconds": "3600"},
            initial=1,
        ),
    )
    response = admin_client.post(change(job), data)
    assert response.status_code == 302
    assert len(calls) == 1 and [t["kind"] for t in calls[0]["triggers"]] == ["interval"]
    job.refresh_from_db()
    assert job.group == "reports" and job.updated_at > now
    assert list(job.triggers.values_list("kind", "interval_seconds")) == [("interval", 3600)]


def test_it_keeps_the_triggers_when_the_inline_is_unchanged(admin_client, spy, make_job):
    job = make_job(name="keep-me")
    old = job.triggers.get()
    calls = spy("job_update")
    data = job_form(
        name="keep-me",
        description="changed",
        **rows({"id": str(old.pk), "job": str(job.pk), "kind": "cron", "cron_expression": "*/5 * * * *"}, initial=1),
    )
    assert admin_client.post(change(job), data).status_code == 302
    assert calls[0]["triggers"] is None
    assert job.triggers.get().pk == old.pk
    job.refresh_from_db()
    assert job.description == "changed"


def test_it_keeps_a_presets_wording_while_its_cron_is_untouched(admin_client, make_job):
    job = make_job(name="daily", triggers=[{"kind": "daily", "at": "09:00"}])
    daily = job.triggers.get()
    data = job_form(
        name="daily",
        **rows(
            {"id": str(daily.pk), "job": str(job.pk), "kind": "cron", "cron_expression": "0 9 * * *"},
            {"kind": "cron", "cron_expression": "30 17 * * *"},
            initial=1,
        ),
    )
    assert admin_client.post(change(job), data).status_code == 302
    assert list(job.triggers.values_list("cron_expression", "preset")) == [("0 9 * * *", "daily"), ("30 17 * * *", "")]
    assert Job.objects.get(pk=job.pk).schedule_description().startswith("Every day at 09:00 (Europe/London)")


def test_it_deletes_a_job_through_the_service_and_keeps_its_history(admin_client, job, failed_run, now):
    pending = services.job_run_now(job=job, now=now)
    response = admin_client.post(reverse("admin:scheduler_app_job_delete", args=[job.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Job.objects.filter(pk=job.pk).exists()
    failed_run.refresh_from_db()
    pending.refresh_from_db()
    assert failed_run.job_name == "report" and pending.status == Execution.Status.CANCELLED


# Code-defined jobs ---------------------------------------------------------------------------


@pytest.fixture
def code_job(make_job):
    job = make_job(name="from-code", code_defined=True)
    return job


def test_it_makes_every_field_of_a_code_defined_job_readonly_but_paused(admin_client, code_job):
    response = admin_client.get(change(code_job))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"paused"}
    inline = response.context["inline_admin_formsets"][0]
    assert not inline.has_add_permission and not inline.has_change_permission
    assert not response.context["has_delete_permission"]


def test_it_pauses_a_code_defined_job_from_its_form(admin_client, code_job):
    trigger = code_job.triggers.get()
    data = {"paused": "on", **rows({"id": str(trigger.pk), "job": str(code_job.pk)}, initial=1)}
    response = admin_client.post(change(code_job), data)
    assert response.status_code == 302
    code_job.refresh_from_db()
    assert code_job.paused and code_job.triggers.get().pk == trigger.pk


# Escaping ------------------------------------------------------------------------------------


def test_it_escapes_user_text_on_the_changelist_and_change_form(admin_client, make_job, calendar):
    services.calendar_update(calendar=calendar, name=XSS)
    job = make_job(
        name=XSS,
        description=XSS,
        group="default",
        kwargs={"message": XSS},
        triggers=[{"kind": "cron", "cron_expression": "0 9 * * *", "calendar": calendar}],
    )
    for url in (changelist(Job), change(job), changelist(Calendar)):
        page = admin_client.get(url).content.decode()
        assert "&lt;img" in page, url
        assert "<img src=x" not in page, url


def test_it_escapes_the_text_of_a_status_badge():
    assert "&lt;img" in status_badge(XSS) and "<img" not in status_badge(XSS)


def test_it_escapes_a_code_defined_jobs_readonly_fields(admin_client, make_job):
    job = make_job(name=XSS, code_defined=True, kwargs={"message": XSS})
    page = admin_client.get(change(job)).content.decode()
    assert "&lt;img" in page and "<img src=x" not in page


# Actions -------------------------------------------------------------------------------------


def test_it_pauses_and_resumes_jobs(admin_client, job):
    assert action(admin_client, Job, "pause_jobs", [job]) == ["Paused 1 job."]
    job.refresh_from_db()
    assert job.paused
    [message] = action(admin_client, Job, "resume_jobs", [job])
    assert message.startswith("Resumed 1 job")
    job.refresh_from_db()
    assert not job.paused


def test_it_requests_a_run_now_for_the_scheduler_to_start(admin_client, job, admin_user):
    [message] = action(admin_client, Job, "run_jobs_now", [job])
    assert "the scheduler will start it" in message
    run = Execution.objects.get(job=job, reason=Execution.Reason.MANUAL)
    assert run.status == Execution.Status.SCHEDULED and run.requested_by == admin_user


def test_it_duplicates_a_job_as_a_paused_copy(admin_client, job):
    [message] = action(admin_client, Job, "duplicate_jobs", [job])
    assert "report (copy)" in message
    copy = Job.objects.get(name="report (copy)")
    assert copy.paused and copy.triggers.count() == 2


def test_it_retries_a_failed_run_and_leaves_others_alone(admin_client, failed_run, job, now):
    succeeded = Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now - timedelta(hours=1), run_after=now, status="succeeded"
    )
    [message] = action(admin_client, Execution, "retry_executions", [failed_run, succeeded])
    assert message.startswith("Queued 1 retry.") and "1 run was left alone" in message
    retry = Execution.objects.get(reason=Execution.Reason.RETRY)
    assert retry.attempt == 2 and retry.scheduled_for == failed_run.scheduled_for


def test_it_cancels_a_waiting_run(admin_client, job, failed_run):
    waiting = services.job_run_now(job=job)
    [message] = action(admin_client, Execution, "cancel_executions", [waiting, failed_run])
    assert message == "Cancelled 1 waiting run. 1 run had already finished."
    waiting.refresh_from_db()
    assert waiting.status == Execution.Status.CANCELLED


def test_it_acknowledges_dead_letters(admin_client, failed_run):
    assert action(admin_client, Execution, "acknowledge_dead_letters", [failed_run]) == ["Acknowledged 1 dead letter."]
    failed_run.refresh_from_db()
    assert failed_run.acknowledged_at is not None


def test_it_pauses_and_resumes_the_scheduler(admin_client):
    admin_client.get(changelist(SchedulerState))  # the page creates the singleton row
    state = SchedulerState.load()
    [message] = action(admin_client, SchedulerState, "pause_scheduler", [state])
    assert message.startswith("The scheduler is paused")
    assert SchedulerState.load().paused
    assert action(admin_client, SchedulerState, "resume_scheduler", [state]) == ["The scheduler is running again."]
    assert not SchedulerState.load().paused


# Calendars -----------------------------------------------------------------------------------


def test_it_creates_and_updates_a_calendar_through_the_services(admin_client, spy, job, calendar):
    created = spy("calendar_create")
    updated = spy("calendar_update")
    dates = '["2026-12-26", "2026-12-25", "2026-12-26"]'
    form = {"name": "Office", "description": "", "excluded_dates": dates, "owner": ""}
    assert admin_client.post(reverse("admin:scheduler_app_calendar_add"), form).status_code == 302
    assert len(created) == 1
    assert Calendar.objects.get(name="Office").excluded_dates == ["2026-12-25", "2026-12-26"]
    before = Job.objects.get(pk=job.pk).updated_at
    form = {"name": calendar.name, "description": "", "excluded_dates": '["2027-01-01"]', "business_days_only": "on"}
    assert admin_client.post(change(calendar), form).status_code == 302
    assert len(updated) == 1
    assert Job.objects.get(pk=job.pk).updated_at > before  # linked jobs re-plan


def test_it_refuses_dates_that_are_not_dates(admin_client):
    form = {"name": "Bad", "excluded_dates": '["25/12/2026"]', "owner": ""}
    response = admin_client.post(reverse("admin:scheduler_app_calendar_add"), form)
    assert response.status_code == 200
    assert "excluded_dates" in response.context["adminform"].form.errors
    assert not Calendar.objects.filter(name="Bad").exists()


# Query counts --------------------------------------------------------------------------------


def test_it_lists_executions_in_a_fixed_number_of_queries(admin_client, job, now, django_assert_max_num_queries):
    Execution.objects.bulk_create(
        Execution(
            job=job, job_name=job.name, scheduled_for=now - timedelta(minutes=i), run_after=now, status="succeeded"
        )
        for i in range(60)
    )
    with django_assert_max_num_queries(7):
        assert admin_client.get(changelist(Execution)).status_code == 200


def test_it_lists_jobs_in_a_fixed_number_of_queries(admin_client, make_job, calendar, django_assert_max_num_queries):
    for _ in range(30):
        make_job(
            triggers=[
                {"kind": "daily", "at": "09:00", "calendar": calendar},
                {"kind": "interval", "interval_seconds": 60},
            ]
        )
    with django_assert_max_num_queries(10):
        assert admin_client.get(changelist(Job)).status_code == 200


def test_it_keeps_the_next_run_current_after_an_admin_save(admin_client, make_job):
    job = make_job(name="soon", triggers=[])
    assert job.next_run_at is None
    data = job_form(name="soon", **rows({"kind": "interval", "interval_seconds": "60"}))
    assert admin_client.post(change(job), data).status_code == 302
    job.refresh_from_db()
    assert job.next_run_at is not None and job.next_run_at > timezone.now()
