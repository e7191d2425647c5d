"""tempora.backup_database: a consistent copy of a database, written atomically, inside the backup directory.

SQLite: the online backup API copies a snapshot while other connections keep writing.
PostgreSQL: `pg_dump --format=custom` (restore with `pg_restore`); the password travels in
PGPASSWORD, never on the command line, where `ps` would show it.

Fenced: a destination is a name relative to TEMPORA_BACKUP_DIR that follows no link
(paths.py); a backup never replaces a file (it appears by link(2), which fails on an
existing name) and is never written where the web server serves files. A copy of the
database holds every session and token: it is created mode 0600.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import connections
from django.utils.translation import gettext

from scheduler_app.builtin import Refused, conf, paths

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


@dataclass(frozen=True)
class Destination:
    """Where a backup goes: `parts` of a directory below `base`, and a file name (None: a new timestamped one)."""

    value: str
    base: Path
    parts: tuple[str, ...]
    name: str | None


def check(destination: str | None = None) -> Destination:
    """The destination's fences that need no disk (at save and at run): a relative name, no `..`,
    a backup directory that is configured and not served by the web server.

    A directory (none given, a name ending in "/", or a name without an extension) gets
    `tempora-sqlite-2026-03-01T120000.000000Z.sqlite3`; any other name is the file itself.
    """
    base = conf.backup_dir()
    if base is None:
        raise Refused(gettext("destination: no backup directory is configured (TEMPORA_BACKUP_DIR)."))
    served = conf.served_by(base)
    if served:
        raise Refused(
            gettext(
                "destination: the backup directory %(directory)s is inside %(setting)s, which the web server "
                "serves to anyone; set TEMPORA_BACKUP_DIR elsewhere."
            )
            % {"directory": base, "setting": served}
        )
    value = "" if destination is None else destination
    parts = paths.relative_parts(value, "destination", gettext("the backup directory")) if value else ()
    name = None
    if parts and not value.endswith("/") and Path(parts[-1]).suffix:
        parts, name = parts[:-1], parts[-1]
    served = conf.served_by(base.joinpath(*parts))
    if served:
        raise Refused(
            gettext("destination: %(value)r is inside %(setting)s, which the web server serves to anyone.")
            % {"value": value, "setting": served}
        )
    return Destination(value=value, base=base, parts=parts, name=name)


def validate(arguments: dict) -> None:
    """@task(validate=...): the checks a job's arguments get when it is saved."""
    check(arguments["destination"])


def backup(destination: str | None = None, *, using: str = "default", now: datetime | None = None) -> dict:
    where = check(destination)
    connection = connections[using]
    engine = connection.vendor
    if engine not in SUFFIXES:
        raise BackupError(f"backup_database supports SQLite and PostgreSQL; the {using!r} database is {engine}.")
    # Microseconds keep two backups in one second apart; the Z says the stamp is UTC.
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    name = where.name or f"tempora-{engine}-{stamp:%Y-%m-%dT%H%M%S.%fZ}{SUFFIXES[engine]}"
    database = str(connection.settings_dict["NAME"])
    started = time.monotonic()
    with _directory(where) as (directory, directory_fd):
        target = directory / name
        logger.info("backing up the %s database %s to %s", engine, database, target)
        with exclusive_file(directory_fd, directory, name, "/".join((*where.parts, name))) as (output, partial):
            if engine == "sqlite":
                sqlite_backup(connection, partial)
            else:
                pg_dump(connection.settings_dict, output)
        size = os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_size
    duration_ms = round((time.monotonic() - started) * 1000)
    logger.info("backup written: %s (%d bytes in %d ms)", target, size, duration_ms)
    return {"path": str(target), "size_bytes": size, "engine": engine, "database": database, "duration_ms": duration_ms}


@contextmanager
def _directory(where: Destination) -> Iterator[tuple[Path, int]]:
    """The destination's directory, made if missing, links refused: its real path and a descriptor."""
    try:
        where.base.mkdir(parents=True, exist_ok=True)
        fd = paths.open_directory(where.base, where.parts, create=True)
    except paths.Blocked as exc:
        if exc.link:
            text = gettext(
                "destination: %(value)r goes through %(part)r, a symbolic link; backups are written "
                "only inside the backup directory and follow no links."
            )
        else:
            text = gettext("destination: %(value)r goes through %(part)r, which is not a directory.")
        raise Refused(text % {"value": where.value, "part": exc.part}) from None
    except OSError as exc:
        raise BackupError(f"Cannot create the backup directory {where.base.joinpath(*where.parts)}: {exc}") from exc
    try:
        yield where.base.resolve().joinpath(*where.parts), fd
    finally:
        os.close(fd)


@contextmanager
def exclusive_file(directory_fd: int, directory: Path, name: str, shown: str) -> Iterator[tuple[int, Path]]:
    """Yield a new, empty file (its descriptor and path) to write; it appears as `name` in the
    directory only if the block succeeds, and never over an existing file or link.

    The file is made in a private (0700) directory beside `name` and linked into place:
    link(2) refuses an existing name, a reader never sees a half-written backup, and a failed
    one leaves nothing behind. `shown` is the name in messages.
    """
    exists = Refused(
        gettext(
            "destination: %(name)r already exists in the backup directory; a backup never replaces a file "
            "(name a directory to get a new file each run)."
        )
        % {"name": shown}
    )
    try:
        os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
        raise exists
    except FileNotFoundError:
        pass
    private = f".{name}.{secrets.token_hex(6)}.partial"
    os.mkdir(private, 0o700, dir_fd=directory_fd)
    private_fd = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory_fd)
    try:
        output = os.open(
            "backup", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=private_fd
        )
        try:
            yield output, directory / private / "backup"
            os.fsync(output)
        finally:
            os.close(output)
        try:
            os.link("backup", name, src_dir_fd=private_fd, dst_dir_fd=directory_fd, follow_symlinks=False)
        except FileExistsError:
            raise exists from None  # written meanwhile by someone else: theirs stays
        os.fsync(directory_fd)
    finally:
        for entry in os.listdir(private_fd):
            os.unlink(entry, dir_fd=private_fd)
        os.close(private_fd)
        os.rmdir(private, dir_fd=directory_fd)


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


def pg_dump(settings_dict: dict, output: int) -> None:
    """Run pg_dump for the database `settings_dict` describes (Django's DATABASES entry) into the
    open file `output`: pg_dump never opens a path itself, so it cannot follow a link or replace a file."""
    executable = shutil.which("pg_dump")
    if executable is None:
        raise BackupError("pg_dump is not installed (or not on PATH); install the PostgreSQL client tools.")
    command = [executable, "--format=custom", "--no-password"]
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
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump exited with status {done.returncode}: {done.stderr.strip() or '(no output)'}")
    if done.stderr.strip():
        logger.warning("pg_dump: %s", done.stderr.strip())
