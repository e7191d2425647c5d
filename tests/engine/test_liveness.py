"""The liveness thread's steps, called directly with the clocks passed in: taking the lease,
handing it over on a graceful stop, and self-fencing when the database is out of reach."""

from __future__ import annotations

import pytest

from scheduler_app.engine.lease import Lease, register
from scheduler_app.engine.liveness import Liveness
from scheduler_app.models import SchedulerNode, SchedulerState
from tests.engine.test_lease import Clock

pytestmark = pytest.mark.django_db
LEASE = 10
DEAD = 60


@pytest.fixture
def clock(now):
    return Clock(now)


@pytest.fixture
def make(clock, now):
    def make(offset: float = 0, **callbacks) -> Liveness:
        node = register(now=now.replace(microsecond=int(offset * 1000)))
        lease = Lease(node, seconds=LEASE, clock=clock.monotonic, wallclock=clock.wall)
        return Liveness(lease, dead_seconds=DEAD, **callbacks)

    return make


def node_row(liveness: Liveness) -> SchedulerNode:
    return SchedulerNode.objects.get(pk=liveness.lease.node.pk)


def test_a_standby_takes_a_free_lease_at_its_next_look_and_says_so(make):
    changes = []
    liveness = make(on_change=lambda: changes.append(True))
    liveness.tick()
    assert liveness.lease.holds() and changes == [True]
    assert node_row(liveness).role == "leader"


def test_a_standby_looks_at_the_lease_twice_a_second_not_only_when_it_beats(make, clock):
    leader, standby = make(0), make(1)
    leader.tick()
    standby.tick()
    leader.lease.release()
    clock.advance(0.5)  # long before the standby's next heartbeat (LEASE / 4)
    standby.tick()
    assert standby.lease.holds()


def test_the_leader_renews_and_beats_every_quarter_lease(make, clock):
    liveness = make()
    liveness.tick()
    beat = node_row(liveness).last_beat_at
    clock.advance(LEASE / 4 - 0.1)
    liveness.tick()
    assert node_row(liveness).last_beat_at == beat
    clock.advance(0.1)
    liveness.tick()
    assert node_row(liveness).last_beat_at > beat
    assert liveness.lease.valid_for == pytest.approx(LEASE - liveness.lease.margin)


def test_a_hand_over_stops_firing_at_once_releases_the_lease_and_beats_as_draining(make, clock):
    leaving, standby = make(0), make(1)
    leaving.tick()
    standby.tick()
    leaving.hand_over()
    assert not leaving.lease.holds()  # before any query: no pass commits from here on
    leaving.tick()
    assert SchedulerState.load().leader == ""
    assert node_row(leaving).state == "draining"
    clock.advance(0.5)
    standby.tick()
    assert SchedulerState.load().leader == standby.lease.node.name
    clock.advance(LEASE)
    leaving.tick()
    row = node_row(leaving)
    assert (row.state, row.role) == ("draining", "standby")
    assert row.last_beat_at == clock.utc  # it keeps beating: nobody recovers a draining node


def test_a_node_that_cannot_beat_for_nearly_the_dead_threshold_stops_its_own_runs(make, clock):
    silences = []
    liveness = make(on_cut_off=silences.append)
    liveness.tick()
    clock.advance(DEAD - LEASE - 1)  # no heartbeat got through since
    liveness.check_cut_off()
    assert silences == []
    clock.advance(1)
    liveness.check_cut_off()
    liveness.check_cut_off()
    assert silences == [DEAD - LEASE]  # once per outage
    assert liveness.cut_off


def test_a_node_that_beats_again_is_no_longer_cut_off(make, clock):
    liveness = make()
    liveness.tick()
    clock.advance(DEAD)
    liveness.check_cut_off()
    liveness.tick()
    liveness.check_cut_off()
    assert not liveness.cut_off
