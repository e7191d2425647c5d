"""Keeping APScheduler's job store in step with the Job rows, against a real (paused) scheduler."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_apscheduler.models import DjangoJob

from scheduler_app import services
from scheduler_app.engine.apscheduler_glue import TemporaJobStore, TemporaScheduler
from scheduler_app.engine.firing import TemporaExecutor
from scheduler_app.engine.sync import Sync
from scheduler_app.models import Execution, Job
from scheduler_app.registry import registry

pytestmark = pytest.mark.django_db(transaction=True)
EVERY_5_MINUTES = [{"kind": "cron", "cron_expression": "*/5 * * * *"}]
HOURLY = [{"kind": "cron", "cron_expression": "0 * * * *"}]
EVERY_MINUTE = [{"kind": "cron", "cron_expression": "* * * * *"}]
EVERY_2_MINUTES = [{"kind": "cron", "cron_expression": "*/2 * * * *"}]


class StoreOnlyExecutor(TemporaExecutor):
    """Our executor without the rows: it keeps what a pass hands it. Sync needs only the store."""

    def __init__(self) -> None:
        super().__init__(dispatcher=None, node="host:1:sync-test", is_paused=lambda: False)
        self.passes: list[list] = []

    def flush(self, now=None) -> None:
        fires, self._fires = self._fires, []
        self.passes.append(fires)


@pytest.fixture
def executor():
    return StoreOnlyExecutor()


@pytest.fixture
def scheduler(executor):
    """A real TemporaScheduler on the test database, started paused: it stores jobs but never fires."""
    scheduler = TemporaScheduler(
        jobstores={"default": TemporaJobStore()},
        executors={"default": executor},
        timezone=UTC,
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1_000_000},
    )
    scheduler.start(paused=True)
    yield scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)  # joins its thread: no database work left for the flush to race


@pytest.fixture
def sync(scheduler):
    return Sync(scheduler)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def stored() -> dict[int, object]:
    """The store's planned next run per job id."""
    return {int(pk): at for pk, at in DjangoJob.objects.values_list("id", "next_run_time")}


# Full reconcile ---------------------------------------------------------------------


def test_it_stores_a_job_for_each_active_job(sync, make_job, now):
    first, second = make_job(), make_job()
    sync.full(now=now)
    assert set(stored()) == {first.pk, second.pk}


def test_it_plans_each_stored_job_at_its_next_run(sync, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now + minutes(1))
    assert stored()[job.pk] == now + minutes(5)


@pytest.mark.parametrize("batch", [4, 2000])  # 4: a dense batch read as an id range; 2000: one sparse batch, IN
def test_it_plans_dense_and_sparse_ids_alike_and_skips_the_rows_between(sync, make_job, now, batch, monkeypatch):
    # An id range holds rows nobody asked for (the paused job's): they must not be planned, and
    # each job must get its own trigger either way.
    monkeypatch.setattr("scheduler_app.engine.sync.BATCH", batch)
    jobs = [make_job(triggers=[{"kind": "cron", "cron_expression": f"{n} * * * *"}]) for n in range(1, 6)]
    services.job_pause(job=jobs[2])
    Job.objects.filter(pk__in=[make_job().pk for _ in range(20)]).delete()  # a gap in the ids
    far = make_job(triggers=[{"kind": "cron", "cron_expression": "30 * * * *"}])
    sync.full(now=now)
    expected = {job.pk: now + minutes(n) for n, job in enumerate(jobs, start=1) if job is not jobs[2]}
    assert stored() == {**expected, far.pk: now + minutes(30)}


def test_it_stores_no_job_for_a_paused_job(sync, make_job, now):
    make_job(paused=True)
    sync.full(now=now)
    assert stored() == {}


def test_it_flags_a_job_whose_task_is_not_registered_and_keeps_it(sync, make_job, now):
    job = make_job()
    Job.objects.filter(pk=job.pk).update(task="billing.gone_task")
    sync.full(now=now)
    job.refresh_from_db()
    assert job.import_error == (
        "The task 'billing.gone_task' cannot be imported: it is not registered in this deployment."
    )
    assert stored() == {}


def test_it_clears_the_flag_once_the_task_is_registered_again(sync, make_job, now):
    job = make_job(task="engine_tests.add", args=[1, 2])
    Job.objects.filter(pk=job.pk).update(task="engine_tests.later")
    sync.full(now=now)
    registry.register(lambda: None, name="engine_tests.later")
    try:
        Job.objects.filter(pk=job.pk).update(updated_at=now + minutes(1))
        sync.changed(now=now + minutes(1))
    finally:
        registry.unregister("engine_tests.later")
    job.refresh_from_db()
    assert job.import_error == ""
    assert job.pk in stored()


def test_it_removes_a_stored_job_whose_job_row_is_gone(sync, make_job, now):
    job = make_job()
    sync.full(now=now)
    Job.objects.filter(pk=job.pk).delete()
    sync.full(now=now + minutes(1))
    assert stored() == {}


def restart(scheduler) -> Sync:
    """A new Sync on the same store, as a restarted (or new) leader has."""
    return Sync(scheduler)


