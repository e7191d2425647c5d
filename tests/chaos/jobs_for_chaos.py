"""The chaos suite's task: a body that leaves a trace of its own at its start and at its end.

The trace is the side effect the suite judges the database by, so it does not go through the
database: each line is one write(2) to a file opened with O_APPEND (atomic for a line this
short), from whichever process runs the body — a scheduler's thread, a child process of a
job with a timeout, a Celery pool process. A body stopped half-way leaves a start and no end.

    S <execution id> <occurrence or -> <pid> <unix time> <label>
    E <execution id> <occurrence or -> <pid> <unix time> <label>

The subprocesses import this module through TEMPORA_TASK_MODULES (see config/settings.py).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

from django.conf import settings

from scheduler_app.engine.runner import RunRequest
from scheduler_app.registry import task

TRACE_FILE = "chaos-trace.log"


def trace_path() -> Path:
    return Path(settings.VAR_DIR) / TRACE_FILE


def _running_execution() -> tuple[int, str]:
    """(execution id, occurrence) of the run this body belongs to.

    A task is not told its execution: in a thread or on a Celery worker the engine's frames
    below this one hold its RunRequest; a child process is named after its execution
    (runner.ChildRun). Failing loudly beats a trace the suite cannot attribute.
    """
    frame = sys._getframe(2)
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, RunRequest):
            occurrence = request.scheduled_for.isoformat() if request.scheduled_for else "-"
            return request.execution_id, occurrence
        frame = frame.f_back
    name = multiprocessing.current_process().name
    if name.startswith("tempora-job-"):
        return int(name.removeprefix("tempora-job-")), "-"
    raise RuntimeError(f"tests.chaos_trace cannot tell which execution it runs for (process {name!r})")


def _line(kind: str, execution: int, occurrence: str, label: str) -> None:
    line = f"{kind} {execution} {occurrence} {os.getpid()} {time.time():.6f} {label}\n".encode()
    fd = os.open(trace_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@task(name="tests.chaos_trace", description="Trace this run's start, sleep `seconds`, trace its end (the chaos suite).")
def chaos_trace(label: str = "", seconds: float = 0.2) -> str:
    execution, occurrence = _running_execution()
    _line("S", execution, occurrence, label)
    time.sleep(seconds)
    _line("E", execution, occurrence, label)
    return "traced"
