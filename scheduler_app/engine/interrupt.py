"""Stopping a run that executes in a thread: a flag first, then an exception raised into it.

Python cannot kill a thread. What it can do: set a flag the task may look at
(scheduler_app.runtime.cancel_requested), and raise an exception into the thread with
CPython's PyThreadState_SetAsyncExc, which lands at the next bytecode the thread executes —
so it stops Python code, not a blocking C call (time.sleep, a socket read), which finishes
first. A coroutine's asyncio task is cancelled instead, which also wakes it from an await.

A RunControl belongs to one run; the thread that runs the body calls `run()`, a watching
thread calls `tick()` every WATCH_SECONDS. The states a stop goes through:

    requested (flag set) --grace--> interrupted (exception raised, again every REPEAT_SECONDS)
        --STUCK_SECONDS--> stuck: the body is blocked outside Python; the watcher is told once
        (the pool replaces the worker, the row says so) and the run ends when the call returns.

A cancel gives the task CANCEL_GRACE_SECONDS to stop by itself at a point of its choosing;
a time limit and a shutdown interrupt at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from scheduler_app import runtime

logger = logging.getLogger(__name__)

WATCH_SECONDS = 0.2
CANCEL_GRACE_SECONDS = 2.0
REPEAT_SECONDS = 1.0  # a body that swallowed the exception gets it again
STUCK_SECONDS = 5.0

# Which status a run stopped for each reason ends in.
STATUS_FOR = {"cancel": "cancelled", "timeout": "timed_out", "shutdown": "lost"}
_EXCEPTION_FOR = {"cancel": runtime.RunCancelled, "timeout": runtime.RunTimedOut, "shutdown": runtime.RunStopped}
STOPPED = (runtime.RunStopped, asyncio.CancelledError)

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int
_NULL = ctypes.py_object()

_IDLE, _IN_BODY, _DONE = 0, 1, 2


class RunControl:
    """The stop switch of one run, shared by the thread that runs it and the one watching it."""

    def __init__(self, *, timeout: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else clock() + timeout
        self.reason: str | None = None  # read by runtime.cancel_requested()
        self.message = ""  # the row's error if the run ends stopped
        self.stuck = False
        self.interrupts = 0
        self._hard_at: float | None = None  # when to interrupt
        self._last_interrupt: float | None = None
        self._first_interrupt: float | None = None
        self._state = _IDLE
        self._thread_id: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._in_asyncio = False  # inside asyncio.run: stopped through the task, never mid-setup
        self._lock = threading.Lock()

    # The watching side ------------------------------------------------------------------

    def request_stop(self, reason: str, message: str = "", *, now: float | None = None) -> bool:
        """Ask the run to stop; the first reason wins. Answers whether this was the first ask."""
        with self._lock:
            if self.reason is not None:
                return False
            now = time.monotonic() if now is None else now
            self.reason = reason
            self.message = message or _message(reason, self.timeout)
            self._hard_at = now + (CANCEL_GRACE_SECONDS if reason == "cancel" else 0)
            return True

    def tick(self, now: float) -> str | None:
        """Advance the stop (called every WATCH_SECONDS). Answers "stuck" once, when the body
        has not stopped STUCK_SECONDS after the first interruption; else None."""
        if self._state != _IN_BODY:
            return None
        if self.reason is None:
            if self.deadline is None or now < self.deadline:
                return None
            self.request_stop("timeout", now=now)
        if (
            self._hard_at is not None
            and now >= self._hard_at
            and (self._last_interrupt is None or now - self._last_interrupt >= REPEAT_SECONDS)
        ):
            self._interrupt(now)
        if not self.stuck and self._first_interrupt is not None and now - self._first_interrupt >= STUCK_SECONDS:
            self.stuck = True
            return "stuck"
        return None

    def _interrupt(self, now: float) -> None:
        with self._lock:
            if self._state != _IN_BODY:
                return  # it ended meanwhile: never raise into code that is not the body
            if self._in_asyncio and self._task is None:
                return  # its event loop is being set up or torn down: at the next tick
            self._last_interrupt = now
            if self._first_interrupt is None:
                self._first_interrupt = now
            self.interrupts += 1
            if self._task is not None and self.interrupts <= 2:
                # Twice through asyncio; a loop that does not come back to us (blocked in
                # Python code) then gets the exception raised into its thread.
                try:
                    self._loop.call_soon_threadsafe(self._task.cancel, self.message)
                except RuntimeError:  # the loop closed meanwhile: the body is ending
                    pass
            else:
                _set_async_exc(self._thread_id, ctypes.py_object(_EXCEPTION_FOR[self.reason]))

    @property
    def in_body(self) -> bool:
        return self._state == _IN_BODY

    @property
    def thread_id(self) -> int | None:
        return self._thread_id

    # The running side -------------------------------------------------------------------

    def run(self, body: Callable[[], Any]) -> Any:
        """Run `body` in this thread where `request_stop` and `tick` can stop it."""
        self._thread_id = threading.get_ident()
        token = runtime.current.set(self)
        self._state = _IN_BODY
        try:
            return body()
        finally:
            self._leave()
            runtime.current.reset(token)

    def attach(self, loop: asyncio.AbstractEventLoop | None, task: asyncio.Task | None) -> None:
        """The body is a coroutine running as `task` on `loop` (in this thread); None: no more."""
        with self._lock:
            self._loop, self._task = loop, task

    def in_asyncio(self, inside: bool) -> None:
        with self._lock:
            self._in_asyncio = inside

    def _leave(self) -> None:
        # Under the lock, so no interruption can be raised after this; one raised just
        # before is cleared if still pending, or lands here, harmlessly, and we go again.
        while True:
            try:
                with self._lock:
                    self._state = _DONE
                    self._loop = self._task = None
                    if self.interrupts:
                        _set_async_exc(self._thread_id, _NULL)
                return
            except STOPPED:
                continue


def _message(reason: str, timeout: float | None) -> str:
    if reason == "timeout":
        return f"Timed out after {timeout:g}s; the run was stopped."
    if reason == "cancel":
        return "Cancelled (cancel requested); the run stopped."
    return "Stopped because the scheduler is shutting down."


def stuck_note(control: RunControl) -> str:
    """What the row says while a body that was asked to stop is blocked outside Python."""
    what = f"Past its time limit of {control.timeout:g}s" if control.reason == "timeout" else "Asked to stop"
    return (
        f"{what}, but still running: it is blocked outside Python (a C call such as a sleep or a socket read) "
        "and cannot be interrupted there. It stops when that call returns; its worker thread was replaced meanwhile."
    )


def await_in_thread(awaitable, control: RunControl | None) -> Any:
    """Drive a coroutine (or any awaitable) to its end on a fresh event loop in this thread."""

    async def main():
        if control is None:
            return await awaitable
        control.attach(asyncio.get_running_loop(), asyncio.current_task())
        try:
            return await awaitable
        finally:
            control.attach(None, None)

    if control is None:
        return asyncio.run(main())
    control.in_asyncio(True)
    try:
        return asyncio.run(main())
    finally:
        control.in_asyncio(False)


class Watchdog:
    """One thread that ticks the controls of the runs it watches, every WATCH_SECONDS.

    `poll(keys)` (optional) runs every `poll_seconds` and answers the keys whose runs were
    asked to cancel (the Celery side reads the rows); `on_stuck(key, control)` is called once
    per stuck run.
    """

    def __init__(
        self,
        *,
        name: str,
        on_stuck: Callable[[Any, Any], None],
        poll: Callable[[list], list] | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.name = name
        self.on_stuck = on_stuck
        self.poll = poll
        self.poll_seconds = poll_seconds
        self._watched: dict[Any, Any] = {}  # key -> RunControl (or anything with request_stop/tick)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, key, control) -> None:
        self._watched[key] = control  # a dict store: atomic, no lock on the hot path

    def forget(self, key) -> None:
        self._watched.pop(key, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        next_poll = time.monotonic() + self.poll_seconds
        while not self._stop.wait(WATCH_SECONDS):
            try:
                now = time.monotonic()
                watched = list(self._watched.items())
                if self.poll is not None and now >= next_poll and watched:
                    next_poll = now + self.poll_seconds
                    for key in self.poll([key for key, _ in watched]):
                        control = self._watched.get(key)
                        if control is not None:
                            control.request_stop("cancel")
                for key, control in watched:
                    if control.tick(now) == "stuck":
                        self.on_stuck(key, control)
            except Exception:  # the watchdog must outlive anything one run does
                logger.exception("the run watchdog failed a round; it carries on")
