"""Stopping a run in a thread (RunControl): the flag, the grace, the interruption, a body stuck in C.

The body runs in a real thread; the test plays the watchdog, calling tick() with instants
it makes up, so no test waits for a grace period or a deadline to pass.
"""

from __future__ import annotations

import threading
import time

import pytest

from scheduler_app import runtime
from scheduler_app.engine import interrupt
from scheduler_app.engine.interrupt import RunControl
from scheduler_app.engine.invoke import call_task

T0 = 1000.0  # a made-up monotonic instant


class Body:
    """call_task(task, ...) under `control` in a thread of its own; `.result` once it ends."""

    def __init__(self, control: RunControl, task: str, *args, **kwargs) -> None:
        self.control = control
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(task, args, kwargs), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 5
        while not control.in_body and time.monotonic() < deadline:
            time.sleep(0.005)
        assert control.in_body, "the body did not start"

    def _run(self, task, args, kwargs):
        self.result = call_task(task, list(args), kwargs, 65_536, control=self.control)

    def ended(self, timeout: float = 5.0) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


def test_a_cancel_sets_the_flag_at_once_and_interrupts_only_after_the_grace():
    control = RunControl()
    body = Body(control, "engine_tests.spins", 10)
    assert control.request_stop("cancel", now=T0)
    control.tick(T0 + interrupt.CANCEL_GRACE_SECONDS - 0.1)
    assert (control.interrupts, body.ended(0.3)) == (0, False)  # the task may still stop by itself
    control.tick(T0 + interrupt.CANCEL_GRACE_SECONDS)
    assert body.ended()
    status, result, _, error, trace = body.result
    assert (status, result, error) == ("cancelled", None, "Cancelled (cancel requested); the run stopped.")
    assert trace.rstrip().endswith("scheduler_app.runtime.RunCancelled")


def test_the_first_reason_to_stop_wins():
    control = RunControl(timeout=5)
    assert control.request_stop("cancel", now=T0)
    assert not control.request_stop("timeout", now=T0 + 1)
    assert control.reason == "cancel"


def test_a_run_is_interrupted_at_its_deadline_without_grace():
    control = RunControl(timeout=30, clock=lambda: T0)
    body = Body(control, "engine_tests.spins", 10)
    control.tick(T0 + 29.9)
    assert (control.reason, body.ended(0.2)) == (None, False)
    control.tick(T0 + 30)
    assert body.ended()
    assert body.result[0::3] == ("timed_out", "Timed out after 30s; the run was stopped.")


def test_a_cooperative_task_sees_the_flag_and_stops_itself(tmp_path):
    control = RunControl()
    body = Body(control, "engine_tests.checks_for_cancel", str(tmp_path / "started"))
    control.request_stop("cancel", now=T0)
    assert body.ended()  # no tick: nothing was raised into it
    assert control.interrupts == 0
    assert body.result[0] == "cancelled"


def test_a_coroutine_is_stopped_by_cancelling_its_task(tmp_path):
    control = RunControl(timeout=1, clock=lambda: T0)
    marker = tmp_path / "started"
    body = Body(control, "engine_tests.async_waits_forever", str(marker))
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:  # its loop is up and the task runs
        time.sleep(0.005)
    control.tick(T0 + 1)
    assert body.ended()
    status, _, _, error, trace = body.result
    assert (status, error) == ("timed_out", "Timed out after 1s; the run was stopped.")
    assert "CancelledError" in trace


def test_a_body_that_swallows_the_exception_gets_it_again():
    control = RunControl()
    body = Body(control, "engine_tests.swallows_one_stop")
    control.request_stop("shutdown", "The scheduler stopped.", now=T0)
    control.tick(T0)
    time.sleep(0.2)  # the first one lands and is swallowed
    assert not body.ended(0.1)
    control.tick(T0 + interrupt.REPEAT_SECONDS)
    assert body.ended()
    assert body.result[0::3] == ("lost", "The scheduler stopped.")
    assert control.interrupts == 2


def test_a_body_blocked_in_a_c_call_is_reported_stuck_once_and_stops_when_the_call_returns():
    control = RunControl(timeout=1, clock=lambda: T0)
    body = Body(control, "engine_tests.sleeps_in_c", 1.5)
    assert control.tick(T0 + 1) is None  # interrupted: the exception waits for time.sleep
    assert control.tick(T0 + 1 + interrupt.STUCK_SECONDS) == "stuck"
    assert control.tick(T0 + 2 + interrupt.STUCK_SECONDS) is None  # said once
    assert interrupt.stuck_note(control).startswith("Past its time limit of 1s, but still running")
    assert body.ended()
    assert body.result[0] == "timed_out"  # it never returned "woke up": the exception landed first


def test_nothing_is_raised_into_the_thread_after_its_body_ended():
    control = RunControl()
    result = call_task("engine_tests.add", [1, 2], {}, 65_536, control=control)
    assert result[0:2] == ("succeeded", 3)
    control.request_stop("cancel", now=T0)
    control.tick(T0 + 60)  # too late: the body is over
    assert control.interrupts == 0
    time.sleep(0.05)  # this very thread would raise here if an exception had been set


def test_a_body_that_returns_although_asked_to_stop_is_recorded_by_its_outcome():
    # It finished its work: calling it cancelled would hide that it did.
    control = RunControl()
    control.request_stop("cancel", now=T0)
    assert call_task("engine_tests.add", [1, 2], {}, 65_536, control=control)[0:2] == ("succeeded", 3)


def test_a_failure_while_asked_to_stop_is_still_a_failure():
    control = RunControl()
    control.request_stop("cancel", now=T0)
    status, _, _, error, _ = call_task("engine_tests.fails", ["its own error"], {}, 65_536, control=control)
    assert (status, error) == ("failed", "ValueError: its own error")


def test_outside_a_run_nothing_is_cancelled():
    assert runtime.cancel_requested() is False
    runtime.raise_if_cancelled()  # does nothing


def test_stop_exceptions_are_not_swallowed_by_except_exception():
    assert not issubclass(runtime.RunCancelled, Exception)
    assert issubclass(runtime.RunTimedOut, runtime.RunStopped)
    with pytest.raises(runtime.RunStopped):
        try:
            raise runtime.RunCancelled("cancel")
        except Exception:  # what a task's own error handling usually catches
            pytest.fail("caught by except Exception")
