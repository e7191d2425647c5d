"""Tasks the engine tests run, in the test process and in job child processes.

Registered under names that do not say where they live (`engine_tests.*`): a child process
finds them because the runner passes it the module that registered the task in the parent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from scheduler_app.registry import task

logger = logging.getLogger("engine_tests")

# Set by a test to let `waits_for_release` finish (thread runs only).
release = threading.Event()


@task(name="engine_tests.add")
def add(a: int, b: int) -> int:
    return a + b


@task(name="engine_tests.prints")
def prints(text: str) -> None:
    print(text)


@task(name="engine_tests.writes_to_stderr")
def writes_to_stderr(text: str) -> None:
    sys.stderr.write(text)


@task(name="engine_tests.logs")
def logs(text: str) -> None:
    logger.warning(text)


@task(name="engine_tests.returns")
def returns(value):
    return value


@task(name="engine_tests.returns_a_set")
def returns_a_set() -> set:
    return {1, 2}


@task(name="engine_tests.returns_nan")
def returns_nan() -> dict:
    return {"ratio": float("nan")}


@task(name="engine_tests.fails")
def fails(message: str) -> None:
    raise ValueError(message)


@task(name="engine_tests.exits")
def exits(code: int) -> None:
    os._exit(code)  # the process vanishes without reporting


@task(name="engine_tests.loops_forever")
def loops_forever(pid_file: str) -> None:
    """Start a grandchild (`sleep 300`), say its pid, then never return."""
    sleeper = subprocess.Popen(["sleep", "300"])
    Path(pid_file).write_text(str(sleeper.pid))
    while True:
        time.sleep(0.05)


@task(name="engine_tests.waits_forever")
def waits_forever(marker: str) -> None:
    Path(marker).write_text("started")
    while True:
        time.sleep(0.05)


@task(name="engine_tests.waits_for_release")
def waits_for_release() -> str:
    release.wait(10)
    return "released"


@task(name="engine_tests.prints_then_fails")
def prints_then_fails(text: str) -> None:
    print(text)
    raise RuntimeError("after printing")


@task(name="engine_tests.prints_beside_another_thread")
def prints_beside_another_thread(text: str) -> None:
    other = threading.Thread(target=print, args=("printed by another thread",))
    other.start()
    other.join()
    print(text)


# Coroutine functions --------------------------------------------------------------------


@task(name="engine_tests.async_add")
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)  # a real suspension: the coroutine must be driven by a loop
    return a + b


@task(name="engine_tests.async_prints")
async def async_prints(text: str) -> str:
    print(text)
    logger.warning("logged from a coroutine")
    await asyncio.sleep(0)
    return text


@task(name="engine_tests.async_fails")
async def async_fails(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


@task(name="engine_tests.async_waits_forever")
async def async_waits_forever(marker: str) -> None:
    Path(marker).write_text("started")
    while True:
        await asyncio.sleep(0.05)


@task(name="engine_tests.returns_a_coroutine")
def returns_a_coroutine(a: int, b: int):
    """An ordinary function that hands back an awaitable (a decorator around an async def does this)."""
    return async_add(a, b)


# Runs to stop -----------------------------------------------------------------------------


@task(name="engine_tests.spins")
def spins(seconds: float, marker: str = "") -> str:
    """Busy in Python for `seconds` (never looks at the cancel flag), then returns."""
    if marker:
        Path(marker).write_text("started")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))
    return "spun to the end"


@task(name="engine_tests.checks_for_cancel")
def checks_for_cancel(marker: str) -> str:
    """A cooperative task: stops, between two steps, once asked to."""
    from scheduler_app.runtime import raise_if_cancelled

    Path(marker).write_text("started")
    end = time.monotonic() + 20
    while time.monotonic() < end:
        raise_if_cancelled()
        time.sleep(0.01)
    return "never asked"


@task(name="engine_tests.sleeps_in_c")
def sleeps_in_c(seconds: float, marker: str = "") -> str:
    """One blocking C call: an exception raised into the thread waits for it to return."""
    if marker:
        Path(marker).write_text("started")
    time.sleep(seconds)
    return "woke up"


@task(name="engine_tests.waits_for_file")
def waits_for_file(path: str, marker: str = "") -> str:
    """Runs until `path` exists (each run its own file, so a test ends runs one by one)."""
    if marker:
        Path(marker).write_text("started")
    end = time.monotonic() + 20
    while not Path(path).exists() and time.monotonic() < end:
        time.sleep(0.02)
    return "file seen"


@task(name="engine_tests.swallows_one_stop")
def swallows_one_stop() -> str:
    """Catches the first stop (as a careless `except BaseException` would), not the second."""
    from scheduler_app.runtime import RunStopped

    end = time.monotonic() + 20
    try:
        while time.monotonic() < end:
            sum(range(100))
    except RunStopped:
        pass
    while time.monotonic() < end:
        sum(range(100))
    return "never stopped"


@task(name="engine_tests.guarded", permission="scheduler_app.use_file_tasks")
def guarded(marker: str) -> str:
    """A task with a permission: it leaves `marker` behind when its body runs."""
    from pathlib import Path

    Path(marker).write_text("ran")
    return "ran"
