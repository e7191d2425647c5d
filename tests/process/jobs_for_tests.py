"""Tasks only the process tests use, registered in the scheduler under test.

The subprocess imports this module through TEMPORA_TASK_MODULES (see config/settings.py);
its job processes too (the forkserver preloads Django, which runs autodiscover). Every
process a task starts writes its pid under `<TEMPORA_VAR_DIR>/pids/`, so the fixture can
prove it was killed, and kill it if a test failed first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

from django.conf import settings

from scheduler_app.registry import task


def pid_dir() -> Path:
    path = Path(settings.VAR_DIR) / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _note_pid(label: str, pid: int) -> None:
    (pid_dir() / f"{label}-{pid}").write_text(str(pid))


@task(name="tests.sleep", description="Sleep `seconds` (a long run that cannot be interrupted in a thread).")
def sleep(seconds: float = 30) -> float:
    time.sleep(seconds)
    return seconds


@task(name="tests.spin_forever", description="Loop forever, after starting a grandchild that sleeps.")
def spin_forever(label: str = "spin") -> None:
    _note_pid(f"{label}-child", os.getpid())
    grandchild = subprocess.Popen(["sleep", "600"])
    _note_pid(f"{label}-grandchild", grandchild.pid)
    while True:
        time.sleep(0.05)


@task(name="tests.busy", description="Work in Python for `seconds` without ever looking at the cancel flag.")
def busy(seconds: float = 30) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))
    return "worked to the end"


@task(name="tests.async_nap", description="A coroutine function: nap `seconds` on the event loop, answer them.")
async def async_nap(seconds: float = 0.1) -> dict:
    await asyncio.sleep(seconds)
    return {"napped": seconds}


@task(name="tests.nap_noting_pid", description="Note this process's pid (one note per run), then sleep `seconds`.")
def nap_noting_pid(seconds: float = 5, label: str = "nap") -> float:
    _note_pid(f"{label}-{time.time_ns()}", os.getpid())
    time.sleep(seconds)
    return seconds


def marks_dir() -> Path:
    path = Path(settings.VAR_DIR) / "marks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mark(label: str, event: str) -> int:
    """Append one byte to `<label>.<event>`; answers how many times it happened, this one included."""
    with open(marks_dir() / f"{label}.{event}", "ab") as marks:
        marks.write(b"x")
        return marks.tell()


@task(name="tests.side_effect", description="A body whose start and end leave marks on disk (a second run shows).")
def side_effect(label: str, seconds: float = 0, first_seconds: float = 0) -> str:
    """Marks `label.begin`, naps `seconds` (`first_seconds` instead on its first run), marks `label.end`."""
    first = _mark(label, "begin") == 1
    time.sleep(first_seconds if first and first_seconds else seconds)
    _mark(label, "end")
    return label


@task(
    name="tests.stall_scheduler",
    description="Hold the scheduler's job-store lock for `seconds`: its pass and main loop stall.",
)
def stall_scheduler(seconds: float = 10) -> str:
    # The lock a slow pass holds; found by type, as this runs inside the scheduler process.
    import gc

    from scheduler_app.engine.apscheduler_glue import TemporaScheduler

    scheduler = next(thing for thing in gc.get_objects() if isinstance(thing, TemporaScheduler) and thing.running)
    with scheduler._jobstores_lock:
        time.sleep(seconds)
    return "stalled"


@task(
    name="tests.note_run",
    description="Append 'start' to `path`, sleep `seconds`, append 'end': a body's real side effects.",
)
def note_run(path: str, seconds: float = 20) -> float:
    with open(path, "a") as notes:
        notes.write(f"start {os.getpid()} {time.time()}\n")
    time.sleep(seconds)
    with open(path, "a") as notes:
        notes.write(f"end {os.getpid()} {time.time()}\n")
    return seconds


@task(
    name="tests.tick_forever",
    description="Append the time to `path` every 50 ms, forever, beside a sleeping grandchild.",
)
def tick_forever(path: str, label: str = "tick") -> None:
    _note_pid(f"{label}-child", os.getpid())
    grandchild = subprocess.Popen(["sleep", "600"])
    _note_pid(f"{label}-grandchild", grandchild.pid)
    while True:
        with open(path, "a") as ticks:
            ticks.write(f"{os.getpid()} {time.time()}\n")
        time.sleep(0.05)
