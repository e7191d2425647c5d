"""One in-process turn at writing, for SQLite.

SQLite has a single write lock. Several threads of the scheduler write (the pass, the
outcome writer, the main loop's heartbeat and claims), and SQLite's busy handler only polls,
with sleeps growing to 100 ms: a thread can lose every race for seconds while the others
write back to back, and a starved heartbeat loses the lease. Taking this lock first turns
those races into a queue. Other processes (the web) still meet the busy timeout, rarely.
PostgreSQL locks rows, not the database: there the lock is skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_turn = threading.RLock()


@contextmanager
def writing() -> Iterator[None]:
    if connection.vendor != "sqlite":
        yield
        return
    with _turn:
        yield
