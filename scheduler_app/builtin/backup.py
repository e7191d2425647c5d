"""tempora.backup_database: a consistent copy of a database, written atomically.

SQLite: the online backup API copies a snapshot while other connections keep writing.
PostgreSQL: `pg_dump --format=custom` (restore with `pg_restore`); the password travels in
PGPASSWORD, never on the command line, where `ps` would show it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}

# Connection OPTIONS that pg_dump reads from the environment (libpq's names).
_LIBPQ_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


class BackupError(RuntimeError):
    """The backup could not be made; the message says why."""


def backup(
    destination: str | os.PathLike | None = None, *, using: str = "default", now: datetime | None = None
) -> dict:
    connection = connections[using]
    engine = connection.vendor
    if engine not in SUFFIXES:
        raise BackupError(f"backup_database supports SQLite and PostgreSQL; the {using!r} database is {engine}.")
    target = target_path(destination, engine, now or datetime.now(UTC))
    database = str(connection.settings_dict["NAME"])
    logger.info("backing up the %s database %s to %s", engine, database, target)
    started = time.monotonic()
    with atomic_file(target) as partial:
        if engine == "sqlite":
            sqlite_backup(connection, partial)
        else:
            pg_dump(connection.settings_dict, partial)
    duration_ms = round((time.monotonic() - started) * 1000)
    size = target.stat().st_size
    logger.info("backup written: %s (%d bytes in %d ms)", target, size, duration_ms)
    return {"path": str(target), "size_bytes": size, "engine": engine, "database": database, "duration_ms": duration_ms}


def target_path(destination: str | os.PathLike | None, engine: str, now: datetime) -> Path:
    """Where the backup goes.

    A directory (the default SCHEDULER_BACKUP_DIR, an existing directory, a path ending in "/",
    or a name without an extension) gets `tempora-sqlite-2026-03-01T120000.000000Z.sqlite3`;
    any other path is the backup file itself.
    """
    if destination is None or str(destination) == "":
        directory, name = Path(settings.SCHEDULER_BACKUP_DIR), None
    else:
        path = Path(destination).expanduser()
        if path.is_dir() or str(destination).endswith(("/", os.sep)) or not path.suffix:
            directory, name = path, None
        else:
            directory, name = path.parent, path.name
    if name is None:
        # Microseconds keep two backups in one second apart; the Z says the stamp is UTC.
        name = f"tempora-{engine}-{now.astimezone(UTC):%Y-%m-%dT%H%M%S.%fZ}{SUFFIXES[engine]}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"Cannot create the backup directory {directory}: {exc}") from exc
    return directory / name


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it to `target` only if the block succeeds.

    A reader never sees a half-written backup, and a failed one leaves nothing behind.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def sqlite_backup(connection: Any, path: Path) -> None:
    """Copy the SQLite database behind `connection` to `path` with the online backup API."""
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or "mode=memory" in name:
        # An in-memory database exists only inside Django's own connection.
        connection.ensure_connection()
        _copy(connection.connection, path)
        return
    if not Path(name).is_file():
        raise BackupError(f"The SQLite database {name} does not exist.")
    timeout = connection.settings_dict.get("OPTIONS", {}).get("timeout", 20)
    # mode=rw: never create an empty database where the real one was expected.
    with closing(sqlite3.connect(f"{Path(name).resolve().as_uri()}?mode=rw", uri=True, timeout=timeout)) as source:
        _copy(source, path)


def _copy(source: sqlite3.Connection, path: Path) -> None:
    with closing(sqlite3.connect(path)) as target:
        # pages=-1 (the default) copies everything in one step under one read snapshot, so
        # writes by other connections during the copy cannot make it inconsistent.
        source.backup(target)
        # The copy inherits WAL mode; switch it back so the backup is one self-contained file.
        target.execute("PRAGMA journal_mode=DELETE")


def pg_dump(settings_dict: dict, path: Path) -> None:
    """Run pg_dump for the database `settings_dict` describes (Django's DATABASES entry) into `path`."""
    executable = shutil.which("pg_dump")
    if executable is None:
        raise BackupError("pg_dump is not installed (or not on PATH); install the PostgreSQL client tools.")
    command = [executable, "--format=custom", "--no-password", f"--file={path}"]
    for option, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if settings_dict.get(key):
            command.append(f"{option}={settings_dict[key]}")
    command.append(f"--dbname={settings_dict['NAME']}")
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    for option, variable in _LIBPQ_ENV.items():
        value = settings_dict.get("OPTIONS", {}).get(option)
        if value is not None:
            env[variable] = str(value)
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump exited with status {done.returncode}: {done.stderr.strip() or '(no output)'}")
    if done.stderr.strip():
        logger.warning("pg_dump: %s", done.stderr.strip())
