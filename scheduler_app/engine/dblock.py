"""One in-process turn at writing, for SQLite.

SQLite has a single write lock. Several threads of the scheduler write (the pass, the
outcome writer, the main loop's claims, the liveness thread's heartbeat), and SQLite's busy
handler only polls, with sleeps growing to 100 ms: a thread can lose every race for seconds
while the others write back to back, and a starved heartbeat loses the lease. Taking this
turn first turns those races into a queue. An urgent writer (the heartbeat and the lease)
goes ahead of every writer waiting for the turn; it still waits for the one holding it,
as SQLite itself would make it wait. Other processes (the web) still meet the busy timeout,
rarely. PostgreSQL locks rows, not the database: there the turn is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


class _Turn:
    """A re-entrant lock whose urgent waiters go first."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._urgent = 0  # urgent threads waiting

    def acquire(self, *, urgent: bool) -> None:
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
                return
            if urgent:
                self._urgent += 1
                try:
                    self._changed.wait_for(lambda: self._owner is None)
                finally:
                    self._urgent -= 1
            else:
                self._changed.wait_for(lambda: self._owner is None and not self._urgent)
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._changed:
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._changed.notify_all()


_turn = _Turn()


@contextmanager
def writing(*, urgent: bool = False) -> Iterator[None]:
    if connection.vendor != "sqlite":
        yield
        return
    _turn.acquire(urgent=urgent)
    try:
        yield
    finally:
        _turn.release()
