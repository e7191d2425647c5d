"""Telling running schedulers that something changed, so they look now, not at their next poll.

A service that changes what the scheduler acts on (a job, a run-now request, a cancel, the
scheduler's state) wakes every scheduler when its transaction commits, and each scheduler's
listener (engine/listener.py) wakes its loop, which applies the change within milliseconds:
- on PostgreSQL by NOTIFY on CHANNEL, which every scheduler LISTENs to, wherever it runs;
- on SQLite (one host) by a datagram to each scheduler's socket in VAR_DIR/wake/.
Nothing depends on the wake-up arriving: a bulk UPDATE outside the services, a web process
with another VAR_DIR, a listener reconnecting — the loop's poll (`runscheduler --poll`, half a
second by default) finds every change as before. The wake-up only shortens the wait.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from scheduler_app.conf import tempora_settings

logger = logging.getLogger(__name__)

CHANNEL = "tempora_changes"


def notify() -> None:
    """After the current transaction commits (at once outside one), wake the schedulers.
    A rolled-back change wakes nobody; a transaction that calls this many times, once each."""
    transaction.on_commit(_notify_postgresql if connection.vendor == "postgresql" else _notify_sockets)


def wake_directory() -> Path:
    return Path(tempora_settings.VAR_DIR) / "wake"


def _notify_postgresql() -> None:
    try:
        with connection.cursor() as cursor:
            # One payload for every change: PostgreSQL folds identical notifications of one
            # transaction into one, and the scheduler reads what changed from the rows.
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    except DatabaseError as exc:
        # The change is committed; the schedulers' poll finds it.
        logger.warning("could not notify the schedulers of a change (%s); they find it at their next poll", exc)


def _notify_sockets() -> None:
    try:
        sockets = list(wake_directory().glob("*.sock"))
    except OSError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in sockets:
            try:
                sender.sendto(b"!", str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)  # its scheduler died without removing it
            except OSError:
                pass  # its queue is full (it has wake-ups waiting) or it just went away
