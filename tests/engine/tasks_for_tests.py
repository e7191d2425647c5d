"""Tasks the engine tests run, in the test process and in job child processes.

Registered under names that do not say where they live (`engine_tests.*`): a child process
finds them because the runner passes it the module that registered the task in the parent.
"""

from __future__ import annotations

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
