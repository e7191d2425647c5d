"""This node's liveness: the heartbeat and the lease on a thread of their own, the hand-over
on a graceful stop, self-fencing when cut off, and proof that a node on this host is dead.

The `tempora-liveness` thread (and so its own database connection) renews the lease and
refreshes the heartbeat every `lease / 4` seconds, and a standby looks at the lease every
half second (one SELECT) and takes it once it is free or expired. It never waits for a
pass, a sync or their locks (on SQLite it goes first in the write turn, see dblock.py), so
a slow scheduler is never mistaken for a dead one.

A graceful stop hands over at once: firing stops (Lease.resign), this thread gives the
lease back, and a standby takes it at its next look, within a second; this node then
drains its runs while this thread keeps beating with state `draining`, so nobody recovers it.

Dead is decided by others (recovery.dead_nodes) from a threshold longer than the lease,
SCHEDULER_NODE_DEAD_SECONDS: a node silent that long is dead. A node that has been unable to
beat for nearly that long (the threshold less one lease) fences itself: it stops every run
it has, recorded `lost`, so nothing of it runs on once others may call it dead.

On one host there is a faster proof: every node keeps a file locked while it lives
(NodeLock); the kernel drops the lock when the process dies, even by `kill -9`, so a node of
this host whose file can be locked is dead for sure, whatever its heartbeat says.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, close_old_connections, connection

from scheduler_app.conf import tempora_settings
from scheduler_app.engine.lease import Lease
from scheduler_app.models import SchedulerNode

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often a standby looks at the lease
FENCE_CHECK_SECONDS = 1.0


class Liveness:
    def __init__(
        self,
        lease: Lease,
        *,
        dead_seconds: int,
        on_change: Callable[[], None] = lambda: None,
        on_cut_off: Callable[[float], None] = lambda silent: None,
    ) -> None:
        self.lease = lease
        self.clock = lease.clock
        self.dead_seconds = dead_seconds
        self.self_fence_after = dead_seconds - lease.seconds
        self.state = SchedulerNode.State.RUNNING
        self.last_beat = self.clock()  # monotonic: when the last heartbeat the database took was sent
        self.cut_off = False
        self._on_change = on_change
        self._on_cut_off = on_cut_off
        self._next_beat = 0.0
        self._hand_over = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._errors = 0
        self._threads = [
            threading.Thread(target=self._run, name="tempora-liveness", daemon=True),
            threading.Thread(target=self._watch, name="tempora-self-fence", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def hand_over(self) -> None:
        """Stop leading now and give the lease back; keep beating, as `draining`.

        Safe in a signal handler: it takes no lock. Firing stops here (no fenced transaction
        commits after resign); the release itself is this thread's, at once.
        """
        self._hand_over = True
        self.lease.resign()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._hand_over = True
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    # The liveness thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._step()
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
        self._step()  # the hand-over, if the stop came before this thread saw it
        connection.close()  # this thread's own connection: leave no session behind

    def _step(self) -> None:
        close_old_connections()
        try:
            self.tick()
            if self._errors:
                logger.warning("liveness: the database answers again after %d failed attempt(s)", self._errors)
            self._errors = 0
        except DatabaseError as exc:
            self._errors += 1
            if self._errors == 1 or self._errors % 20 == 0:
                logger.error(
                    "liveness: heartbeat or lease failed (%s); %.1fs since the last heartbeat",
                    exc,
                    self.clock() - self.last_beat,
                )
            try:
                connection.close()
            except DatabaseError:
                pass

    def tick(self) -> None:
        """One look: hand over if asked, take the lease if free (standby), renew it and beat when due."""
        lease = self.lease
        leading = lease.epoch is not None
        if self._hand_over and self.state != SchedulerNode.State.DRAINING:
            lease.release()
            self.state = SchedulerNode.State.DRAINING
            self._next_beat = 0.0
        elif not self._hand_over and not leading and lease.take():
            self._next_beat = 0.0  # record the new role at once
        now = self.clock()
        if now >= self._next_beat:
            if not self._hand_over and lease.epoch is not None:
                lease.renew()
            lease.heartbeat(state=self.state)
            self.last_beat, self._next_beat = now, now + lease.renew_every
        if (lease.epoch is not None) != leading:
            self._on_change()

    # Self-fencing ----------------------------------------------------------------------

    def _watch(self) -> None:
        """Its own thread: the liveness thread may hang in a query when the database is cut off."""
        while not self._stopping.wait(FENCE_CHECK_SECONDS):
            self.check_cut_off()

    def check_cut_off(self) -> None:
        silent = self.clock() - self.last_beat
        if silent >= self.self_fence_after and not self.cut_off:
            self.cut_off = True
            logger.error(
                "%s could not beat for %.0fs (dead after %ds): stopping its own runs",
                self.lease.node.name,
                silent,
                self.dead_seconds,
            )
            self._on_cut_off(silent)
        elif silent < self.self_fence_after and self.cut_off:
            self.cut_off = False
            logger.warning("%s beats again", self.lease.node.name)


# Proof of death on this host ----------------------------------------------------------------


def _lock_dir() -> Path | None:
    return tempora_settings.VAR_DIR / "nodes"


class NodeLock:
    """A file this process keeps locked (flock) for as long as it lives."""

    def __init__(self, name: str) -> None:
        self.name = name
        directory = _lock_dir()
        self.path = directory / f"{name}.lock" if directory else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not inherited across exec (Python's default): a job's subprocess must not keep it.
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            # An unlocked file would prove this live node dead: leave none behind.
            logger.warning("cannot lock %s (%s): recovery falls back to the dead threshold", self.path, exc)
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd, self.path = None, None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def proven_dead(node: SchedulerNode) -> bool:
    """True only if `node` ran on this host and its lock file is free: it is gone for sure.

    False says nothing (another host, another VAR_DIR, a node that predates the lock files):
    then only the dead threshold decides.
    """
    directory = _lock_dir()
    if directory is None or node.hostname != socket.gethostname():
        return False
    path = directory / f"{node.name}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: the process lives
    else:
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
