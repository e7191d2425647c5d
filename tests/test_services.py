"""The services (scheduler_app/services/): every state change, its validation, and the database constraints behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from scheduler_app import services
from scheduler_app.models import Calendar, Execution, Job, SchedulerNode, SchedulerState, Trigger
from scheduler_app.permissions import Forbidden
from scheduler_app.registry import registry

pytestmark = pytest.mark.django_db

MARKER_TASK = "tests.test_services.write_marker"


def write_marker(path: str) -> str:
    """Write a file: proof that the task ran."""
    Path(path).write_text("ran")
    return path


@pytest.fixture
def marker_task():
    registry.register(write_marker, name=MARKER_TASK)
    yield MARKER_TASK
    registry.unregister(MARKER_TASK)


def make_execution(job: Job, **fields) -> Execution:
    """An Execution row for `job`, as the scheduler would have written it."""
    scheduled_for = fields.pop("scheduled_for", datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    fields.setdefault("run_after", scheduled_for)
    return Execution.objects.create(job=job, job_name=job.name, scheduled_for=scheduled_for, **fields)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


def counts() -> tuple[int, int]:
    return Job.objects.count(), Trigger.objects.count()


# job_create: each trigger shape ----------------------------------------------------------


def test_it_creates_a_job_with_a_cron_trigger(now):
    job = services.job_create(
        name="report",
        task="tempora.sample_job",
        now=now,
        triggers=[{"kind": "cron", "cron_expression": "0 9 * * MON-FRI"}],
    )
    trigger = job.triggers.get()
    assert (trigger.kind, trigger.cron_expression, trigger.preset) == ("cron", "0 9 * * MON-FRI", "")
    # 2026-03-01 is a Sunday: the first weekday run is Monday 09:00 UTC.
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_it_creates_a_job_with_an_interval_trigger_counted_from_now(now):
    job = services.job_create(
        name="poll", task="tempora.sample_job", now=now, triggers=[{"kind": "interval", "interval_seconds": 300}]
    )
    assert job.triggers.get().interval_seconds == 300
    assert Job.objects.get(pk=job.pk).next_run_at == now + timedelta(seconds=300)


def test_it_creates_a_one_off_job_at_an_instant(now):
    job = services.job_create(
        name="xmas", task="tempora.sample_job", now=now, triggers=[{"kind": "once", "run_at": "2026-12-25T00:00:00Z"}]
    )
    assert job.triggers.get().run_at == datetime(2026, 12, 25, tzinfo=UTC)
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 12, 25, tzinfo=UTC)


def test_it_creates_a_one_off_job_after_a_delay(now):
    job = services.job_create(
        name="soon", task="tempora.sample_job", now=now, triggers=[{"kind": "once", "delay_seconds": 60}]
    )
    assert job.triggers.get().run_at == now + timedelta(seconds=60)


def test_it_reads_a_naive_run_at_in_the_jobs_zone(now):
    job = services.job_create(
        name="london",
        task="tempora.sample_job",
        now=now,
        timezone="Europe/London",
        triggers=[{"kind": "once", "run_at": "2026-07-01 09:00:00"}],
    )
    # British Summer Time is UTC+1.
    assert job.triggers.get().run_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def test_it_compiles_a_daily_preset_to_cron_in_the_jobs_zone(now):
    job = services.job_create(
        name="daily",
        task="tempora.sample_job",
        now=now,
        timezone="America/New_York",
        triggers=[{"kind": "daily", "at": "09:00"}],
    )
    trigger = job.triggers.get()
    assert (trigger.kind, trigger.cron_expression, trigger.preset) == ("cron", "0 9 * * *", "daily")
    # 09:00 EST is 14:00 UTC (DST starts on 8 March).
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)


def test_it_compiles_a_weekly_preset_with_monday_as_day_zero(now):
    job = services.job_create(
        name="weekly", task="tempora.sample_job", now=now, triggers=[{"kind": "weekly", "days": [0, 4], "at": "10:00"}]
    )
    trigger = job.triggers.get()
    assert (trigger.cron_expression, trigger.preset) == ("0 10 * * 1,5", "weekly")
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_it_compiles_an_hourly_preset(now):
    job = services.job_create(
        name="hourly", task="tempora.sample_job", now=now, triggers=[{"kind": "hourly", "minute": 30}]
    )
    trigger = job.triggers.get()
    assert (trigger.cron_expression, trigger.preset) == ("30 * * * *", "hourly")
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_it_plans_a_job_with_several_triggers_at_the_earliest_one(now):
    job = services.job_create(
        name="both",
        task="tempora.sample_job",
        now=now,
        triggers=[{"kind": "daily", "at": "18:00"}, {"kind": "interval", "interval_seconds": 600}],
    )
    assert job.triggers.count() == 2
    assert Job.objects.get(pk=job.pk).next_run_at == now + timedelta(minutes=10)


def test_it_links_a_calendar_given_as_an_instance(now):
    calendar = services.calendar_create(name="holidays", excluded_dates=["2026-03-02"], now=now)
    job = services.job_create(
        name="workday",
        task="tempora.sample_job",
        now=now,
        triggers=[{"kind": "cron", "cron_expression": "0 9 * * MON-FRI", "calendar": calendar}],
    )
    assert job.triggers.get().calendar == calendar
    # Monday 2 March is excluded: the first run is Tuesday.
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_it_links_a_calendar_given_by_id(now):
    calendar = services.calendar_create(name="holidays", excluded_dates=["2026-03-02"], now=now)
    job = services.job_create(
        name="workday",
        task="tempora.sample_job",
        now=now,
        triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar.pk}],
    )
    assert job.triggers.get().calendar == calendar


def test_it_refuses_a_calendar_id_that_does_not_exist(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="workday",
            task="tempora.sample_job",
            now=now,
            triggers=[{"kind": "daily", "at": "09:00", "calendar": 999_999}],
        )
    assert "triggers.0.calendar" in errors_of(excinfo)


@pytest.mark.parametrize("calendar", ["abc", "²", [1], 1.5, {"id": 1}, True])
def test_it_refuses_a_malformed_calendar_id_naming_the_field(now, calendar):
    services.calendar_create(name="holidays", now=now)
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="workday",
            task="tempora.sample_job",
            now=now,
            triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar}],
        )
    assert "triggers.0.calendar" in errors_of(excinfo)


def test_it_links_a_calendar_given_by_an_id_in_a_string(now):
    calendar = services.calendar_create(name="holidays", now=now)
    job = services.job_create(
        name="workday",
        task="tempora.sample_job",
        now=now,
        triggers=[{"kind": "daily", "at": "09:00", "calendar": str(calendar.pk)}],
    )
    assert job.triggers.get().calendar == calendar


def test_it_stamps_updated_at_on_create(now):
    job = services.job_create(name="stamped", task="tempora.sample_job", now=now)
    assert Job.objects.get(pk=job.pk).updated_at == now


# job_create: validation names the field ---------------------------------------------------


def test_it_refuses_an_invalid_cron_expression_naming_the_trigger_field(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="bad", task="tempora.sample_job", now=now, triggers=[{"kind": "cron", "cron_expression": "61 * * * *"}]
        )
    assert "triggers.0.cron_expression" in errors_of(excinfo)


def test_it_names_the_index_of_the_bad_trigger(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="bad",
            task="tempora.sample_job",
            now=now,
            triggers=[{"kind": "daily", "at": "09:00"}, {"kind": "cron", "cron_expression": "0 0 30 2 *"}],
        )
    assert list(errors_of(excinfo)) == ["triggers.1.cron_expression"]


def test_it_refuses_an_unknown_time_zone(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, timezone="Mars/Olympus")
    assert "timezone" in errors_of(excinfo)


@pytest.mark.parametrize("seconds", [0, -5])
def test_it_refuses_an_interval_that_is_not_positive(now, seconds):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="bad", task="tempora.sample_job", now=now, triggers=[{"kind": "interval", "interval_seconds": seconds}]
        )
    assert "triggers.0.interval_seconds" in errors_of(excinfo)


def test_it_refuses_args_that_are_not_a_list(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, args={"a": 1})
    assert "args" in errors_of(excinfo)


def test_it_refuses_kwargs_that_are_not_a_dict(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, kwargs=["hello"])
    assert "kwargs" in errors_of(excinfo)


def test_it_refuses_an_unknown_task(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="nobody.registered.this", now=now)
    assert "task" in errors_of(excinfo)


def test_it_refuses_a_name_that_is_taken(make_job, now):
    make_job(name="report")
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="report", task="tempora.sample_job", now=now)
    assert "name" in errors_of(excinfo)


@pytest.mark.parametrize("priority", [0, 11])
def test_it_refuses_a_priority_outside_one_to_ten(now, priority):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, priority=priority)
    assert "priority" in errors_of(excinfo)


def test_it_refuses_a_timeout_above_the_maximum_naming_it(settings, now):
    settings.SCHEDULER_MAX_TIMEOUT = 600
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, timeout=601)
    assert errors_of(excinfo)["timeout"] == ["The timeout is at most 600 seconds (SCHEDULER_MAX_TIMEOUT)."]
    assert services.job_create(name="good", task="tempora.sample_job", now=now, timeout=600).timeout == 600


def test_a_job_without_a_timeout_of_its_own_gets_the_default(settings, make_job):
    settings.SCHEDULER_DEFAULT_TIMEOUT = 900
    assert (make_job().effective_timeout, make_job(timeout=30).effective_timeout) == (900, 30)


def test_it_refuses_a_window_that_ends_before_it_starts(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="bad", task="tempora.sample_job", now=now, start_at=now, end_at=now - timedelta(hours=1)
        )
    assert "end_at" in errors_of(excinfo)


def test_it_refuses_a_field_that_callers_may_not_set(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, run_count=5)
    assert "run_count" in errors_of(excinfo)


@pytest.mark.parametrize("tags", ["etl", ["ETL"], ["has space"], ["etl\n"], [1]])
def test_it_refuses_bad_tags(now, tags):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, tags=tags)
    assert "tags" in errors_of(excinfo)


def test_it_refuses_a_group_with_a_trailing_newline(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, group="nightly\n")
    assert "group" in errors_of(excinfo)


def test_it_reports_every_bad_field_at_once(now):
    with pytest.raises(ValidationError) as excinfo:
        services.job_create(
            name="bad",
            task="tempora.sample_job",
            now=now,
            timezone="Nowhere",
            args="x",
            triggers=[{"kind": "cron", "cron_expression": "nonsense"}],
        )
    assert {"timezone", "args", "triggers.0.cron_expression"} <= set(errors_of(excinfo))


def test_it_explains_a_bad_field_in_simplified_chinese_when_that_is_the_language(now):
    with translation.override("zh-hans"), pytest.raises(ValidationError) as excinfo:
        services.job_create(name="bad", task="tempora.sample_job", now=now, args="x")
    assert errors_of(excinfo)["args"] == ['位置参数必须是 JSON 列表，例如 ["hello", 3]。']
    with pytest.raises(ValidationError) as excinfo:  # English again
        services.job_create(name="bad", task="tempora.sample_job", now=now, args="x")
    assert errors_of(excinfo)["args"] == ['Args must be a JSON list, e.g. ["hello", 3].']


# Nothing half-written ------------------------------------------------------------------


def test_it_writes_nothing_when_a_trigger_is_invalid(make_job, now):
    make_job()
    before = counts()
    with pytest.raises(ValidationError):
        services.job_create(
            name="half",
            task="tempora.sample_job",
            now=now,
            triggers=[{"kind": "daily", "at": "09:00"}, {"kind": "interval", "interval_seconds": 0}],
        )
    assert counts() == before
    assert not Job.objects.filter(name="half").exists()


def test_it_writes_nothing_when_a_job_field_is_invalid(make_job, now):
    make_job()
    before = counts()
    with pytest.raises(ValidationError):
        services.job_create(
            name="half", task="tempora.sample_job", now=now, priority=99, triggers=[{"kind": "daily", "at": "09:00"}]
        )
    assert counts() == before


def test_it_keeps_the_old_triggers_when_an_update_has_an_invalid_trigger(make_job, now):
    job = make_job(triggers=[{"kind": "daily", "at": "09:00"}, {"kind": "interval", "interval_seconds": 60}])
    old = list(job.triggers.values_list("id", "kind", "cron_expression", "interval_seconds"))
    before = counts()
    with pytest.raises(ValidationError):
        services.job_update(
            job=job,
            now=now + timedelta(hours=1),
            description="changed",
            triggers=[{"kind": "cron", "cron_expression": "not cron"}],
        )
    job.refresh_from_db()
    assert counts() == before
    assert list(job.triggers.values_list("id", "kind", "cron_expression", "interval_seconds")) == old
    assert (job.description, job.updated_at) == ("", now)


def test_it_keeps_the_old_triggers_when_an_update_has_an_invalid_field(make_job, now):
    job = make_job(triggers=[{"kind": "daily", "at": "09:00"}])
    old = list(job.triggers.values_list("id", flat=True))
    with pytest.raises(ValidationError) as excinfo:
        services.job_update(job=job, now=now, timezone="Nowhere", triggers=[{"kind": "hourly", "minute": 5}])
    assert "timezone" in errors_of(excinfo)
    job.refresh_from_db()
    assert list(job.triggers.values_list("id", flat=True)) == old
    assert job.timezone == "UTC"


# job_update ----------------------------------------------------------------------------


def test_it_updates_fields(make_job, now):
    job = make_job()
    job = services.job_update(job=job, now=now, description="Nightly report", priority=9, tags=["etl"])
    job.refresh_from_db()
    assert (job.description, job.priority, job.tags) == ("Nightly report", 9, ["etl"])


def test_it_stamps_updated_at_on_update(make_job, now):
    job = make_job()
    later = now + timedelta(hours=2)
    services.job_update(job=job, now=later, description="x")
    assert Job.objects.get(pk=job.pk).updated_at == later


def test_it_replaces_all_triggers_when_triggers_are_given(make_job, now):
    job = make_job(triggers=[{"kind": "daily", "at": "09:00"}, {"kind": "hourly", "minute": 15}])
    old_ids = set(job.triggers.values_list("id", flat=True))
    services.job_update(job=job, now=now, triggers=[{"kind": "interval", "interval_seconds": 120}])
    trigger = Trigger.objects.get(job=job)
    assert trigger.id not in old_ids
    assert (trigger.kind, trigger.interval_seconds) == ("interval", 120)


def test_it_keeps_the_triggers_when_none_are_given(make_job, now):
    job = make_job()
    old = list(job.triggers.values_list("id", flat=True))
    services.job_update(job=job, now=now, description="x")
    assert list(job.triggers.values_list("id", flat=True)) == old


def test_it_recomputes_next_run_at_on_update(make_job, now):
    job = make_job(triggers=[{"kind": "daily", "at": "09:00"}])
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    services.job_update(job=job, now=now, triggers=[{"kind": "daily", "at": "18:00"}])
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def test_it_recomputes_next_run_at_when_the_zone_changes(make_job, now):
    job = make_job(triggers=[{"kind": "daily", "at": "18:00"}])
    services.job_update(job=job, now=now, timezone="Asia/Tokyo")
    # 18:00 in Tokyo (UTC+9) is 09:00 UTC, which has passed on 1 March at 12:00 UTC.
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_it_refuses_to_edit_a_code_defined_job(make_job, now):
    job = make_job(code_defined=True)
    with pytest.raises(ValidationError) as excinfo:
        services.job_update(job=job, now=now, description="edited")
    assert "code_defined" in errors_of(excinfo)
    assert Job.objects.get(pk=job.pk).description == ""


def test_it_refuses_to_replace_the_triggers_of_a_code_defined_job(make_job, now):
    job = make_job(code_defined=True)
    with pytest.raises(ValidationError) as excinfo:
        services.job_update(job=job, now=now, triggers=[{"kind": "daily", "at": "09:00"}])
    assert "code_defined" in errors_of(excinfo)


def test_it_still_pauses_a_code_defined_job_through_update(make_job, now):
    job = make_job(code_defined=True)
    services.job_update(job=job, now=now, paused=True)
    assert Job.objects.get(pk=job.pk).paused is True


# job_delete ------------------------------------------------------------------------------


def test_it_keeps_the_history_of_a_deleted_job(make_job, now):
    job = make_job(name="doomed")
    done = make_execution(job, status=Execution.Status.SUCCEEDED)
    services.job_delete(job=job, now=now)
    done.refresh_from_db()
    assert not Job.objects.filter(name="doomed").exists()
    assert (done.job_id, done.job_name, done.status) == (None, "doomed", "succeeded")


def test_it_cancels_the_pending_runs_of_a_deleted_job(make_job, now):
    job = make_job()
    waiting = make_execution(job)
    queued = make_execution(job, scheduled_for=now - timedelta(minutes=5), status=Execution.Status.QUEUED)
    services.job_delete(job=job, now=now)
    for execution in (waiting, queued):
        execution.refresh_from_db()
        assert (execution.status, execution.finished_at) == ("cancelled", now)


def test_it_deletes_the_triggers_of_a_deleted_job(make_job, now):
    job = make_job()
    services.job_delete(job=job, now=now)
    assert not Trigger.objects.exists()


def test_it_deletes_a_selection_of_jobs_and_cancels_their_pending_runs(make_job, now):
    first, second, kept = make_job(), make_job(), make_job()
    waiting = make_execution(first)
    count = services.jobs_delete(jobs=Job.objects.filter(pk__in=[first.pk, second.pk]), now=now)
    waiting.refresh_from_db()
    assert count == 2
    assert list(Job.objects.values_list("pk", flat=True)) == [kept.pk]
    assert (waiting.status, waiting.finished_at) == ("cancelled", now)


def test_it_deletes_nothing_of_a_selection_that_holds_a_code_defined_job(make_job, now):
    plain, in_code = make_job(name="plain"), make_job(name="from-code")
    waiting = make_execution(plain)
    Job.objects.filter(pk=in_code.pk).update(code_defined=True)
    with pytest.raises(ValidationError) as raised:
        services.jobs_delete(jobs=Job.objects.all(), now=now)
    assert "from-code" in raised.value.message_dict["code_defined"][0]
    waiting.refresh_from_db()
    assert Job.objects.count() == 2 and waiting.status == "scheduled"  # all or nothing


# Pause and resume ------------------------------------------------------------------------


def test_it_pauses_a_job_and_stamps_it(make_job, now):
    job = make_job()
    later = now + timedelta(minutes=1)
    job = services.job_pause(job=job, now=later)
    assert (job.paused, job.updated_at) == (True, later)


def test_it_resumes_a_job_and_stamps_it(make_job, now):
    job = make_job(paused=True)
    later = now + timedelta(minutes=1)
    job = services.job_resume(job=job, now=later)
    assert (job.paused, job.updated_at) == (False, later)


def test_it_replans_a_resumed_job_from_now(make_job, now):
    job = make_job(triggers=[{"kind": "cron", "cron_expression": "*/5 * * * *"}])
    services.job_pause(job=job, now=now)
    later = now + timedelta(hours=3, minutes=1)
    job = services.job_resume(job=job, now=later)
    # Runs missed while paused are not caught up: the next run is after the resume.
    assert job.next_run_at == datetime(2026, 3, 1, 15, 5, tzinfo=UTC)


def test_it_pauses_many_jobs_in_one_call(make_job, now):
    jobs = [make_job() for _ in range(3)]
    later = now + timedelta(minutes=1)
    assert services.jobs_pause(jobs=Job.objects.filter(pk__in=[j.pk for j in jobs]), now=later) == 3
    assert set(Job.objects.values_list("paused", "updated_at")) == {(True, later)}


def test_it_counts_only_the_jobs_a_bulk_pause_changed(make_job, now):
    make_job(paused=True)
    make_job()
    assert services.jobs_pause(jobs=Job.objects.all(), now=now) == 1


def test_it_stamps_only_the_jobs_a_bulk_pause_changed(make_job, now):
    already = make_job(paused=True)
    later = now + timedelta(minutes=1)
    services.jobs_pause(jobs=Job.objects.all(), now=later)
    assert Job.objects.get(pk=already.pk).updated_at == now


def test_it_resumes_many_jobs_and_stamps_them(make_job, now):
    jobs = [make_job(paused=True) for _ in range(2)]
    later = now + timedelta(minutes=1)
    assert services.jobs_resume(jobs=Job.objects.filter(pk__in=[j.pk for j in jobs]), now=later) == 2
    assert set(Job.objects.values_list("paused", "updated_at")) == {(False, later)}


def test_it_replans_jobs_resumed_in_bulk_even_when_the_queryset_filters_on_paused(make_job, now):
    make_job(paused=True)
    make_job(paused=True)
    later = now + timedelta(hours=3, minutes=1)
    # The natural "resume everything paused" queryset no longer matches once it has run.
    services.jobs_resume(jobs=Job.objects.filter(paused=True), now=later)
    assert set(Job.objects.values_list("next_run_at", flat=True)) == {datetime(2026, 3, 1, 15, 5, tzinfo=UTC)}


def test_it_leaves_the_plan_of_an_already_active_job_alone_on_bulk_resume(make_job, now):
    active = make_job()
    make_job(paused=True)
    # The scheduler has not dispatched the 12:05 run yet; a resume of "everything" must not skip it.
    later = now + timedelta(minutes=6)
    services.jobs_resume(jobs=Job.objects.all(), now=later)
    active.refresh_from_db()
    assert (active.next_run_at, active.updated_at) == (datetime(2026, 3, 1, 12, 5, tzinfo=UTC), now)


# Run now ---------------------------------------------------------------------------------


def test_it_records_a_manual_run_for_now(make_job, owner, now):
    job = make_job(owner=owner)
    execution = services.job_run_now(job=job, actor=owner, now=now)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.SCHEDULED
    assert execution.reason == Execution.Reason.MANUAL
    assert (execution.scheduled_for, execution.run_after) == (now, now)
    assert (execution.job_name, execution.requested_by) == (job.name, owner)


def test_it_records_a_manual_run_for_each_job_of_a_selection_in_one_go(make_job, owner, now):
    jobs = [make_job(owner=owner), make_job(owner=owner), make_job(owner=owner)]
    later = now + timedelta(minutes=1)
    executions = services.jobs_run_now(jobs=Job.objects.filter(pk__in=[j.pk for j in jobs[:2]]), actor=owner, now=later)
    assert sorted(e.job_id for e in executions) == sorted(j.pk for j in jobs[:2])
    assert all(e.pk for e in executions)  # ids answered at once, as the single run-now does
    rows = Execution.objects.filter(reason="manual").values_list("job_id", "status", "requested_by", "run_after")
    assert sorted(rows) == sorted((j.pk, "scheduled", owner.pk, later) for j in jobs[:2])
    # Stamped, so the scheduler looks at once rather than at its next claim.
    assert set(Job.objects.filter(updated_at=later).values_list("pk", flat=True)) == {j.pk for j in jobs[:2]}


def test_it_never_runs_the_task_when_asked_to_run_now(make_job, marker_task, tmp_path, now):
    marker = tmp_path / "ran.txt"
    job = make_job(task=marker_task, kwargs={"path": str(marker)})
    services.job_run_now(job=job, now=now)
    assert Execution.objects.filter(job=job, status="scheduled").count() == 1
    assert not marker.exists()


def test_the_marker_task_would_have_left_a_marker_had_it_run(marker_task, tmp_path):
    # The control for the test above: the task really writes its marker.
    marker = tmp_path / "ran.txt"
    registry.get(marker_task)(path=str(marker))
    assert marker.read_text() == "ran"


def test_it_stamps_the_job_when_a_run_is_requested(make_job, now):
    job = make_job()
    later = now + timedelta(minutes=1)
    services.job_run_now(job=job, now=later)
    assert Job.objects.get(pk=job.pk).updated_at == later


def test_it_records_no_requester_for_a_run_the_system_asked_for(make_job, now):
    execution = services.job_run_now(job=make_job(), now=now)
    assert execution.requested_by is None


def test_it_refuses_a_run_an_anonymous_visitor_asks_for(make_job, now):
    from django.contrib.auth.models import AnonymousUser

    job = make_job()
    with pytest.raises(Forbidden):
        services.job_run_now(job=job, actor=AnonymousUser(), now=now)
    assert not job.executions.exists()


# Duplicate -------------------------------------------------------------------------------


def test_it_names_a_duplicate_with_copy(make_job, now):
    job = make_job(name="report")
    assert services.job_duplicate(job=job, now=now).name == "report (copy)"


def test_it_numbers_further_duplicates(make_job, now):
    job = make_job(name="report")
    services.job_duplicate(job=job, now=now)
    assert services.job_duplicate(job=job, now=now).name == "report (copy 2)"
    assert services.job_duplicate(job=job, now=now).name == "report (copy 3)"


def test_it_copies_the_triggers_of_a_duplicated_job(make_job, now):
    calendar = services.calendar_create(name="holidays", now=now)
    job = make_job(
        triggers=[
            {"kind": "weekly", "days": [0], "at": "10:00", "jitter_seconds": 30, "calendar": calendar},
            {"kind": "interval", "interval_seconds": 900},
            {"kind": "once", "run_at": "2026-12-25T00:00:00Z"},
        ]
    )
    copy = services.job_duplicate(job=job, now=now)
    fields = ("kind", "cron_expression", "interval_seconds", "run_at", "preset", "jitter_seconds", "calendar")
    assert list(copy.triggers.values_list(*fields)) == list(job.triggers.values_list(*fields))
    assert set(copy.triggers.values_list("id", flat=True)).isdisjoint(job.triggers.values_list("id", flat=True))


def test_it_copies_the_job_fields(make_job, now):
    job = make_job(kwargs={"message": "hi"}, tags=["etl"], priority=8, timezone="Europe/Berlin", group="reports")
    copy = services.job_duplicate(job=job, now=now)
    assert (copy.task, copy.kwargs, copy.tags, copy.priority, copy.timezone, copy.group) == (
        job.task,
        {"message": "hi"},
        ["etl"],
        8,
        "Europe/Berlin",
        "reports",
    )


def test_it_starts_a_duplicate_paused(make_job, now):
    job = make_job()
    assert services.job_duplicate(job=job, now=now).paused is True


def test_it_gives_a_duplicate_the_new_owner(make_job, owner, outsider, now):
    job = make_job(owner=owner)
    assert services.job_duplicate(job=job, owner=outsider, now=now).owner == outsider


def test_it_makes_a_code_defined_jobs_duplicate_editable(make_job, now):
    copy = services.job_duplicate(job=make_job(code_defined=True), now=now)
    assert copy.code_defined is False


# Groups ----------------------------------------------------------------------------------


def test_it_pauses_a_group_and_answers_how_many(make_job, now):
    make_job(group="etl")
    make_job(group="etl")
    other = make_job(group="reports")
    assert services.group_pause(group="etl", now=now) == 2
    assert set(Job.objects.filter(group="etl").values_list("paused", flat=True)) == {True}
    assert Job.objects.get(pk=other.pk).paused is False


def test_it_pauses_only_the_given_users_jobs_in_a_group(make_job, owner, outsider, now):
    mine = make_job(group="etl", owner=owner)
    theirs = make_job(group="etl", owner=outsider)
    assert services.group_pause(group="etl", jobs=Job.objects.visible_to(owner), now=now) == 1
    assert Job.objects.get(pk=mine.pk).paused is True
    assert Job.objects.get(pk=theirs.pk).paused is False


def test_it_resumes_a_group_and_replans_it(make_job, now):
    make_job(group="etl", paused=True)
    make_job(group="etl", paused=True)
    other = make_job(group="reports", paused=True)
    later = now + timedelta(hours=1, minutes=1)
    assert services.group_resume(group="etl", now=later) == 2
    assert set(Job.objects.filter(group="etl").values_list("paused", "next_run_at")) == {
        (False, datetime(2026, 3, 1, 13, 5, tzinfo=UTC))
    }
    assert Job.objects.get(pk=other.pk).paused is True


def test_it_resumes_only_the_given_users_jobs_in_a_group(make_job, owner, outsider, now):
    make_job(group="etl", owner=owner, paused=True)
    theirs = make_job(group="etl", owner=outsider, paused=True)
    assert services.group_resume(group="etl", jobs=Job.objects.visible_to(owner), now=now) == 1
    assert Job.objects.get(pk=theirs.pk).paused is True


def test_it_cancels_a_group_and_answers_how_many(make_job, now):
    make_job(group="etl")
    make_job(group="etl")
    other = make_job(group="reports")
    assert services.group_cancel(group="etl", now=now) == 2
    assert list(Job.objects.values_list("pk", flat=True)) == [other.pk]


def test_it_keeps_the_history_of_a_cancelled_group_and_cancels_its_pending_runs(make_job, now):
    job = make_job(group="etl", name="etl-load")
    done = make_execution(job, status=Execution.Status.FAILED)
    waiting = make_execution(job, scheduled_for=now)
    services.group_cancel(group="etl", now=now)
    done.refresh_from_db()
    waiting.refresh_from_db()
    assert (done.job_name, done.status) == ("etl-load", "failed")
    assert waiting.status == "cancelled"


def test_it_cancels_only_the_given_users_jobs_in_a_group(make_job, owner, outsider, now):
    make_job(group="etl", owner=owner)
    theirs = make_job(group="etl", owner=outsider)
    assert services.group_cancel(group="etl", jobs=Job.objects.visible_to(owner), now=now) == 1
    assert list(Job.objects.values_list("pk", flat=True)) == [theirs.pk]


# Executions ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["scheduled", "queued"])
def test_it_cancels_a_waiting_run_at_once(make_job, now, status):
    execution = make_execution(make_job(), status=status)
    execution = services.execution_cancel(execution=execution, now=now)
    assert (execution.status, execution.finished_at) == ("cancelled", now)


def test_it_asks_the_scheduler_to_stop_a_running_run(make_job, now):
    execution = make_execution(make_job(), status=Execution.Status.RUNNING)
    execution = services.execution_cancel(execution=execution, now=now)
    assert (execution.status, execution.cancel_requested_at) == ("running", now)


def test_it_treats_a_run_that_started_meanwhile_as_running(make_job, now):
    execution = make_execution(make_job())
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.RUNNING)
    execution = services.execution_cancel(execution=execution, now=now)  # its status is stale: "scheduled"
    assert (execution.status, execution.cancel_requested_at) == ("running", now)


def test_it_asks_the_scheduler_holding_a_queued_run_to_cancel_it_rather_than_marking_it(make_job, now):
    # Its scheduler has it in its pool: marked cancelled here, the run still started there.
    node = SchedulerNode.objects.create(name="host:1:a", hostname="host", pid=1, last_beat_at=now)
    execution = make_execution(make_job(), status=Execution.Status.QUEUED, worker=node.name)
    execution = services.execution_cancel(execution=execution, now=now)
    assert (execution.status, execution.cancel_requested_at, execution.cancel_pending) == ("queued", now, True)


def test_it_refuses_to_cancel_a_run_whose_scheduler_is_dead(make_job, now):
    node = SchedulerNode.objects.create(name="host:1:a", hostname="host", pid=1, last_beat_at=now - timedelta(hours=1))
    execution = make_execution(make_job(), status=Execution.Status.RUNNING, worker=node.name)
    with pytest.raises(services.ServiceError) as excinfo:
        services.execution_cancel(execution=execution, now=now)
    assert "its scheduler host:1:a is not running" in errors_of(excinfo)["status"][0]
    execution.refresh_from_db()
    assert execution.cancel_requested_at is None


def test_it_asks_the_scheduler_to_cancel_the_queued_runs_it_holds_of_a_deleted_job(make_job, now):
    job = make_job()
    queued = make_execution(job, status=Execution.Status.QUEUED, worker="host:1:a")
    services.job_delete(job=job, now=now)
    queued.refresh_from_db()
    assert (queued.status, queued.cancel_requested_at) == ("queued", now)


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_it_refuses_to_cancel_a_finished_run(make_job, now, status):
    execution = make_execution(make_job(), status=status)
    with pytest.raises(ValidationError) as excinfo:
        services.execution_cancel(execution=execution, now=now)
    assert "status" in errors_of(excinfo)
    execution.refresh_from_db()
    assert (execution.status, execution.cancel_requested_at) == (status, None)


def test_it_retries_a_failed_run_as_the_next_attempt(make_job, owner, now):
    failed = make_execution(make_job(owner=owner), status=Execution.Status.FAILED)
    retry = services.execution_retry(execution=failed, actor=owner, now=now)
    retry.refresh_from_db()
    assert (retry.attempt, retry.reason, retry.status) == (2, "retry", "scheduled")
    assert (retry.scheduled_for, retry.run_after, retry.requested_by) == (failed.scheduled_for, now, owner)


def test_it_numbers_a_retry_after_the_latest_attempt(make_job, now):
    job = make_job()
    first = make_execution(job, status=Execution.Status.FAILED)
    make_execution(job, status=Execution.Status.FAILED, attempt=2, reason="retry")
    assert services.execution_retry(execution=first, now=now).attempt == 3


def test_it_acknowledges_a_dead_letter_when_it_is_retried(make_job, now):
    dead = make_execution(make_job(), status=Execution.Status.FAILED, dead_letter=True)
    services.execution_retry(execution=dead, now=now)
    dead.refresh_from_db()
    assert dead.acknowledged_at == now


@pytest.mark.parametrize("status", ["succeeded", "scheduled", "running", "skipped"])
def test_it_refuses_to_retry_a_run_that_did_not_fail(make_job, now, status):
    execution = make_execution(make_job(), status=status)
    with pytest.raises(ValidationError) as excinfo:
        services.execution_retry(execution=execution, now=now)
    assert "status" in errors_of(excinfo)
    assert Execution.objects.count() == 1


def test_it_refuses_to_retry_a_run_of_a_deleted_job(make_job, now):
    job = make_job()
    failed = make_execution(job, status=Execution.Status.FAILED)
    services.job_delete(job=job, now=now)
    failed.refresh_from_db()
    with pytest.raises(ValidationError):
        services.execution_retry(execution=failed, now=now)


def test_it_acknowledges_dead_letters_and_answers_how_many(make_job, now):
    job = make_job()
    dead = [
        make_execution(job, status="failed", dead_letter=True, scheduled_for=now - timedelta(minutes=n))
        for n in range(1, 3)
    ]
    seen = make_execution(job, status="failed", dead_letter=True, acknowledged_at=now - timedelta(days=1))
    alive = make_execution(job, status="failed", scheduled_for=now - timedelta(minutes=9))
    assert services.dead_letter_acknowledge(executions=Execution.objects.all(), now=now) == 2
    for execution in dead:
        execution.refresh_from_db()
        assert execution.acknowledged_at == now
    assert Execution.objects.get(pk=seen.pk).acknowledged_at == now - timedelta(days=1)
    assert Execution.objects.get(pk=alive.pk).acknowledged_at is None


# The scheduler ---------------------------------------------------------------------------


def test_it_pauses_the_scheduler(now):
    state = services.scheduler_pause(now=now)
    assert (state.paused, state.paused_at, state.updated_at) == (True, now, now)


def test_it_resumes_the_scheduler(now):
    services.scheduler_pause(now=now)
    later = now + timedelta(minutes=1)
    state = services.scheduler_resume(now=later)
    assert (state.paused, state.paused_at, state.updated_at) == (False, None, later)


def test_it_records_a_shutdown_request(now):
    state = services.scheduler_shutdown_request(now=now)
    assert state.shutdown_requested_at == now
    assert SchedulerState.load().shutdown_requested_at == now


def test_it_merges_runtime_settings(now):
    services.scheduler_config_update(values={"max_workers": 4}, now=now)
    state = services.scheduler_config_update(values={"history_days": 7}, now=now)
    assert state.config == {"max_workers": 4, "history_days": 7}


def test_it_refuses_an_unknown_runtime_setting_by_name(now):
    with pytest.raises(ValidationError) as excinfo:
        services.scheduler_config_update(values={"max_workers": 4, "turbo": 1}, now=now)
    assert list(errors_of(excinfo)) == ["turbo"]
    assert SchedulerState.load().config == {}


@pytest.mark.parametrize("value", [0, 1001, "4", 2.5, True, None])
def test_it_refuses_a_bad_runtime_setting_value_by_name(now, value):
    with pytest.raises(ValidationError) as excinfo:
        services.scheduler_config_update(values={"max_workers": value}, now=now)
    assert list(errors_of(excinfo)) == ["max_workers"]


def test_it_reads_a_runtime_setting_from_the_environment_when_unset(settings):
    settings.SCHEDULER_MAX_WORKERS = 7
    assert services.scheduler_setting("max_workers") == 7


def test_it_prefers_a_runtime_setting_set_in_the_console(settings, now):
    settings.SCHEDULER_MAX_WORKERS = 7
    services.scheduler_config_update(values={"max_workers": 3}, now=now)
    assert services.scheduler_setting("max_workers") == 3


# Calendars -------------------------------------------------------------------------------


def test_it_creates_a_calendar_with_sorted_unique_dates(now):
    dates = ["2026-12-26", "2026-12-25", "2026-12-25"]
    calendar = services.calendar_create(name="holidays", excluded_dates=dates, now=now)
    calendar.refresh_from_db()
    assert calendar.excluded_dates == ["2026-12-25", "2026-12-26"]


@pytest.mark.parametrize("dates", [["2026-13-01"], ["Christmas"], ["20261225"], ["2026-W52-5"], [{"day": 25}], [None]])
def test_it_refuses_bad_calendar_dates_naming_the_field(now, dates):
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_create(name="holidays", excluded_dates=dates, now=now)
    assert "excluded_dates" in errors_of(excinfo)
    assert not Calendar.objects.exists()


def test_it_refuses_a_single_date_string_as_not_a_list(now):
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_create(name="holidays", excluded_dates="2026-12-25", now=now)
    assert "must be a JSON list" in errors_of(excinfo)["excluded_dates"][0]


def test_it_refuses_a_calendar_field_that_callers_may_not_set(now):
    calendar = services.calendar_create(name="holidays", now=now)
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_update(calendar=calendar, nmae="renamed", now=now)
    assert "nmae" in errors_of(excinfo)


def test_it_refuses_a_calendar_name_that_is_taken(now):
    services.calendar_create(name="holidays", now=now)
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_create(name="holidays", now=now)
    assert "name" in errors_of(excinfo)


def test_it_replans_linked_jobs_when_a_calendar_changes(make_job, now):
    calendar = services.calendar_create(name="holidays", now=now)
    job = make_job(triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar}])
    assert Job.objects.get(pk=job.pk).next_run_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    later = now + timedelta(minutes=1)
    services.calendar_update(calendar=calendar, excluded_dates=["2026-03-02"], now=later)
    job.refresh_from_db()
    assert (job.next_run_at, job.updated_at) == (datetime(2026, 3, 3, 9, 0, tzinfo=UTC), later)


def test_it_leaves_unlinked_jobs_alone_when_a_calendar_changes(make_job, now):
    calendar = services.calendar_create(name="holidays", now=now)
    job = make_job()
    services.calendar_update(calendar=calendar, excluded_dates=["2026-03-02"], now=now + timedelta(minutes=1))
    assert Job.objects.get(pk=job.pk).updated_at == now


def test_it_refuses_bad_dates_on_calendar_update(now):
    calendar = services.calendar_create(name="holidays", excluded_dates=["2026-12-25"], now=now)
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_update(calendar=calendar, excluded_dates=["someday"], now=now)
    assert "excluded_dates" in errors_of(excinfo)
    assert Calendar.objects.get(pk=calendar.pk).excluded_dates == ["2026-12-25"]


def test_it_refuses_to_delete_a_calendar_in_use(make_job, now):
    calendar = services.calendar_create(name="holidays", now=now)
    make_job(name="payroll", triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar}])
    with pytest.raises(ValidationError) as excinfo:
        services.calendar_delete(calendar=calendar)
    assert "payroll" in errors_of(excinfo)["calendar"][0]
    assert Calendar.objects.filter(pk=calendar.pk).exists()


def test_it_deletes_an_unused_calendar(now):
    calendar = services.calendar_create(name="holidays", now=now)
    services.calendar_delete(calendar=calendar)
    assert not Calendar.objects.exists()


# Database constraints --------------------------------------------------------------------


def test_the_database_refuses_a_priority_above_ten(make_job):
    job = make_job()
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(priority=11)


def test_the_database_refuses_an_interval_of_zero(make_job):
    job = make_job()
    with pytest.raises(IntegrityError), transaction.atomic():
        Trigger.objects.create(job=job, kind="interval", interval_seconds=0)


def test_the_database_refuses_a_second_scheduled_run_of_the_same_occurrence(make_job, now):
    job = make_job()
    make_execution(job, scheduled_for=now, reason="schedule")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_execution(job, scheduled_for=now, reason="schedule")


def test_the_database_allows_two_manual_runs_at_the_same_instant(make_job, now):
    job = make_job()
    services.job_run_now(job=job, now=now)
    services.job_run_now(job=job, now=now)
    assert Execution.objects.filter(job=job, scheduled_for=now, attempt=1).count() == 2


# Added with the trigger-preserving save and the argument check ---------------------------


def test_it_keeps_unchanged_triggers_and_their_ids_on_update(make_job, now):
    job = make_job(triggers=[{"kind": "interval", "interval_seconds": 60}, {"kind": "daily", "at": "09:00"}])
    interval = job.triggers.get(kind="interval")
    services.job_update(
        job=job,
        now=now + timedelta(hours=1),
        triggers=[{"kind": "interval", "interval_seconds": 60}, {"kind": "daily", "at": "10:00"}],
    )
    kept = job.triggers.get(kind="interval")
    assert kept.pk == interval.pk and kept.created_at == interval.created_at
    assert job.triggers.get(kind="cron").cron_expression == "0 10 * * *"


def test_it_refuses_arguments_that_do_not_fit_the_task(make_job):
    with pytest.raises(ValidationError) as raised:
        make_job(task="tempora.sample_job", kwargs={"no_such_parameter": 1})
    assert "kwargs" in raised.value.message_dict
    assert "no_such_parameter" in raised.value.message_dict["kwargs"][0]


def test_it_refuses_to_delete_a_code_defined_job(make_job):
    job = make_job()
    Job.objects.filter(pk=job.pk).update(code_defined=True)
    job.refresh_from_db()
    with pytest.raises(ValidationError) as raised:
        services.job_delete(job=job)
    assert "code_defined" in raised.value.message_dict
    assert Job.objects.filter(pk=job.pk).exists()
