"""The scheduler's ear for changes.notify(): a thread that wakes the loop when a service commits.

On PostgreSQL it LISTENs on a connection of its own; on SQLite it reads a datagram socket of
its own in VAR_DIR/wake/. Each wake-up makes the loop (Engine._wake) run its next round at
once, instead of at its next poll. A lost connection is logged and retried with a growing
wait; a socket that cannot be made is logged once. Meanwhile the poll finds every change.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

from scheduler_app.changes import CHANNEL, wake_directory

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # how long one wait lasts before the thread looks for a stop


class Listener:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tempora-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(WAIT_SECONDS + 1)

    def _run(self) -> None:
        if connection.vendor == "postgresql":
            self._listen()
        else:
            self._read_socket()

    def _listen(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            ear = connections.create_connection(DEFAULT_DB_ALIAS)  # this thread's own, in autocommit
            try:
                ear.ensure_connection()
                ear.connection.execute(f"LISTEN {CHANNEL}")
                delay = 0.5
                self.on_change()  # what changed while it was not listening
                while not self._stopping.is_set():
                    for _notification in ear.connection.notifies(timeout=WAIT_SECONDS):
                        self.on_change()
            except (DatabaseError, ear.Database.Error) as exc:
                logger.warning("not listening for changes (%s); retrying in %.1fs, polling meanwhile", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)
            finally:
                try:
                    ear.close()
                except (DatabaseError, ear.Database.Error):
                    pass

    def _read_socket(self) -> None:
        path = wake_directory() / f"{os.getpid()}.sock"  # short: a socket path has ~100 bytes at most
        ear = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a dead process's, of the same pid
            ear.bind(str(path))
        except OSError as exc:
            logger.warning("no wake-up socket (%s): changes are found by the poll", exc)
            ear.close()
            return
        ear.settimeout(WAIT_SECONDS)
        try:
            while not self._stopping.is_set():
                try:
                    ear.recv(64)
                except TimeoutError:
                    continue
                self.on_change()
        finally:
            ear.close()
            path.unlink(missing_ok=True)