def test_a_restart_rewrites_no_stored_job_that_is_already_right(sync, scheduler, make_job, now, monkeypatch):
    # Both jobs changed within the look-back of the last sync (as after a bulk import), so a
    # restart must check them; their stored rows are right, so none goes through apply().
    jobs = [make_job(), make_job(triggers=HOURLY)]
    sync.full(now=now)
    before = dict(DjangoJob.objects.values_list("id", "job_state"))
    applied = []
    monkeypatch.setattr(Sync, "apply", lambda self, jobs, *, now: applied.extend(job.pk for job in jobs))
    assert restart(scheduler).full(now=now + minutes(1)) == 2
    assert applied == []
    assert dict(DjangoJob.objects.values_list("id", "job_state")) == before
    assert stored() == {jobs[0].pk: now + minutes(5), jobs[1].pk: now + minutes(60)}


def test_a_restart_re_plans_a_job_edited_while_no_scheduler_ran(sync, scheduler, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    services.job_update(job=job, triggers=HOURLY, now=now + minutes(1))
    restart(scheduler).full(now=now + minutes(2))
    assert stored()[job.pk] == now + minutes(60)


def test_a_restart_keeps_the_planned_run_of_a_job_whose_schedule_was_kept(sync, scheduler, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    # The 12:05 run came due while no scheduler ran; the edit kept the schedule.
    services.job_update(job=job, description="new words", now=now + minutes(5.5))
    restart(scheduler).full(now=now + minutes(6))
    assert stored()[job.pk] == now + minutes(5)
    job.refresh_from_db()
    assert job.next_run_at == now + minutes(5)


def test_a_restart_unschedules_a_job_paused_while_no_scheduler_ran(sync, scheduler, make_job, now):
    job, other = make_job(), make_job()
    sync.full(now=now)
    services.job_pause(job=job, now=now + minutes(1))
    restart(scheduler).full(now=now + minutes(2))
    assert set(stored()) == {other.pk}


def test_a_restart_shows_the_planned_run_of_a_job_whose_row_disagrees(sync, scheduler, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    Job.objects.filter(pk=job.pk).update(next_run_at=now + minutes(10))
    restart(scheduler).full(now=now + minutes(1))
    job.refresh_from_db()
    assert job.next_run_at == now + minutes(5)
    assert stored() == {job.pk: now + minutes(5)}


# Incremental ------------------------------------------------------------------------


def test_it_picks_up_a_job_created_after_the_full_sync(sync, make_job, now):
    sync.full(now=now)
    job = make_job(now=now + minutes(1))
    assert sync.changed(now=now + minutes(1)) == 1
    assert job.pk in stored()


def test_it_applies_nothing_when_nothing_changed(sync, make_job, now):
    make_job()
    sync.full(now=now)
    assert sync.changed(now=now + minutes(1)) == 0


def test_it_applies_a_change_only_once(sync, make_job, now):
    job = make_job()
    sync.full(now=now)
    services.job_update(job=job, description="edited", now=now + minutes(1))
    assert sync.changed(now=now + minutes(1)) == 1
    assert sync.changed(now=now + minutes(1)) == 0


def test_it_re_plans_a_job_whose_schedule_was_edited(sync, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    services.job_update(job=job, triggers=HOURLY, now=now + minutes(1))
    sync.changed(now=now + minutes(1))
    assert stored()[job.pk] == now + minutes(60)


def test_it_keeps_the_planned_run_when_an_edit_keeps_the_schedule(sync, make_job, now):
    job = make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    assert stored()[job.pk] == now + minutes(5)
    # Edited just after the 12:05 run came due, before it fired: that run must not be skipped.
    services.job_update(job=job, description="new words", now=now + minutes(5.5))
    sync.changed(now=now + minutes(5.5))
    assert stored()[job.pk] == now + minutes(5)


def test_it_unschedules_a_paused_job(sync, make_job, now):
    job = make_job()
    sync.full(now=now)
    services.job_pause(job=job, now=now + minutes(1))
    sync.changed(now=now + minutes(1))
    assert stored() == {}
    job.refresh_from_db()
    assert job.next_run_at is None


def test_it_schedules_a_resumed_job_from_the_time_it_resumed(sync, make_job, now):
    job = make_job(paused=True, triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    services.job_resume(job=job, now=now + minutes(31))
    sync.changed(now=now + minutes(31))
    assert stored() == {job.pk: now + minutes(35)}


def test_an_edit_applied_late_plans_every_occurrence_since_the_edit(sync, make_job, now):
    # A start_at edit that a new leader applied 8 minutes late: the occurrences between the
    # edit and the apply must still come due (run within the grace time, else missed); planned
    # from the apply, they got no row at all.
    job = make_job(triggers=EVERY_MINUTE, start_at=now + minutes(120))
    sync.full(now=now)
    services.job_update(job=job, start_at=now + minutes(0.5), now=now + minutes(0.5))
    sync.changed(now=now + minutes(8.5))
    assert stored()[job.pk] == now + minutes(1)


def test_a_schedule_edit_applied_late_does_not_replan_what_the_old_schedule_recorded(sync, make_job, now):
    job = make_job(triggers=EVERY_MINUTE)
    sync.full(now=now)
    # The old schedule kept firing until the edit was applied: its rows up to 12:08 exist.
    for minute in range(1, 9):
        Execution.objects.create(
            job=job,
            job_name=job.name,
            scheduled_for=now + minutes(minute),
            run_after=now + minutes(minute),
            status="succeeded",
            created_at=now,
        )
    services.job_update(job=job, triggers=EVERY_2_MINUTES, now=now + minutes(0.5))
    sync.changed(now=now + minutes(8.5))
    assert stored()[job.pk] == now + minutes(10)


def test_a_one_off_whose_time_passed_before_it_fired_stays_due(sync, make_job, now):
    # A new leader's sync re-applies jobs changed just before it took over; a one-off due in
    # the takeover gap has no run "after now", and was unscheduled without a row.
    job = make_job(triggers=[{"kind": "once", "run_at": (now + minutes(1)).isoformat()}])
    sync.full(now=now)
    services.job_update(job=job, description="touched", now=now + minutes(0.5))
    sync.changed(now=now + minutes(2))
    assert stored() == {job.pk: now + minutes(1)}


def test_a_job_that_used_up_its_runs_is_unscheduled(sync, make_job, now):
    job = make_job(triggers=EVERY_MINUTE, max_runs=1)
    sync.full(now=now)
    Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now + minutes(1),
        run_after=now + minutes(1),
        status="succeeded",
        created_at=now,
    )
    Job.objects.filter(pk=job.pk).update(updated_at=now + minutes(1.5))  # as the loop stamps an exhausted job
    sync.changed(now=now + minutes(1.5))
    assert stored() == {}


def test_a_resumed_job_applied_late_plans_from_the_resume(sync, make_job, now):
    job = make_job(paused=True, triggers=EVERY_MINUTE)
    sync.full(now=now)
    services.job_resume(job=job, now=now + minutes(30.5))
    sync.changed(now=now + minutes(38.5))
    assert stored() == {job.pk: now + minutes(31)}


def test_it_unschedules_a_deleted_job(sync, make_job, now):
    job, other = make_job(), make_job()
    sync.full(now=now)
    services.job_delete(job=job, now=now + minutes(1))
    sync.changed(now=now + minutes(1))
    assert set(stored()) == {other.pk}


def test_it_sees_a_bulk_update_that_stamps_updated_at(sync, make_job, now):
    jobs = [make_job(), make_job()]
    sync.full(now=now)
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(paused=True, updated_at=now + minutes(1))
    assert sync.changed(now=now + minutes(1)) == 2
    assert stored() == {}


@pytest.mark.parametrize("kind", ["re-planned", "paused", "kept"])
def test_a_bulk_change_is_applied_in_the_same_few_statements_however_many_jobs(sync, make_job, now, kind):
    # A thousand jobs changed at once were applied one by one, several commits each: seconds on
    # PostgreSQL inside the job-store lock, with nothing firing meanwhile.
    def statements(count: int) -> int:
        jobs = [make_job(triggers=EVERY_5_MINUTES) for _ in range(count)]
        sync.full(now=now)
        change = {
            "re-planned": {"paused": False, "start_at": now + minutes(60)},
            "paused": {"paused": True},
            "kept": {"description": "edited"},
        }[kind]
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(**change, updated_at=now + minutes(1))
        with CaptureQueriesContext(connection) as queries:
            assert sync.changed(now=now + minutes(1)) == count
        Job.objects.all().delete()
        DjangoJob.objects.all().delete()
        return len(queries)

    statements(1)  # the first look also checks for deleted jobs
    assert statements(3) == statements(30)
    # Each run of statements() left the store as the change says.
    expected = {"re-planned": {}, "paused": {}, "kept": {}}[kind]
    assert stored() == expected


def test_a_job_whose_schedule_cannot_be_computed_is_flagged_and_the_others_are_applied(sync, make_job, now):
    broken, other = make_job(), make_job(triggers=EVERY_5_MINUTES)
    sync.full(now=now)
    Job.objects.filter(pk=broken.pk).update(timezone="Nowhere/Atlantis", updated_at=now + minutes(1))
    services.job_update(job=other, triggers=HOURLY, now=now + minutes(1))
    sync.changed(now=now + minutes(1))
    assert stored() == {other.pk: now + minutes(60)}
    broken.refresh_from_db()
    assert broken.import_error.startswith("The schedule cannot be computed:")


def test_it_unschedules_a_job_deleted_while_another_was_created(sync, make_job, now):
    job = make_job()
    sync.full(now=now)
    services.job_delete(job=job, now=now + minutes(1))
    created = make_job(now=now + minutes(1))
    sync.changed(now=now + minutes(1))
    assert set(stored()) == {created.pk}


# The scheduler itself ---------------------------------------------------------------


def test_it_runs_no_scheduling_pass_after_shutdown(scheduler, executor, sync, make_job, now):
    make_job()
    sync.full(now=now)  # planned in the past: due at once
    scheduler.shutdown(wait=False)  # returns once its thread has ended
    assert executor.passes == []
