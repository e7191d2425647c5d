"""The body of a job's child process (see runner.ChildRun).

The forkserver imports it before any fork (engine/forkserver.py), so every child starts ready.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

from django.db import connections

from scheduler_app.engine.invoke import call_task

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# Loaded once here, in the forkserver: every child has it ready (Linux only; elsewhere the
# lifeline pipe alone ends a child whose scheduler died).
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def run_child(
    sender, task: str, args: list, kwargs: dict, limit: int, module: str = "", lifeline=None, name: str = ""
) -> None:
    # A session of its own: on timeout the parent kills the whole group, grandchildren included.
    os.setsid()
    if lifeline is not None:
        die_with_scheduler(lifeline, name)
    payload = call_task(task, args, kwargs, limit, module)
    try:
        sender.send(payload)
    finally:
        sender.close()
        connections.close_all()


def die_with_scheduler(lifeline, name: str) -> None:
    """End this run's process group when the scheduler dies, even by `kill -9`.

    `lifeline` is the reading end of a pipe whose only writer is the scheduler: it reads EOF
    when the scheduler is gone, and a thread here then kills the whole group (grandchildren
    too). Beside it, PR_SET_PDEATHSIG kills this process when the forkserver, its parent,
    exits (it does when the scheduler dies), should this process's Python be wedged. The name
    (the comm shown by ps) lets a recovering scheduler check a recorded group is still this
    run before it signals it.
    """
    if _libc is not None:
        if name:
            _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        try:
            lifeline.recv_bytes()  # nothing is ever sent: this returns only at EOF
        except (EOFError, OSError):
            pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="tempora-lifeline", daemon=True).start()
