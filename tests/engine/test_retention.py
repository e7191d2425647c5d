"""Keeping history useful: pruning by age and by count per job, in small batches."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.engine import retention
from scheduler_app.engine.retention import prune
from scheduler_app.models import Execution, Job

pytestmark = pytest.mark.django_db
DAYS = 30


@pytest.fixture(autouse=True)
def _fresh_rotation(monkeypatch):
    # Which job the count rule looks at first is remembered between calls.
    monkeypatch.setattr(retention, "_count_cursor", 0)


@pytest.fixture
def job(make_job):
    return make_job(name="reports")


@pytest.fixture
def history(make_execution, now):
    """history(job, count, status="succeeded", **fields): finished runs one minute apart, oldest first."""

    def make(job, count: int, *, status: str = "succeeded", ago: timedelta = timedelta(0), **fields) -> list[Execution]:
        rows = []
        for n in range(count):
            at = now - ago - timedelta(minutes=count - n)
            finished = at if status not in Execution.ACTIVE else None
            rows.append(make_execution(job, status=status, scheduled_for=at, finished_at=finished, **fields))
        if job is not None:
            Job.objects.filter(pk=job.pk).update(run_count=Execution.objects.filter(job=job).count())
        return rows

    return make


def remaining(job) -> set[int]:
    return set(Execution.objects.filter(job=job).values_list("pk", flat=True))


def ids(rows) -> set[int]:
    return {row.pk for row in rows}


# By age -----------------------------------------------------------------------------


def test_it_deletes_finished_runs_older_than_the_age_limit(job, history, now):
    history(job, 3, ago=timedelta(days=DAYS + 1))
    assert prune(now=now, days=DAYS, per_job=1000) == 3
    assert remaining(job) == set()


def test_it_keeps_finished_runs_newer_than_the_age_limit(job, history, now):
    recent = history(job, 3, ago=timedelta(days=DAYS - 1))
    prune(now=now, days=DAYS, per_job=1000)
    assert remaining(job) == ids(recent)


def test_it_never_deletes_a_run_still_in_flight_however_old(job, history, now):
    running = history(job, 1, status="running", ago=timedelta(days=DAYS * 3))
    prune(now=now, days=DAYS, per_job=1000)
    assert remaining(job) == ids(running)


def test_it_keeps_the_history_of_a_deleted_job_until_it_is_old(history, now):
    old, recent = history(None, 2, ago=timedelta(days=DAYS + 1)), history(None, 2)
    prune(now=now, days=DAYS, per_job=1000)
    assert set(Execution.objects.values_list("pk", flat=True)) == ids(recent)
    assert not ids(old) & set(Execution.objects.values_list("pk", flat=True))


def test_it_deletes_at_most_a_batch_by_age_per_call(job, history, now):
    history(job, 7, ago=timedelta(days=DAYS + 1))
    assert prune(now=now, days=DAYS, per_job=1000, batch=5) == 5
    assert len(remaining(job)) == 2


def test_it_deletes_the_rest_on_the_next_call(job, history, now):
    history(job, 7, ago=timedelta(days=DAYS + 1))
    prune(now=now, days=DAYS, per_job=1000, batch=5)
    assert prune(now=now, days=DAYS, per_job=1000, batch=5) == 2
    assert remaining(job) == set()


# By count per job -------------------------------------------------------------------


def test_it_keeps_the_newest_runs_of_a_job_over_the_count_limit(job, history, now):
    rows = history(job, 10)
    assert prune(now=now, days=DAYS, per_job=4) == 6
    assert remaining(job) == ids(rows[-4:])


def test_it_leaves_a_job_within_the_count_limit_alone(job, history, now):
    rows = history(job, 4)
    assert prune(now=now, days=DAYS, per_job=4) == 0
    assert remaining(job) == ids(rows)


def test_it_keeps_unacknowledged_dead_letters_under_the_count_rule(job, history, now):
    letters = history(job, 3, status="failed", dead_letter=True, ago=timedelta(hours=1))
    newer = history(job, 4)
    prune(now=now, days=DAYS, per_job=4)
    assert remaining(job) == ids(letters) | ids(newer)


def test_it_deletes_acknowledged_dead_letters_under_the_count_rule(job, history, now):
    history(job, 3, status="failed", dead_letter=True, acknowledged_at=now, ago=timedelta(hours=1))
    newer = history(job, 4)
    prune(now=now, days=DAYS, per_job=4)
    assert remaining(job) == ids(newer)


def test_it_never_deletes_waiting_runs_under_the_count_rule(job, history, now):
    waiting = history(job, 2, status="scheduled", ago=timedelta(hours=1))
    newer = history(job, 4)
    prune(now=now, days=DAYS, per_job=4)
    assert remaining(job) == ids(waiting) | ids(newer)


def test_it_deletes_at_most_a_batch_by_count_per_call(job, history, now):
    history(job, 10)
    assert prune(now=now, days=DAYS, per_job=2, batch=5) == 5
    assert len(remaining(job)) == 5


def test_it_shares_one_batch_between_the_age_and_the_count_rules(job, history, now):
    history(job, 3, ago=timedelta(days=DAYS + 1))
    history(job, 6)
    assert prune(now=now, days=DAYS, per_job=2, batch=5) == 5
    assert len(remaining(job)) == 4


def test_it_reaches_every_job_over_the_count_limit_in_turn(make_job, history, monkeypatch, now):
    # Jobs whose history was already cut back stay over the limit by run_count; they must not
    # take every turn from the jobs after them.
    monkeypatch.setattr(retention, "JOBS_PER_PASS", 2)
    jobs = [make_job(name=f"busy-{n}") for n in range(5)]
    for job in jobs:
        history(job, 3)
    for _ in range(4):
        prune(now=now, days=DAYS, per_job=1)
    assert [len(remaining(job)) for job in jobs] == [1, 1, 1, 1, 1]
