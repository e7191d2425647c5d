"""Job.schedule_state: where each job stands, the one definition every interface shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler_app.models import Job
from tests import job_states
from tests.job_states import NOW

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("case", ["scheduled", "not_started", "paused", *job_states.WITHOUT_NEXT_RUN])
def test_it_tells_the_state_of_each_job(state_jobs, case):
    assert state_jobs[case].schedule_state(now=NOW).value == job_states.state_of(case)


@pytest.mark.parametrize("case", job_states.WITHOUT_NEXT_RUN)
def test_a_job_with_no_upcoming_run_has_no_next_run(state_jobs, case):
    state = state_jobs[case].schedule_state(now=NOW)
    assert state.next_run is None and state.upcoming is None


def test_a_scheduled_job_runs_next_at_its_next_fire_time(state_jobs):
    assert state_jobs["scheduled"].schedule_state(now=NOW).upcoming == NOW + timedelta(minutes=5)


def test_a_job_waiting_for_its_start_runs_first_at_the_start(state_jobs):
    assert state_jobs["not_started"].schedule_state(now=NOW).upcoming == NOW + timedelta(days=1)


def test_a_paused_job_keeps_the_run_it_would_make_once_resumed_but_has_no_upcoming_run(state_jobs):
    state = state_jobs["paused"].schedule_state(now=NOW)
    assert state.next_run == NOW + timedelta(minutes=5)
    assert state.upcoming is None


def test_a_schedule_that_cannot_be_computed_says_why(state_jobs):
    state = state_jobs["schedule_error"].schedule_state(now=NOW)
    assert "61" in state.error
    assert state.label == "Schedule cannot be computed"


def test_a_one_off_waiting_for_its_time_is_scheduled(make_job, owner):
    job = make_job(owner=owner, triggers=[{"kind": "once", "run_at": NOW + timedelta(hours=1)}], now=NOW)
    assert job.schedule_state(now=NOW).value == Job.State.SCHEDULED


def test_a_window_with_no_run_left_before_its_end_has_ended(make_job, owner):
    job = make_job(
        owner=owner,
        triggers=[{"kind": "cron", "cron_expression": "0 9 1 1 *"}],
        end_at=NOW + timedelta(days=30),
        now=NOW,
    )
    assert job.schedule_state(now=NOW).value == Job.State.ENDED


def test_a_job_starting_in_year_9999_with_no_run_before_the_end_of_time_has_no_upcoming_run(make_job, owner):
    from datetime import UTC, datetime

    job = make_job(owner=owner, start_at=datetime(9999, 12, 31, 20, 0, tzinfo=UTC), now=NOW)
    assert job.schedule_state(now=NOW).value == Job.State.NO_UPCOMING_RUN


def test_counting_runs_for_many_jobs_takes_one_query(state_jobs, django_assert_num_queries):
    rows = list(Job.objects.filter(pk__in=[job.pk for job in state_jobs.values()]))
    with django_assert_num_queries(1):
        Job.count_runs_used(rows)
    by_name = {job.name: job for job in rows}
    with django_assert_num_queries(0):
        assert by_name["two-runs-only"].runs_used() == 2


def test_refreshing_a_job_forgets_its_counted_runs_and_state(state_jobs):
    job = state_jobs["finished-max-runs"]
    Job.count_runs_used([job])
    assert job.current_state.value == "finished"
    Job.objects.filter(pk=job.pk).update(max_runs=5)
    job.refresh_from_db()
    assert job.schedule_state(now=NOW).value == "scheduled"


def test_pausing_and_resuming_a_job_whose_schedule_cannot_be_computed_still_works(state_jobs):
    from scheduler_app import services

    job = services.job_pause(job=state_jobs["schedule_error"], now=NOW)
    job = services.job_resume(job=job, now=NOW)
    assert job.next_run_at is None and job.schedule_state(now=NOW).value == "schedule_error"


def test_nextruns_says_a_stored_jobs_schedule_cannot_be_computed(state_jobs):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="cannot be computed"):
        call_command("nextruns", "--job", state_jobs["schedule_error"].name)


def more_kinds(owner) -> dict[str, Job]:
    """Jobs the database and the model must place alike, beyond tests/job_states.py's one per state."""
    from scheduler_app import services
    from scheduler_app.models import Trigger

    def make(name: str, triggers: list, **fields) -> Job:
        return services.job_create(
            name=name, task="tempora.sample_job", owner=owner, triggers=triggers, now=NOW, **fields
        )

    hourly = [{"kind": "cron", "cron_expression": "0 * * * *"}]
    weekdays = services.calendar_create(name="kinds: weekdays", business_days_only=True, owner=owner)
    jobs = {
        "interval": make("kinds-interval", [{"kind": "interval", "interval_seconds": 600}]),
        "interval-later": make(
            "kinds-interval-later", [{"kind": "interval", "interval_seconds": 600}], start_at=NOW + timedelta(days=2)
        ),
        "once-ahead": make("kinds-once-ahead", [{"kind": "once", "run_at": NOW + timedelta(hours=2)}]),
        "once-ahead-after-start": make(
            "kinds-once-before-start",
            [{"kind": "once", "run_at": NOW + timedelta(days=3)}],
            start_at=NOW + timedelta(days=1),
        ),
        "once-past-jittered": make(
            "kinds-once-jittered", [{"kind": "once", "run_at": NOW - timedelta(minutes=1), "jitter_seconds": 3600}]
        ),
        "on-a-calendar": make(
            "kinds-weekdays", [{"kind": "cron", "cron_expression": "0 9 * * *", "calendar": weekdays.pk}]
        ),
        "ends-later": make("kinds-ends-later", hourly, end_at=NOW + timedelta(days=1)),
        "runs-left": make("kinds-runs-left", hourly, max_runs=5),
        "jittered-cron": make(
            "kinds-jittered", [{"kind": "cron", "cron_expression": "0 * * * *", "jitter_seconds": 60}]
        ),
        "two-triggers": make("kinds-two", [*hourly, {"kind": "once", "run_at": NOW - timedelta(days=2)}]),
        "lost-zone": make("kinds-lost-zone", hourly),
        "paused-broken": make("kinds-paused-broken", hourly, paused=True),
        "broken-beside-good": make("kinds-broken-beside", [*hourly, {"kind": "cron", "cron_expression": "5 * * * *"}]),
        "berlin": make("kinds-berlin", hourly, timezone="Europe/Berlin"),
        "once-at-the-end-of-time": make("kinds-end-of-time", [{"kind": "once", "run_at": NOW + timedelta(days=1)}]),
    }
    # Past the last instant triggers.py plans for (a row written outside the services).
    Trigger.objects.filter(job=jobs["once-at-the-end-of-time"]).update(run_at=datetime(9999, 12, 30, 13, 0, tzinfo=UTC))
    Job.objects.filter(pk=jobs["lost-zone"].pk).update(timezone="Mars/Olympus")
    Trigger.objects.filter(job=jobs["paused-broken"]).update(cron_expression="61 * * * *")
    broken = Trigger.objects.filter(job=jobs["broken-beside-good"], cron_expression="5 * * * *")
    broken.update(cron_expression="0 0 30 2 *")  # never fires
    return {case: Job.objects.get(pk=job.pk) for case, job in jobs.items()}


