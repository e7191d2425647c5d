"""Real `manage.py runscheduler` processes against the test database, and waiting on the database.

The test process and its schedulers share one database: the pytest-django test database,
which with `django_db(transaction=True)` holds committed rows the subprocess can read. The
subprocess is told where it is through DATABASE_URL, built from the test connection.
Conditions are awaited by polling the database against a deadline, never by a long sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
from django.db import DatabaseError, connection

from scheduler_app import services
from scheduler_app.models import Execution, Job, SchedulerNode, SchedulerState

ROOT = Path(__file__).resolve().parents[2]
TASK_MODULE = "tests.process.jobs_for_tests"
POLL = 0.05
# `pytestmark = PROCESS` in every module here.
PROCESS = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def database_url() -> str:
    """The test database as a DATABASE_URL the subprocess's settings understand."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        name = settings["NAME"]
        if name == ":memory:" or "mode=memory" in str(name):
            pytest.fail("process tests need a file SQLite database (settings set TEST NAME to one)")
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(settings.get("USER") or "postgres", safe="")
        password = settings.get("PASSWORD") or ""
        auth = f"{user}:{quote(password, safe='')}" if password else user
        host = settings.get("HOST") or "127.0.0.1"
        port = settings.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{settings['NAME']}"
    pytest.fail(f"no DATABASE_URL for the {connection.vendor} backend")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(popen: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM and a wait (a scheduler or worker drains), SIGKILL if it has not exited by then."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


class SchedulerProcess:
    """One `manage.py runscheduler` subprocess, its log file, and its SchedulerNode row."""

    def __init__(self, popen: subprocess.Popen, log_path: Path, label: str) -> None:
        self.popen = popen
        self.log_path = log_path
        self.label = label
        self.expected_alive = True  # False once the test stops it on purpose

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def node(self) -> SchedulerNode | None:
        return SchedulerNode.objects.filter(pid=self.pid).order_by("-started_at").first()

    def node_name(self) -> str:
        node = self.node()
        assert node is not None, f"{self.label} has no SchedulerNode row"
        return node.name

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self) -> None:
        """SIGTERM: stop firing, drain, mark what still runs."""
        self.expected_alive = False
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL (`kill -9`): no drain, no last heartbeat, rows left as they were."""
        self.expected_alive = False
        if self.alive():
            self.popen.kill()
        self.popen.wait(10)

    def wait_exit(self, timeout: float) -> float:
        """Wait for the process to exit; answers how long that took."""
        began = time.monotonic()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.label} (pid {self.pid}) did not exit within {timeout}s")
        return time.monotonic() - began


class Schedulers:
    """Starts runscheduler subprocesses for one test and waits on the database for them."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.processes: list[SchedulerProcess] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "TEMPORA_VAR_DIR": str(var_dir),
            "TEMPORA_TASK_MODULES": TASK_MODULE,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def pid_dir(self) -> Path:
        return self.var_dir / "pids"

    # Starting -------------------------------------------------------------------------

    def start(
        self,
        *,
        drain: float = 2,
        lease: int | None = None,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> SchedulerProcess:
        """Start one runscheduler; it registers its node row before this returns."""
        label = f"scheduler-{len(self.processes) + 1}"
        log_path = self.var_dir / f"{label}.log"
        extra = dict(env or {})
        if lease is not None:
            extra["SCHEDULER_LEASE_SECONDS"] = str(lease)
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", "runscheduler", "--drain", str(drain), *args],
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = SchedulerProcess(popen, log_path, label)
        self.processes.append(process)
        self.wait_for(process.node, timeout=20, what=f"{label} to register its heartbeat row")
        return process

    def start_leader(self, **options) -> SchedulerProcess:
        """Start one runscheduler and wait until it leads with its job store in sync."""
        process = self.start(**options)
        self.wait_leading(process, timeout=20)
        return process

    def wait_leading(self, process: SchedulerProcess, *, timeout: float) -> float:
        """Wait until `process` holds the lease and has started scheduling; answers the seconds."""
        name = process.node_name()
        began = time.monotonic()
        self.wait_for(
            lambda: SchedulerState.objects.filter(leader=name).exists()
            and f"{name} leads: scheduling" in process.log(),
            timeout=timeout,
            what=f"{process.label} to lead",
        )
        return time.monotonic() - began

    # Waiting --------------------------------------------------------------------------

    def check_alive(self) -> None:
        for process in self.processes:
            if process.expected_alive and not process.alive():
                pytest.fail(
                    f"{process.label} exited unexpectedly with code {process.popen.returncode}; "
                    f"its log ends:\n{process.log()[-4000:]}"
                )

    def wait_for(self, condition: Callable[[], T], *, timeout: float, what: str, db_errors_ok: bool = False) -> T:
        """Poll `condition` until it answers something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.check_alive()
            try:
                value = condition()
            except DatabaseError as exc:
                if not db_errors_ok:
                    raise
                last_error, value = exc, None
                connection.close()
            if value:
                return value
            if time.monotonic() >= deadline:
                extra = f" (last database error: {last_error})" if last_error else ""
                pytest.fail(f"timed out after {timeout}s waiting for {what}{extra}")
            time.sleep(POLL)

    def stays(self, condition: Callable[[], bool], *, seconds: float, what: str) -> None:
        """Check `condition` holds for `seconds` (polling, so a violation fails at once)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            assert condition(), f"{what} stopped holding"
            time.sleep(POLL * 2)
        assert condition(), f"{what} stopped holding"

    def watch(self, seconds: float) -> None:
        """Let the schedulers run for `seconds`, failing at once if one of them dies."""
        self.stays(lambda: True, seconds=seconds, what="the schedulers running")

    # Cleaning up ----------------------------------------------------------------------

    def stop_all(self) -> None:
        for process in self.processes:
            if process.alive():
                process.kill()
        # Job processes started by test tasks (each wrote its pid): a failed test must not
        # leave one spinning.
        if self.pid_dir.exists():
            for path in self.pid_dir.iterdir():
                try:
                    os.kill(int(path.read_text()), signal.SIGKILL)
                except (ProcessLookupError, ValueError, PermissionError):
                    pass

    def logs(self) -> str:
        parts = []
        for process in self.processes:
            text = process.log()
            lines = text.splitlines()
            if len(lines) > 300:
                text = "\n".join(["[... earlier lines cut ...]", *lines[-300:]])
            parts.append(f"===== {process.label} (pid {process.pid}, exit {process.popen.returncode}) =====\n{text}")
        return "\n".join(parts)


# Jobs and their rows ----------------------------------------------------------------------


def every(name: str, seconds: int, *, task: str = "tempora.noop", **fields) -> Job:
    """A job created through the services that fires every `seconds`."""
    return services.job_create(
        name=name, task=task, triggers=[{"kind": "interval", "interval_seconds": seconds}], **fields
    )


def occurrences(job: Job | str) -> list[Execution]:
    """A job's rows for scheduled occurrences (schedule and catch_up), in time order."""
    rows = Execution.objects.filter(reason__in=[Execution.Reason.SCHEDULE, Execution.Reason.CATCH_UP])
    rows = rows.filter(job_name=job) if isinstance(job, str) else rows.filter(job=job)
    return list(rows.order_by("scheduled_for", "attempt"))


def assert_one_row_per_occurrence(rows: list[Execution], *, every_seconds: int) -> None:
    """No occurrence recorded twice, none left out: consecutive rows are one interval apart."""
    times = [row.scheduled_for for row in rows]
    assert len(set(times)) == len(times), f"an occurrence was recorded twice: {times}"
    steps = {b - a for a, b in pairwise(times)}
    assert steps <= {timedelta(seconds=every_seconds)}, "occurrences are missing (or off the grid): " + ", ".join(
        f"{a:%H:%M:%S}->{b:%H:%M:%S}" for a, b in pairwise(times) if b - a != timedelta(seconds=every_seconds)
    )


def assert_no_duplicate_occurrences() -> None:
    """The database-wide form: no (job, scheduled_for, attempt) twice for scheduled reasons."""
    from django.db.models import Count

    doubles = (
        Execution.objects.filter(reason__in=Execution.SCHEDULED_REASONS)
        .values("job_name", "scheduled_for", "attempt")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not list(doubles)


def seconds(delta: timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()
