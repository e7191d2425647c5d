"""Heartbeats and the leader lease, with the clock passed in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.engine.lease import Lease, register
from scheduler_app.models import SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db
LEASE = 10


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def first(now):
    return Lease(register(now=now), seconds=LEASE)


@pytest.fixture
def second(now):
    return Lease(register(now=now + seconds(0.001)), seconds=LEASE)


def lease_row() -> SchedulerState:
    return SchedulerState.load()


def test_it_gives_each_process_a_distinct_heartbeat_row(first, second):
    assert first.node.name != second.node.name
    assert SchedulerNode.objects.count() == 2


def test_it_gives_the_lease_to_the_first_beat(first, now):
    assert first.beat(now=now) is True
    assert (lease_row().leader, lease_row().lease_expires_at) == (first.node.name, now + seconds(LEASE))
    assert first.is_leader(now)


def test_it_records_the_leader_role_on_the_heartbeat_row(first, second, now):
    first.beat(now=now)
    second.beat(now=now)
    roles = dict(SchedulerNode.objects.values_list("name", "role"))
    assert roles == {first.node.name: "leader", second.node.name: "standby"}


def test_it_refreshes_the_heartbeat_on_every_beat(first, now):
    first.beat(now=now)
    first.beat(now=now + seconds(3))
    first.node.refresh_from_db()
    assert first.node.last_beat_at == now + seconds(3)


def test_it_keeps_a_second_process_standing_by_while_the_lease_is_fresh(first, second, now):
    first.beat(now=now)
    assert second.beat(now=now + seconds(9)) is False
    assert not second.is_leader(now + seconds(9))
    assert lease_row().leader == first.node.name


def test_it_lets_a_second_process_take_the_lease_once_it_expired(first, second, now):
    first.beat(now=now)
    assert second.beat(now=now + seconds(LEASE + 1)) is True
    assert lease_row().leader == second.node.name
    assert lease_row().lease_expires_at == now + seconds(2 * LEASE + 1)


def test_it_renews_the_lease_for_its_holder(first, now):
    first.beat(now=now)
    assert first.beat(now=now + seconds(4)) is True
    assert lease_row().lease_expires_at == now + seconds(4 + LEASE)
    assert first.is_leader(now + seconds(LEASE + 2))


def test_it_keeps_the_lease_of_a_holder_that_renews_in_time(first, second, now):
    first.beat(now=now)
    first.beat(now=now + seconds(8))
    assert second.beat(now=now + seconds(LEASE + 1)) is False


def test_it_frees_the_lease_on_release(first, second, now):
    first.beat(now=now)
    first.release()
    assert (lease_row().leader, lease_row().lease_expires_at) == ("", None)
    assert not first.is_leader(now)
    assert second.beat(now=now + seconds(1)) is True


def test_it_does_not_free_a_lease_it_no_longer_holds(first, second, now):
    first.beat(now=now)
    second.beat(now=now + seconds(LEASE + 1))
    first.release()
    assert lease_row().leader == second.node.name


def test_it_stops_leading_when_its_own_lease_ends_without_renewal(first, now):
    first.beat(now=now)
    assert first.is_leader(now + seconds(LEASE - 0.001))
    assert not first.is_leader(now + seconds(LEASE))


def test_it_steps_down_when_another_process_took_the_lease(first, second, now):
    first.beat(now=now)
    second.beat(now=now + seconds(LEASE + 1))
    assert first.beat(now=now + seconds(LEASE + 2)) is False
    assert not first.is_leader(now + seconds(LEASE + 2))
    first.node.refresh_from_db()
    assert first.node.role == "standby"


def test_it_forgets_the_lease_when_told_it_was_lost(first, now):
    first.beat(now=now)
    first.lost()
    assert not first.is_leader(now)


def test_it_marks_a_process_running_again_when_it_beats_after_being_declared_dead(first, now):
    # A long database outage: another node recovered this one (state stopped) though it lives.
    SchedulerNode.objects.filter(pk=first.node.pk).update(state=SchedulerNode.State.STOPPED)
    first.beat(now=now + seconds(40))
    first.node.refresh_from_db()
    assert first.node.state == "running"