@pytest.fixture
def every_kind(state_jobs, owner):
    return {**state_jobs, **more_kinds(owner)}


@pytest.mark.parametrize("state", Job.State.values)
def test_the_database_and_the_model_place_every_kind_of_job_in_the_same_state(every_kind, state):
    expected = {job.name for job in every_kind.values() if job.schedule_state(now=NOW).value == state}
    found = set(Job.objects.in_state(state, now=NOW).values_list("name", flat=True))
    assert found == expected


def test_every_kind_of_job_is_in_one_state_only(every_kind):
    placed = [
        name
        for state in Job.State.values
        for name in Job.objects.in_state(state, now=NOW).values_list("name", flat=True)
    ]
    assert sorted(placed) == sorted(job.name for job in every_kind.values())


def test_the_state_filter_computes_no_schedule_in_python_for_jobs_the_database_can_place(make_job, owner, monkeypatch):
    for n in range(30):
        make_job(
            owner=owner, name=f"plain-{n}", triggers=[{"kind": "cron", "cron_expression": f"{n} * * * *"}], now=NOW
        )
    computed = []
    real = Job.schedule_state
    monkeypatch.setattr(Job, "schedule_state", lambda self, **kw: computed.append(self.pk) or real(self, **kw))
    for state in Job.State.values:
        list(Job.objects.in_state(state, now=NOW))
    assert computed == []
    assert Job.objects.in_state("scheduled", now=NOW).count() == 30
