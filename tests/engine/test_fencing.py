"""A scheduling pass commits only while its node holds the lease, in its epoch (fencing).

A real TemporaScheduler and executor on the test database; the pass is run by hand, and the
leases' clocks are passed in: one node stalls past its lease, another takes over, and the
stalled one, which never noticed, wakes up and tries to commit the pass it had begun.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.base import STATE_RUNNING
from django_apscheduler.models import DjangoJob

from scheduler_app.engine import apscheduler_glue
from scheduler_app.engine.apscheduler_glue import TemporaJobStore, TemporaScheduler
from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.firing import TemporaExecutor
from scheduler_app.engine.lease import Lease, register
from scheduler_app.engine.sync import Sync
from scheduler_app.engine.writer import Writer
from scheduler_app.models import Execution
from tests.engine.test_lease import Clock

pytestmark = pytest.mark.django_db(transaction=True)
LEASE = 10


@pytest.fixture
def clock():
    return Clock(datetime.now(UTC))


@pytest.fixture
def lease(clock):
    def make(offset: float) -> Lease:
        node = register(now=clock.utc + timedelta(seconds=offset))
        return Lease(node, seconds=LEASE, clock=clock.monotonic, wallclock=clock.wall)

    return make


class HandRunScheduler(TemporaScheduler):
    """Its thread never runs a pass: the test runs each one by hand."""

    def _main_loop(self):
        pass


@pytest.fixture
def scheduler_with():
    made = []

    def make(lease: Lease) -> TemporaScheduler:
        writer = Writer()
        writer.start()
        dispatcher = Dispatcher(node=lease.node.name, writer=writer, max_workers=1)
        executor = TemporaExecutor(dispatcher=dispatcher, node=lease.node.name, is_paused=lambda: False)
        scheduler = HandRunScheduler(
            jobstores={"default": TemporaJobStore()},
            executors={"default": executor},
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1_000_000},
            lease=lease,
        )
        scheduler.start(paused=True)
        Sync(scheduler).full(now=datetime.now(UTC))
        scheduler.state = STATE_RUNNING
        made.append((scheduler, dispatcher, writer))
        return scheduler

    yield make
    for scheduler, dispatcher, writer in made:
        scheduler.shutdown(wait=False)
        dispatcher.drain(5, "test over")
        writer.stop()
        dispatcher.shutdown()


@pytest.fixture
def job(make_job):
    return make_job(
        name="every-minute",
        task="tempora.noop",
        triggers=[{"kind": "interval", "interval_seconds": 60}],
        now=datetime.now(UTC),
    )


def make_due(scheduler, job) -> None:
    """The job's stored next run, moved to a second ago: the next pass records it."""
    scheduler.modify_job(str(job.pk), next_run_time=datetime.now(UTC) - timedelta(seconds=1))


def planned(job) -> datetime:
    return DjangoJob.objects.get(id=str(job.pk)).next_run_time


def test_a_deposed_leader_commits_nothing_of_its_pass(lease, clock, scheduler_with, job):
    stalled, standby = lease(0), lease(0.001)
    assert stalled.beat()
    scheduler = scheduler_with(stalled)
    make_due(scheduler, job)
    before = planned(job)
    clock.advance(LEASE + 1)  # the leader stalls past its lease
    assert standby.beat()  # and the standby takes it over, in epoch 2
    stalled._valid_until = float("inf")  # the stalled leader never noticed: it still believes

    scheduler._process_jobs()

    assert not Execution.objects.exists()
    assert planned(job) == before  # the store's update rolled back with the rows
    assert stalled.epoch is None  # and it knows now: it stands by


def test_the_new_leader_records_what_the_deposed_one_could_not(lease, clock, scheduler_with, job):
    stalled, standby = lease(0), lease(0.001)
    stalled.beat()
    deposed = scheduler_with(stalled)
    make_due(deposed, job)
    clock.advance(LEASE + 1)
    standby.beat()
    stalled._valid_until = float("inf")
    deposed._process_jobs()

    scheduler_with(standby)._process_jobs()

    assert list(Execution.objects.values_list("job_id", "worker")) == [(job.pk, standby.node.name)]


def test_a_leader_fires_nothing_once_its_lease_lapsed_locally(lease, clock, scheduler_with, job):
    leader = lease(0)
    leader.beat()
    scheduler = scheduler_with(leader)
    make_due(scheduler, job)
    clock.advance(LEASE - leader.margin)  # no renewal came back: it may have expired elsewhere

    assert scheduler._process_jobs() == TemporaScheduler.NOT_LEADING_WAIT
    assert not Execution.objects.exists()


def test_a_leader_holding_its_lease_records_the_pass_and_renews_the_lease_with_it(lease, clock, scheduler_with, job):
    leader = lease(0)
    leader.beat()
    scheduler = scheduler_with(leader)
    make_due(scheduler, job)
    clock.advance(5)

    scheduler._process_jobs()

    assert Execution.objects.filter(job=job, worker=leader.node.name).count() == 1
    assert leader.valid_for == pytest.approx(LEASE - leader.margin)


def test_a_pass_records_at_most_pass_jobs_earliest_first_and_asks_for_the_next_at_once(
    lease, scheduler_with, make_job, monkeypatch
):
    # A burst of 10,000 one-offs in one pass started no run before all 10,000 rows were written.
    monkeypatch.setattr(apscheduler_glue, "PASS_JOBS", 2)
    leader = lease(0)
    leader.beat()
    jobs = [make_job(triggers=[{"kind": "interval", "interval_seconds": 60}]) for _ in range(3)]
    scheduler = scheduler_with(leader)
    now = datetime.now(UTC)
    for seconds_ago, job in zip((3, 1, 2), jobs, strict=True):
        scheduler.modify_job(str(job.pk), next_run_time=now - timedelta(seconds=seconds_ago))

    assert scheduler._process_jobs() == 0
    assert set(Execution.objects.values_list("job_id", flat=True)) == {jobs[0].pk, jobs[2].pk}
    assert scheduler._process_jobs() > 0  # the third, then nothing due for a minute
    assert set(Execution.objects.values_list("job_id", flat=True)) == {job.pk for job in jobs}
