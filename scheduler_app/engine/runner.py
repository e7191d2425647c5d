"""Running one execution: call the task, capture its output, classify what happened.

In a thread by default, under a RunControl (engine/interrupt.py) that can stop it: when it
is cancelled, and when it passes the default time limit (SCHEDULER_DEFAULT_TIMEOUT). A job
with a timeout of its own (or one that may have to be replaced, under the `replace` overlap
policy) runs in a child process of its own session, so that when the time is up the child
*and its children* can be killed, even in the middle of a C call. The children come from a
forkserver that imported Django before any database connection existed, so a fork never
shares a connection with the scheduler.

A task may be a coroutine function, or an ordinary function that returns an awaitable (a
decorator around an `async def` does that): either way the awaitable is driven to its end
on an event loop of its own, in the run's thread or child, with the same capture, errors
and limits. A run never succeeds without its body having run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler_app import permissions
from scheduler_app.conf import tempora_settings
from scheduler_app.engine import child
from scheduler_app.engine.interrupt import RunControl
from scheduler_app.engine.invoke import call_task, task_module

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """Everything needed to run one execution, detached from the ORM (it crosses processes)."""

    execution_id: int
    job_id: int
    job_name: str
    task: str
    args: list
    kwargs: dict
    timeout: int | None  # the job's own, else the default time limit
    isolate: bool  # run in a child process
    attempt: int = 1
    reason: str = "schedule"
    scheduled_for: datetime | None = None
    trigger_id: int | None = None
    max_retries: int = 0
    retry_backoff: int = 30
    retry_backoff_max: int = 3600
    executor: str = "thread"
    priority: int = 5
    owner_id: int | None = None  # None: the system's job (not capped per user)
    lost_policy: str = "auto"  # Job.lost_policy: what a run cut short by a dead scheduler means
    # A run now with argument overrides (Execution.args/kwargs): kept for its retries.
    args_override: list | None = None
    kwargs_override: dict | None = None

    @classmethod
    def for_execution(cls, execution) -> RunRequest:
        """From an Execution with its job loaded (select_related("job")); its own arguments, if
        it was given some, instead of the job's."""
        request = cls.for_job(
            execution.job,
            execution_id=execution.pk,
            scheduled_for=execution.scheduled_for,
            attempt=execution.attempt,
            reason=execution.reason,
            trigger_id=execution.trigger_id,
        )
        if execution.args is None and execution.kwargs is None:
            return request
        return replace(
            request,
            args=request.args if execution.args is None else list(execution.args),
            kwargs=request.kwargs if execution.kwargs is None else dict(execution.kwargs),
            args_override=execution.args,
            kwargs_override=execution.kwargs,
        )

    @classmethod
    def for_job(
        cls,
        job,
        *,
        execution_id: int,
        scheduled_for: datetime,
        attempt: int = 1,
        reason: str = "schedule",
        trigger_id: int | None = None,
    ) -> RunRequest:
        return cls(
            execution_id=execution_id,
            job_id=job.pk,
            job_name=job.name,
            task=job.task,
            args=list(job.args),
            kwargs=dict(job.kwargs),
            timeout=job.effective_timeout,
            # Only a job's own timeout takes a child process: the default limit is enforced
            # in the thread, which keeps a thousand short runs a second cheap.
            isolate=job.timeout is not None or job.overlap_policy == "replace",
            attempt=attempt,
            reason=reason,
            scheduled_for=scheduled_for,
            trigger_id=trigger_id,
            max_retries=job.max_retries,
            retry_backoff=job.retry_backoff,
            retry_backoff_max=job.retry_backoff_max,
            executor=job.executor,
            priority=job.priority,
            owner_id=job.owner_id,
            lost_policy=job.lost_policy,
        )


@dataclass
class RunResult:
    status: str  # succeeded | failed | timed_out | cancelled
    started_at: datetime
    finished_at: datetime
    result: Any = None
    output: str = ""
    error: str = ""
    traceback: str = ""
    extra: dict = field(default_factory=dict)


def refused(request: RunRequest, started_at: datetime) -> RunResult | None:
    """A failed result, without running the body, when the job's owner has lost the task's
    permission since the job was saved (permissions.run_refusal); None when it may run."""
    reason = permissions.run_refusal(request.owner_id, request.task)
    return RunResult("failed", started_at, datetime.now(UTC), error=reason) if reason else None


def run_in_thread(request: RunRequest, started_at: datetime, control: RunControl | None = None) -> RunResult:
    status, result, output, error, trace = call_task(
        request.task, request.args, request.kwargs, tempora_settings.OUTPUT_LIMIT, control=control
    )
    return RunResult(status, started_at, datetime.now(UTC), result, output, error, trace)


# Child processes ------------------------------------------------------------------------

_context_lock = threading.Lock()
_context = None


def _child_context():
    global _context
    with _context_lock:
        if _context is None:
            _context = multiprocessing.get_context("forkserver")
            _context.set_forkserver_preload(["scheduler_app.engine.forkserver"])
        return _context


