"""Turning APScheduler's run times into Execution rows: policies, overlap, max runs, exactly once."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.firing import record_fires
from scheduler_app.models import Execution, Job
from tests.engine import tasks_for_tests
from tests.engine.conftest import NODE

pytestmark = pytest.mark.django_db


def fired(job: Job, *run_times, next_run_time=None):
    """One due job as APScheduler hands it to the executor: the job object and its run times."""
    return (SimpleNamespace(id=str(job.pk), next_run_time=next_run_time), list(run_times))


def record(dispatcher, *fires, now, paused: bool = False, node: str = NODE):
    return record_fires(list(fires), now=now, dispatcher=dispatcher, node=node, paused=paused)


def rows(job: Job) -> list[tuple[str, str]]:
    return list(Execution.objects.filter(job=job).order_by("scheduled_for").values_list("status", "reason"))


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_it_queues_an_occurrence_that_is_on_time(dispatcher, make_job, now):
    job = make_job()
    ready, _ = record(dispatcher, fired(job, now), now=now + seconds(1))
    execution = Execution.objects.get(job=job)
    assert (execution.status, execution.reason, execution.worker) == ("queued", "schedule", NODE)
    assert (execution.scheduled_for, execution.queued_at, execution.attempt) == (now, now + seconds(1), 1)
    [(request, decision)] = ready
    assert (request.execution_id, request.task, decision) == (execution.pk, job.task, "start")


def test_it_queues_an_occurrence_late_within_the_grace_time(dispatcher, make_job, now):
    job = make_job(misfire_grace_time=60)
    record(dispatcher, fired(job, now), now=now + seconds(59))
    assert rows(job) == [("queued", "schedule")]


def test_it_records_an_occurrence_past_the_grace_time_as_missed(dispatcher, make_job, now):
    job = make_job(misfire_grace_time=60, catch_up="none")
    ready, _ = record(dispatcher, fired(job, now), now=now + seconds(90))
    assert ready == []
    missed = Execution.objects.get(job=job)
    assert (missed.status, missed.finished_at) == ("missed", now + seconds(90))
    assert "90s late, past the 60s grace time; catch-up policy 'none'" in missed.error


def test_it_runs_the_latest_missed_occurrence_once_under_catch_up_once(dispatcher, make_job, now):
    job = make_job(catch_up="once")
    ready, _ = record(dispatcher, fired(job, now, now + minutes(5), now + minutes(10)), now=now + minutes(20))
    assert rows(job) == [("missed", "schedule"), ("missed", "schedule"), ("queued", "catch_up")]
    assert [request.scheduled_for for request, _ in ready] == [now + minutes(10)]


def test_it_runs_every_missed_occurrence_under_catch_up_all(dispatcher, make_job, now):
    job = make_job(catch_up="all", overlap_policy="allow", max_instances=10)
    ready, _ = record(dispatcher, fired(job, now, now + minutes(5), now + minutes(10)), now=now + minutes(20))
    assert rows(job) == [("queued", "catch_up")] * 3
    assert len(ready) == 3


def test_it_records_nothing_for_a_paused_job(dispatcher, make_job, now):
    job = make_job(paused=True)
    ready, _ = record(dispatcher, fired(job, now), now=now)
    assert (ready, rows(job)) == ([], [])


def test_it_records_nothing_while_the_scheduler_is_paused(dispatcher, make_job, now):
    job = make_job()
    ready, _ = record(dispatcher, fired(job, now), now=now, paused=True)
    assert (ready, rows(job)) == ([], [])


def test_it_records_nothing_for_a_job_deleted_since_it_was_planned(dispatcher, make_job, now):
    job = make_job()
    fire = fired(job, now)
    Job.objects.filter(pk=job.pk).delete()
    ready, _ = record(dispatcher, fire, now=now)
    assert (ready, Execution.objects.count()) == ([], 0)


def test_it_stores_the_next_planned_run_on_the_job(dispatcher, make_job, now):
    job = make_job()
    record(dispatcher, fired(job, now, next_run_time=now + minutes(5)), now=now)
    job.refresh_from_db()
    assert job.next_run_at == now + minutes(5)


def test_it_stops_at_max_runs(dispatcher, make_job, now):
    job = make_job(max_runs=2, catch_up="all", overlap_policy="allow", max_instances=5)
    ready, exhausted = record(dispatcher, fired(job, now, now + minutes(5), now + minutes(10)), now=now + minutes(20))
    assert rows(job) == [("queued", "catch_up")] * 2
    assert len(ready) == 2
    assert exhausted == [job.pk]


def test_a_job_whose_last_allowed_run_fired_has_no_next_run(dispatcher, make_job, now):
    # The trigger has more occurrences, but max_runs is used up: its next run would never come.
    job = make_job(max_runs=1)
    ready, exhausted = record(dispatcher, fired(job, now, next_run_time=now + minutes(5)), now=now)
    assert len(ready) == 1 and exhausted == [job.pk]
    job.refresh_from_db()
    assert job.next_run_at is None


def test_a_job_with_runs_left_keeps_its_next_run(dispatcher, make_job, now):
    job = make_job(max_runs=2)
    _, exhausted = record(dispatcher, fired(job, now, next_run_time=now + minutes(5)), now=now)
    job.refresh_from_db()
    assert (exhausted, job.next_run_at) == ([], now + minutes(5))


def test_it_counts_earlier_runs_against_max_runs(dispatcher, make_job, now):
    job = make_job(max_runs=1)
    record(dispatcher, fired(job, now), now=now)
    ready, exhausted = record(dispatcher, fired(job, now + minutes(5)), now=now + minutes(5))
    assert (ready, exhausted) == ([], [job.pk])
    assert Execution.objects.filter(job=job).count() == 1


def test_it_records_an_occurrence_recorded_by_another_scheduler_only_once(dispatcher, make_job, now):
    job = make_job()
    record(dispatcher, fired(job, now), now=now)
    other = Dispatcher(node="host:2:node-b", writer=dispatcher.writer, max_workers=1)
    try:
        ready, _ = record(other, fired(job, now), now=now, node="host:2:node-b")
        assert ready == []
        assert Execution.objects.filter(job=job).count() == 1
        assert Execution.objects.get(job=job).worker == NODE
        assert other._reserved[job.pk] == 0  # the slot it reserved for the run is given back
    finally:
        other.shutdown()


def test_it_records_the_new_occurrences_of_a_pass_another_scheduler_partly_recorded(dispatcher, make_job, now):
    first, second = make_job(), make_job()
    record(dispatcher, fired(first, now), now=now)
    other = Dispatcher(node="host:2:node-b", writer=dispatcher.writer, max_workers=1)
    try:
        ready, _ = record(other, fired(first, now), fired(second, now), now=now, node="host:2:node-b")
        assert [request.job_id for request, _ in ready] == [second.pk]
        assert Execution.objects.count() == 2
    finally:
        other.shutdown()


# With a run in flight ---------------------------------------------------------------


@pytest.fixture
def running(dispatcher, make_job, now):
    """running(**job_fields): a job whose run at `now` is in flight in the dispatcher (it waits to be released)."""
    tasks_for_tests.release.clear()

    def start(**fields):
        job = make_job(task="engine_tests.waits_for_release", **fields)
        ready, _ = record(dispatcher, fired(job, now), now=now)
        dispatcher.launch(ready)
        deadline = time.monotonic() + 5
        while dispatcher.in_flight(job.pk) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return job

    return start


@pytest.mark.django_db(transaction=True)
def test_it_skips_an_occurrence_while_the_job_runs_under_skip(dispatcher, running, now):
    job = running(overlap_policy="skip")
    ready, _ = record(dispatcher, fired(job, now + minutes(5)), now=now + minutes(5))
    assert ready == []
    skipped = Execution.objects.get(job=job, scheduled_for=now + minutes(5))
    assert skipped.status == "skipped"
    assert skipped.error == "Skipped: the previous run is still going (overlap policy 'skip')."


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_occurrence_waiting_while_the_job_runs_under_queue_one(dispatcher, running, now):
    job = running(overlap_policy="queue_one")
    later = now + minutes(5)
    ready, _ = record(dispatcher, fired(job, later, later + seconds(10)), now=later + seconds(10))
    assert ready == []
    later = Execution.objects.filter(job=job, scheduled_for__gt=now).order_by("scheduled_for")
    assert [row.status for row in later] == ["scheduled", "skipped"]


@pytest.mark.django_db(transaction=True)
def test_it_finishes_the_run_in_flight_through_the_writer(dispatcher, running, now):
    job = running(overlap_policy="skip")
    tasks_for_tests.release.set()
    dispatcher.drain(5, "test over")
    dispatcher.writer.stop()
    execution = Execution.objects.get(job=job, scheduled_for=now)
    assert (execution.status, execution.result, execution.worker) == ("succeeded", "released", NODE)


@pytest.mark.django_db(transaction=True)
def test_a_backlog_chain_reaches_the_workers_whole_and_every_run_of_it_starts(dispatcher, make_job, now):
    # A backlog of one job is one chain on one thread. A chain handed to the pool before
    # launch() had appended the rest could be finished by a worker before the append, and
    # the rest never ran (their slots stayed taken: a `skip` job skipped ever after).
    submitted = []
    submit = dispatcher.pool.submit_at

    def submit_at(at, chain):
        submitted.append((chain, len(chain)))
        submit(at, chain)

    dispatcher.pool.submit_at = submit_at
    job = make_job(task="tempora.noop", catch_up="all")
    ready, _ = record(dispatcher, fired(job, now - seconds(3), now - seconds(2), now - seconds(1)), now=now)
    assert [decision for _, decision in ready] == ["start", "follow", "follow"]
    dispatcher.launch(ready)
    assert [(len(chain), length) for chain, length in submitted] == [(3, 3)]
    deadline = time.monotonic() + 10
    while dispatcher.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dispatcher.in_flight() == 0
