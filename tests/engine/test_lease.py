"""Heartbeats, the leader lease and its fencing, with the clocks passed in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from scheduler_app.engine.lease import Lease, NotLeading, register
from scheduler_app.models import Execution, SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db
LEASE = 10
MARGIN = 2  # max(1, LEASE / 5)


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


class Clock:
    """One instant for every process of the test: a monotonic reading and the UTC time."""

    def __init__(self, now) -> None:
        self.utc = now
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def wall(self):
        return self.utc

    def advance(self, by: float) -> None:
        self.mono += by
        self.utc += seconds(by)


@pytest.fixture
def clock(now):
    return Clock(now)


@pytest.fixture
def first(now, clock):
    return Lease(register(now=now), seconds=LEASE, clock=clock.monotonic, wallclock=clock.wall)


@pytest.fixture
def second(now, clock):
    return Lease(register(now=now + seconds(0.001)), seconds=LEASE, clock=clock.monotonic, wallclock=clock.wall)


def lease_row() -> SchedulerState:
    return SchedulerState.load()


def test_it_gives_each_process_a_distinct_heartbeat_row(first, second):
    assert first.node.name != second.node.name
    assert SchedulerNode.objects.count() == 2


def test_it_gives_the_lease_to_the_first_beat_in_a_new_epoch(first, now):
    assert first.beat() is True
    row = lease_row()
    assert (row.leader, row.lease_expires_at, row.lease_epoch) == (first.node.name, now + seconds(LEASE), 1)
    assert first.holds() and first.epoch == 1


def test_it_records_the_leader_role_on_the_heartbeat_row(first, second):
    first.beat()
    second.beat()
    roles = dict(SchedulerNode.objects.values_list("name", "role"))
    assert roles == {first.node.name: "leader", second.node.name: "standby"}


def test_it_refreshes_the_heartbeat_on_every_beat(first, clock, now):
    first.beat()
    clock.advance(3)
    first.beat()
    first.node.refresh_from_db()
    assert first.node.last_beat_at == now + seconds(3)


def test_it_keeps_a_second_process_standing_by_while_the_lease_is_fresh(first, second, clock):
    first.beat()
    clock.advance(9)
    assert second.beat() is False
    assert not second.holds()
    assert lease_row().leader == first.node.name


def test_it_lets_a_second_process_take_an_expired_lease_in_the_next_epoch(first, second, clock, now):
    first.beat()
    clock.advance(LEASE + 1)
    assert second.beat() is True
    row = lease_row()
    assert (row.leader, row.lease_epoch) == (second.node.name, 2)
    assert row.lease_expires_at == now + seconds(2 * LEASE + 1)


def test_it_renews_the_lease_for_its_holder_in_the_same_epoch(first, clock, now):
    first.beat()
    clock.advance(4)
    assert first.beat() is True
    assert (lease_row().lease_expires_at, lease_row().lease_epoch) == (now + seconds(4 + LEASE), 1)
    clock.advance(LEASE - MARGIN - 0.1)
    assert first.holds()


def test_it_keeps_the_lease_of_a_holder_that_renews_in_time(first, second, clock):
    first.beat()
    clock.advance(8)
    first.beat()
    clock.advance(3)
    assert second.beat() is False


def test_it_stops_leading_a_margin_before_its_lease_can_expire_elsewhere(first, clock):
    first.beat()
    clock.advance(LEASE - MARGIN - 0.001)
    assert first.holds()
    clock.advance(0.001)
    assert not first.holds()
    assert first.epoch == 1  # not deposed: a late renewal in the same epoch still leads


def test_it_leads_again_after_a_late_renewal_nobody_took_over(first, clock):
    first.beat()
    clock.advance(LEASE + 5)  # a database outage: no renewal
    assert not first.holds()
    assert first.beat() is True
    assert first.holds() and first.epoch == 1


def test_it_frees_the_lease_on_release_and_a_standby_takes_it_at_once(first, second):
    first.beat()
    first.release()
    assert (lease_row().leader, lease_row().lease_expires_at) == ("", None)
    assert not first.holds()
    assert second.beat() is True
    assert lease_row().lease_epoch == 2


def test_it_does_not_free_a_lease_it_no_longer_holds(first, second, clock):
    first.beat()
    clock.advance(LEASE + 1)
    second.beat()
    first.release()
    assert lease_row().leader == second.node.name


def test_it_steps_down_when_another_process_took_the_lease(first, second, clock):
    first.beat()
    clock.advance(LEASE + 1)
    second.beat()
    clock.advance(1)
    assert first.beat() is False
    assert not first.holds() and first.epoch is None
    first.node.refresh_from_db()
    assert first.node.role == "standby"


def test_a_resigned_leader_stops_at_once_and_never_takes_the_lease_again(first):
    first.beat()
    first.resign()
    assert not first.holds()
    first.release()
    assert first.take() is False


def test_it_marks_a_process_running_again_when_it_beats_after_being_declared_dead(first, clock):
    # A long database outage: another node recovered this one (state stopped) though it lives.
    SchedulerNode.objects.filter(pk=first.node.pk).update(state=SchedulerNode.State.STOPPED)
    clock.advance(70)
    first.beat()
    first.node.refresh_from_db()
    assert first.node.state == "running"


# Fencing -------------------------------------------------------------------------------------


def a_row(make_job, now) -> None:
    job = make_job(name="fenced")
    Execution.objects.create(job=job, job_name=job.name, scheduled_for=now, run_after=now, status="queued")


def test_the_fence_renews_the_lease_with_the_commit(first, clock, now, django_capture_on_commit_callbacks):
    first.beat()
    clock.advance(5)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first.fence()
    assert lease_row().lease_expires_at == now + seconds(5 + LEASE)
    assert first.valid_for == pytest.approx(LEASE - MARGIN)


def test_a_deposed_leader_cannot_commit_a_fenced_transaction(first, second, clock, make_job, now):
    first.beat()
    clock.advance(LEASE + 1)  # stalled: never renewed, and never noticed
    second.beat()
    first._valid_until = float("inf")  # even a leader that believes its lease is still good
    with pytest.raises(NotLeading), transaction.atomic():
        a_row(make_job, now)
        first.fence()
    assert not Execution.objects.exists()
    assert first.epoch is None
    assert (lease_row().leader, lease_row().lease_epoch) == (second.node.name, 2)


def test_a_leader_whose_lease_lapsed_locally_commits_nothing(first, clock, make_job, now):
    first.beat()
    clock.advance(LEASE - MARGIN)  # the database still names it, but the lease may expire elsewhere
    with pytest.raises(NotLeading), transaction.atomic():
        a_row(make_job, now)
        first.fence()
    assert not Execution.objects.exists()


def test_a_standby_cannot_commit_a_fenced_transaction(first, second, make_job, now):
    first.beat()
    second.beat()
    with pytest.raises(NotLeading), transaction.atomic():
        a_row(make_job, now)
        second.fence()
    assert not Execution.objects.exists()


def test_a_resigned_leader_cannot_commit_a_fenced_transaction(first, make_job, now):
    first.beat()
    first.resign()
    with pytest.raises(NotLeading), transaction.atomic():
        a_row(make_job, now)
        first.fence()
    assert not Execution.objects.exists()
