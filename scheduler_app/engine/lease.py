"""The leader lease, with fencing.

One process holds the lease on the single SchedulerState row, taken and renewed by
conditional UPDATEs: a process is the leader only if its UPDATE changed the row. Every
take-over increments `lease_epoch`, so a leader that was deposed (it stalled, lost the
database, its lease ran out and a standby took it) can tell, even if it never noticed:

- **Locally**, a leader leads only until `seconds - margin` after it *sent* its last
  successful renewal, on the monotonic clock: it stops firing before its lease can have
  expired in anyone else's eyes (the margin covers clock skew between hosts).
- **In the database**, every transaction that acts as the leader (the scheduling pass,
  claims of waiting runs, recovery) calls `fence()` last, just before it commits: an UPDATE
  that renews the lease only if this node still holds it *with the same epoch*, and raises
  NotLeading otherwise, so the transaction rolls back. The UPDATE locks the row until the
  commit (PostgreSQL; SQLite's transaction holds the whole database), so no take-over can
  slip in between the proof and the commit.

Renewals, take-overs and heartbeats run on the liveness thread (engine/liveness.py), never
in the main loop: a slow pass or sync cannot make a live leader look dead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from scheduler_app.engine.dblock import writing
from scheduler_app.models import SchedulerNode, SchedulerState

logger = logging.getLogger(__name__)


class NotLeading(Exception):
    """Raised inside a leader's transaction that must not commit: the lease is no longer ours."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def node_name(started_at: datetime) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{started_at:%H%M%S%f}"


def register(*, now: datetime) -> SchedulerNode:
    SchedulerState.load()  # make sure the lease row exists
    return SchedulerNode.objects.create(
        name=node_name(now),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        started_at=now,
        last_beat_at=now,
        state=SchedulerNode.State.RUNNING,
    )


def _state():
    return SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID)


LOCK_WAIT_MS = 1000


@contextmanager
def _briefly() -> Iterator[None]:
    """A lease statement of the liveness thread: the write turn first (SQLite), and on
    PostgreSQL at most a second's wait for the row's lock. A fenced transaction holds it
    from its fence to its commit, normally milliseconds; one whose client hangs (a cut
    network) would otherwise hold this thread, and with it the heartbeat, for as long."""
    with writing(urgent=True):
        if connection.vendor != "postgresql":
            yield
            return
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
            yield


