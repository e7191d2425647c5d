"""Recovering what a dead scheduler node left behind, with the clock passed in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.engine.recovery import recover
from scheduler_app.models import Execution, SchedulerNode

pytestmark = pytest.mark.django_db
LEASE = 10


@pytest.fixture
def make_node(now):
    def make(name: str, *, beat_seconds_ago: float, state: str = SchedulerNode.State.RUNNING) -> SchedulerNode:
        at = now - timedelta(seconds=beat_seconds_ago)
        return SchedulerNode.objects.create(
            name=name, hostname="host", pid=1, started_at=at, last_beat_at=at, state=state
        )

    return make


@pytest.fixture
def dead(make_node):
    return make_node("host:101:dead", beat_seconds_ago=LEASE + 5)


@pytest.fixture
def live(make_node):
    return make_node("host:102:live", beat_seconds_ago=2)


@pytest.fixture
def job(make_job):
    return make_job(name="import-orders", max_retries=2, retry_backoff=30)


def recover_now(now) -> int:
    return recover(now=now, lease_seconds=LEASE, me="host:103:me")


def test_it_marks_a_node_without_a_recent_heartbeat_stopped(dead, now):
    recover_now(now)
    dead.refresh_from_db()
    assert dead.state == "stopped"


def test_it_leaves_a_node_with_a_recent_heartbeat_alone(live, now):
    recover_now(now)
    live.refresh_from_db()
    assert live.state == "running"


def test_it_marks_the_running_runs_of_a_dead_node_lost(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    assert recover_now(now) == 1
    run.refresh_from_db()
    assert (run.status, run.finished_at) == ("lost", now)


def test_it_marks_the_queued_runs_of_a_dead_node_lost(dead, job, make_execution, now):
    run = make_execution(job, status="queued", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_names_the_dead_node_in_the_error(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert dead.name in run.error
    assert run.error.startswith("Lost: its scheduler host:101:dead stopped sending heartbeats at")


def test_it_retries_a_lost_run_of_a_job_with_retries_left(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    retry = Execution.objects.get(job=job, attempt=2)
    assert (retry.status, retry.reason, retry.scheduled_for) == ("scheduled", "retry", run.scheduled_for)
    assert retry.run_after > now
    run.refresh_from_db()
    assert run.dead_letter is False


def test_it_makes_a_lost_run_without_retries_left_a_dead_letter(dead, make_job, make_execution, now):
    job = make_job(name="no-retries", max_retries=0)
    run = make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert (run.status, run.dead_letter) == ("lost", True)
    assert not Execution.objects.filter(job=job, attempt=2).exists()


def test_it_counts_a_lost_run_as_a_failed_run_of_its_job(dead, job, make_execution, now):
    make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    job.refresh_from_db()
    assert (job.run_count, job.failure_count, job.last_status) == (1, 1, "lost")


def test_it_marks_a_lost_run_of_a_deleted_job_lost(dead, make_execution, now):
    run = make_execution(None, status="running", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "lost"


def test_it_leaves_celery_runs_of_a_dead_node_to_the_broker(dead, job, make_execution, now):
    run = make_execution(job, status="running", worker=dead.name, task_id="tempora-1")
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_leaves_the_runs_of_a_live_node_alone(live, job, make_execution, now):
    run = make_execution(job, status="running", worker=live.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_leaves_finished_runs_of_a_dead_node_alone(dead, job, make_execution, now):
    run = make_execution(job, status="succeeded", worker=dead.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_it_never_recovers_itself(make_node, job, make_execution, now):
    me = make_node("host:103:me", beat_seconds_ago=LEASE + 5)
    run = make_execution(job, status="running", worker=me.name)
    recover_now(now)
    run.refresh_from_db()
    assert run.status == "running"


def test_it_recovers_a_dead_node_only_once(dead, job, make_execution, now):
    make_execution(job, status="running", worker=dead.name)
    recover_now(now)
    assert recover_now(now + timedelta(seconds=1)) == 0
    assert Execution.objects.filter(job=job, attempt=2).count() == 1