def warm_up_child_processes() -> None:
    """Start the forkserver now, so the first timed job does not pay for Django's start-up."""
    ctx = _child_context()
    process = ctx.Process(target=_noop)
    process.start()
    process.join(30)


def _noop() -> None:
    pass


def child_name(execution_id: int) -> str:
    """The comm name of a run's child process (15 characters at most: the kernel's limit)."""
    return f"tempora-{execution_id % 10**7}"


def kill_orphan(execution_id: int, group: int) -> bool:
    """Kill the process group of a run whose scheduler died, if it is still that run's: the
    group's leader must bear the run's name (a pid may have been reused since)."""
    try:
        comm = Path(f"/proc/{group}/comm").read_text().strip()
    except OSError:
        return False  # gone (or another host's pid namespace)
    if comm != child_name(execution_id):
        return False
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class ChildRun:
    """A run in a child process that can be killed, with its process group, at any time.

    The child dies with its scheduler: it holds the reading end of a pipe only the scheduler
    writes to, and kills its own group when that reads EOF (child.die_with_scheduler).
    `on_start(pid)` is told the child's process group, for the Execution row.
    """

    def __init__(self, request: RunRequest, *, on_start: Callable[[int], None] | None = None) -> None:
        self.request = request
        self.on_start = on_start
        self.process = None
        self.killed_because: str | None = None
        self.lost_because: str | None = None
        self._lock = threading.Lock()

    def abandon(self, why: str) -> None:
        """Kill the run because its scheduler stops: it ends `lost` (retried if it may be)."""
        self.lost_because = why
        self.kill("the scheduler stopped")

    def kill(self, because: str) -> None:
        with self._lock:
            self.killed_because = self.killed_because or because
            process = self.process
        if process is not None and process.pid:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the child leads its own session
            except (ProcessLookupError, PermissionError):
                # Not its own session yet (killed right after start, before os.setsid): no
                # grandchild can exist, so the child alone. Process.kill() never signals a
                # pid that was already reaped.
                try:
                    process.kill()
                except (ProcessLookupError, PermissionError, ValueError):
                    pass

    # What a Watchdog calls (see interrupt.Watchdog): a cancel kills the process at once; the
    # time limit is enforced by run() itself.
    def request_stop(self, reason: str, message: str = "", *, now: float | None = None) -> bool:
        self.kill("cancel requested" if reason == "cancel" else reason)
        return True

    def tick(self, now: float) -> None:
        return None

    def run(self, started_at: datetime) -> RunResult:
        ctx = _child_context()
        receiver, sender = ctx.Pipe(duplex=False)
        lifeline, held = ctx.Pipe(duplex=False)  # `held` stays here: its end is the child's EOF
        request = self.request
        process = ctx.Process(
            target=child.run_child,
            args=(
                sender,
                request.task,
                request.args,
                request.kwargs,
                tempora_settings.OUTPUT_LIMIT,
                task_module(request.task),
                lifeline,
                child_name(request.execution_id),
            ),
            name=f"tempora-job-{request.execution_id}",
        )
        with self._lock:
            self.process = process
        try:
            process.start()
            sender.close()
            lifeline.close()
            if self.on_start is not None:
                self.on_start(process.pid)  # its own session: the group's id is its pid
            return self._wait(process, receiver, started_at)
        finally:
            held.close()

    def _wait(self, process, receiver, started_at: datetime) -> RunResult:
        request = self.request
        deadline = None if request.timeout is None else time.monotonic() + request.timeout
        payload = None
        while payload is None:
            wait = 0.2 if deadline is None else max(min(deadline - time.monotonic(), 0.2), 0)
            if receiver.poll(wait):
                try:
                    payload = receiver.recv()
                except EOFError:
                    break
            elif not process.is_alive() and not receiver.poll(0):
                break
            elif deadline is not None and time.monotonic() >= deadline:
                self.kill("timeout")
                break
            if self.killed_because:
                # kill() may have come before start() (a `replace` racing the launch), when
                # there was no process to signal: signal it now rather than wait for join(5).
                self.kill(self.killed_because)
                break
        process.join(5)
        if process.is_alive():
            self.kill(self.killed_because or "did not exit")
            process.join(5)
        receiver.close()
        finished = datetime.now(UTC)
        if self.lost_because:
            return RunResult("lost", started_at, finished, error=self.lost_because)
        if self.killed_because == "timeout":
            return RunResult(
                "timed_out",
                started_at,
                finished,
                error=f"Timed out after {request.timeout}s; the process and its children were killed.",
            )
        if self.killed_because:
            return RunResult(
                "cancelled", started_at, finished, error=f"Cancelled ({self.killed_because}); the process was killed."
            )
        if payload is None:
            return RunResult(
                "failed",
                started_at,
                finished,
                error=f"The job's process exited with code {process.exitcode} before reporting a result.",
            )
        status, result, output, error, trace = payload
        return RunResult(status, started_at, finished, result, output, error, trace)
