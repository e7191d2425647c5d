"""Calling one registered task in this process: its output captured, its outcome classified.

The same call runs in a scheduler's (or a Celery worker's) thread and in a job's child
process (engine/child.py), so both record a run the same way.
"""

from __future__ import annotations

import importlib
import inspect
import json
import traceback as tb
from typing import Any

from scheduler_app.engine.capture import cap, captured
from scheduler_app.engine.interrupt import STATUS_FOR, STOPPED, RunControl, await_in_thread
from scheduler_app.registry import registry

TRACEBACK_LIMIT = 16_384
ERROR_LIMIT = 4_096


def _jsonable(value: Any) -> Any:
    """The return value if it is JSON, else its repr, so every result can be stored."""
    try:
        # allow_nan=False and the NUL check: PostgreSQL's jsonb refuses NaN/Infinity and
        # \u0000, and one refused value would fail the writer's whole batch, again and again.
        if "\\u0000" in json.dumps(value, allow_nan=False):
            raise ValueError("NUL in a JSON string")
        return value
    except (TypeError, ValueError):
        return {"repr": repr(value)[:ERROR_LIMIT]}


def _text(value: str) -> str:
    # PostgreSQL text columns cannot hold NUL: a job printing one would poison the batch.
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def call_task(
    task: str, args: list, kwargs: dict, limit: int, module: str = "", control: RunControl | None = None
) -> tuple[str, Any, str, str, str]:
    """Run a registered task here, capturing output. Returns (status, result, output, error, traceback).

    `module` is the module that registered the task in the scheduler (see task_module); a
    child process imports it first, so it knows every task its parent knows. `control`, in
    a thread, lets another thread stop the body; a body stopped by it ends `cancelled`,
    `timed_out` or `lost` (a shutdown), with its traceback saying where it was.
    """
    with captured(limit) as buffer:
        try:
            if module and task not in registry:
                importlib.import_module(module)
            info = registry.get(task)
            if control is None:
                value = _call(info.func, args, kwargs, None)
            else:
                value = control.run(lambda: _call(info.func, args, kwargs, control))
            return "succeeded", _jsonable(value), _text(buffer.getvalue()), "", ""
        except BaseException as exc:  # a job's failure, even SystemExit, must not end the worker
            if isinstance(exc, KeyboardInterrupt):
                raise
            status, error = "failed", cap(f"{type(exc).__name__}: {exc}", ERROR_LIMIT)
            if control is not None and control.reason is not None and isinstance(exc, STOPPED):
                status, error = STATUS_FOR[control.reason], control.message
            return status, None, _text(buffer.getvalue()), _text(error), _text(cap(tb.format_exc(), TRACEBACK_LIMIT))


def _call(func, args: list, kwargs: dict, control: RunControl | None) -> Any:
    value = func(*args, **kwargs)
    if inspect.isawaitable(value):
        # A coroutine function's coroutine, or an awaitable an ordinary function returned:
        # run it. Left alone, it was recorded as a success without ever running.
        value = await_in_thread(value, control)
    return value


def task_module(task: str) -> str:
    """The dotted module that registered `task` here ('' if none or __main__), for a child process.

    The forkserver's children know the built-ins, every jobs.py and TEMPORA_TASK_MODULES; a
    task registered any other way (a module imported by the caller, a test) would be unknown
    there without this.
    """
    try:
        module = registry.get(task).func.__module__
    except LookupError:
        return ""
    return "" if module == "__main__" else module