class Lease:
    """This node's view of the lease. `clock` is monotonic (seconds), `wallclock` answers UTC
    datetimes: both injectable, for tests."""

    def __init__(
        self,
        node: SchedulerNode,
        *,
        seconds: int,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.node = node
        self.seconds = seconds
        # Stop leading this long before the lease can expire for the others: clock skew
        # between hosts, and a commit still in flight.
        self.margin = max(1.0, seconds / 5)
        self.clock = clock
        self.wallclock = wallclock
        self.epoch: int | None = None  # the epoch we lead in; None: standing by
        self._valid_until = float("-inf")  # monotonic
        self._resigned = False  # a graceful stop: never lead again
        self._lock = threading.Lock()

    @property
    def renew_every(self) -> float:
        return max(self.seconds / 4, 0.5)

    def holds(self) -> bool:
        """May this node act as the leader right now? A local answer, no query."""
        return self.epoch is not None and not self._resigned and self.clock() < self._valid_until

    @property
    def valid_for(self) -> float:
        return max(self._valid_until - self.clock(), 0.0) if self.holds() else 0.0

    # Taking and renewing --------------------------------------------------------------

    def renew(self, *, now: datetime | None = None) -> bool:
        """The leader: extend the lease if it is still ours in this epoch."""
        epoch = self.epoch
        if epoch is None:
            return False
        sent, now = self.clock(), now or self.wallclock()
        with _briefly():
            renewed = (
                _state()
                .filter(leader=self.node.name, lease_epoch=epoch)
                .update(lease_expires_at=now + timedelta(seconds=self.seconds))
            )
        if renewed:
            self._granted(epoch, sent)
        else:
            self._deposed(epoch)
        return bool(renewed)

    def take(self, *, now: datetime | None = None) -> bool:
        """A standby: take the lease if it is free or expired. One SELECT while it is held."""
        if self._resigned:
            return False
        now = now or self.wallclock()
        row = _state().values_list("leader", "lease_expires_at", "lease_epoch").first()
        if row is None:
            SchedulerState.load()
            return False
        leader, expires, epoch = row
        if leader == self.node.name:
            # Ours in the database, not here (a renewal's answer was lost with the connection):
            # nobody took it since (the epoch would have moved), so carry on in it.
            self.epoch = epoch
            return self.renew(now=now)
        if leader and expires is not None and expires >= now:
            return False
        sent = self.clock()
        with _briefly():
            # Compare-and-set on the epoch: of two standbys, one wins, and the winner knows its epoch.
            taken = (
                _state()
                .filter(
                    Q(leader="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now), lease_epoch=epoch
                )
                .update(
                    leader=self.node.name, lease_epoch=epoch + 1, lease_expires_at=now + timedelta(seconds=self.seconds)
                )
            )
        if taken:
            self.epoch = epoch + 1
            self._granted(epoch + 1, sent)
            logger.info("%s is now the leader (lease epoch %d)", self.node.name, epoch + 1)
        return bool(taken)

    def fence(self) -> None:
        """Inside the caller's transaction, as its last statement: prove this node still holds
        the lease in its epoch, and renew it with the commit; NotLeading if not (roll back)."""
        epoch, sent = self.epoch, self.clock()
        if not self.holds():
            raise NotLeading(f"{self.node.name} does not hold a valid lease")
        held = (
            _state()
            .filter(leader=self.node.name, lease_epoch=epoch)
            .update(lease_expires_at=self.wallclock() + timedelta(seconds=self.seconds))
        )
        if not held:
            self._deposed(epoch)
            raise NotLeading(f"{self.node.name} was deposed (lease epoch {epoch} is over)")
        transaction.on_commit(lambda: self._granted(epoch, sent))

    def _granted(self, epoch: int, sent: float) -> None:
        with self._lock:
            if self.epoch == epoch:
                self._valid_until = max(self._valid_until, sent + self.seconds - self.margin)

    def _deposed(self, epoch: int) -> None:
        with self._lock:
            if self.epoch != epoch:
                return
            self.epoch, self._valid_until = None, float("-inf")
        logger.warning("%s lost the lease (epoch %d) and stands by", self.node.name, epoch)

    # Stepping down --------------------------------------------------------------------

    def resign(self) -> None:
        """Stop acting as the leader at once, for good (local, no lock: a signal handler calls
        it): no fenced transaction commits after this."""
        self._resigned = True

    def release(self) -> None:
        """Give the lease back, so a standby takes it at its next look (after resign())."""
        epoch = self.epoch
        self.resign()
        if epoch is None:
            return
        with _briefly():
            _state().filter(leader=self.node.name, lease_epoch=epoch).update(leader="", lease_expires_at=None)
        with self._lock:
            if self.epoch == epoch:
                self.epoch = None

    # The heartbeat --------------------------------------------------------------------

    def heartbeat(self, *, now: datetime | None = None, state: str = SchedulerNode.State.RUNNING) -> None:
        """Refresh this node's row. state=running too after an outage: a node that could not
        beat for longer than the dead threshold was marked stopped by another node's recovery;
        left so, recovery would skip it for good once it really dies."""
        role = SchedulerNode.Role.LEADER if self.epoch is not None else SchedulerNode.Role.STANDBY
        with writing(urgent=True):
            SchedulerNode.objects.filter(pk=self.node.pk).update(
                last_beat_at=now or self.wallclock(), role=role, state=state
            )
        self.node.role = role

    def beat(self, *, now: datetime | None = None) -> bool:
        """Renew or take the lease, then refresh the heartbeat. Answers: do we lead?"""
        leading = self.renew(now=now) if self.epoch is not None else self.take(now=now)
        self.heartbeat(now=now)
        return leading
