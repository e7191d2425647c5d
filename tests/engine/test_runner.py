"""Running one execution: in this thread with its output captured, or in a child process that can be killed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from scheduler_app.engine.capture import TRUNCATED
from scheduler_app.engine.invoke import call_task
from scheduler_app.engine.runner import ChildRun, RunRequest

LIMIT = 65_536


def run(task: str, *args, limit: int = LIMIT, **kwargs):
    return call_task(task, list(args), kwargs, limit)


def child_request(task: str, *args, timeout: int | None = None, **kwargs) -> RunRequest:
    return RunRequest(
        execution_id=1,
        job_id=1,
        job_name="child-test",
        task=task,
        args=list(args),
        kwargs=kwargs,
        timeout=timeout,
        isolate=True,
    )


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def process_is_gone(pid: int) -> bool:
    """Gone or a zombie (killed, waiting for its new parent, init, to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# In this thread ----------------------------------------------------------------------


def test_it_returns_the_result_of_a_task():
    assert run("engine_tests.add", 2, 3) == ("succeeded", 5, "", "", "")


def test_it_captures_what_a_task_prints():
    status, _, output, _, _ = run("engine_tests.prints", "hello from the job")
    assert status == "succeeded"
    assert output == "hello from the job\n"


def test_it_captures_what_a_task_writes_to_stderr():
    _, _, output, _, _ = run("engine_tests.writes_to_stderr", "a warning on stderr")
    assert output == "a warning on stderr"


def test_it_captures_what_a_task_logs():
    _, _, output, _, _ = run("engine_tests.logs", "disk almost full")
    assert "WARNING engine_tests: disk almost full" in output


def test_it_caps_the_output_with_a_truncation_marker():
    _, _, output, _, _ = run("engine_tests.prints", "x" * 5000, limit=1024)
    assert output == "x" * 1024 + TRUNCATED


def test_it_does_not_capture_what_other_threads_print_meanwhile():
    _, _, output, _, _ = run("engine_tests.prints_beside_another_thread", "the job's own line")
    assert output == "the job's own line\n"


def test_it_stores_a_result_that_is_not_json_as_its_repr():
    status, result, _, _, _ = run("engine_tests.returns_a_set")
    assert status == "succeeded"
    assert result == {"repr": "{1, 2}"}


def test_it_stores_a_result_with_nan_as_its_repr():
    # PostgreSQL's jsonb refuses NaN: stored as is, it would fail the writer's batch.
    _, result, _, _, _ = run("engine_tests.returns_nan")
    assert result == {"repr": "{'ratio': nan}"}


def test_it_stores_a_result_with_a_nul_character_as_its_repr():
    _, result, _, _, _ = run("engine_tests.returns", "a\x00b")
    assert result == {"repr": "'a\\x00b'"}


def test_it_escapes_nul_characters_in_the_output():
    _, _, output, _, _ = run("engine_tests.prints", "a\x00b")
    assert output == "a\\x00b\n"


def test_it_reports_a_failure_with_its_error_and_traceback():
    status, result, _, error, trace = run("engine_tests.fails", "boom")
    assert (status, result, error) == ("failed", None, "ValueError: boom")
    assert trace.startswith("Traceback (most recent call last):")
    assert "in fails\n    raise ValueError(message)" in trace


def test_it_keeps_the_output_of_a_failed_task():
    status, _, output, error, _ = run("engine_tests.prints_then_fails", "before the crash")
    assert (status, output, error) == ("failed", "before the crash\n", "RuntimeError: after printing")


def test_it_reports_an_unknown_task_as_a_failure():
    status, _, _, error, _ = run("engine_tests.no_such_task")
    assert status == "failed"
    assert error == "LookupError: No task is registered as 'engine_tests.no_such_task'."


# Coroutine functions -----------------------------------------------------------------


def test_it_runs_a_coroutine_function_and_returns_its_result():
    # Called but never awaited, the coroutine was recorded as a success with its repr.
    assert run("engine_tests.async_add", 2, 3) == ("succeeded", 5, "", "", "")


def test_it_captures_what_a_coroutine_function_prints_and_logs():
    status, result, output, _, _ = run("engine_tests.async_prints", "printed by a coroutine")
    assert (status, result) == ("succeeded", "printed by a coroutine")
    assert output.startswith("printed by a coroutine\n")
    assert "WARNING engine_tests: logged from a coroutine" in output


def test_it_reports_the_failure_of_a_coroutine_function_with_its_traceback():
    status, result, _, error, trace = run("engine_tests.async_fails", "async boom")
    assert (status, result, error) == ("failed", None, "ValueError: async boom")
    assert "raise ValueError(message)" in trace


def test_it_awaits_the_awaitable_an_ordinary_function_returns():
    assert run("engine_tests.returns_a_coroutine", 20, 22) == ("succeeded", 42, "", "", "")


# In a child process ------------------------------------------------------------------


def test_it_returns_a_result_through_the_child_process():
    result = ChildRun(child_request("engine_tests.add", 20, 22)).run(datetime.now(UTC))
    assert (result.status, result.result, result.error) == ("succeeded", 42, "")


def test_it_returns_the_output_of_the_child_process():
    result = ChildRun(child_request("engine_tests.prints", "printed in the child")).run(datetime.now(UTC))
    assert result.output == "printed in the child\n"


def test_it_returns_a_failure_in_the_child_process_with_its_traceback():
    result = ChildRun(child_request("engine_tests.fails", "child boom")).run(datetime.now(UTC))
    assert (result.status, result.error) == ("failed", "ValueError: child boom")
    assert "raise ValueError(message)" in result.traceback


def test_it_reports_a_child_that_exits_without_a_result_as_failed():
    result = ChildRun(child_request("engine_tests.exits", 3)).run(datetime.now(UTC))
    assert result.status == "failed"
    assert result.error == "The job's process exited with code 3 before reporting a result."


def test_it_kills_a_child_that_runs_past_its_timeout(tmp_path):
    began = time.monotonic()
    result = ChildRun(child_request("engine_tests.loops_forever", str(tmp_path / "pid"), timeout=1)).run(
        datetime.now(UTC)
    )
    assert result.status == "timed_out"
    assert result.error == "Timed out after 1s; the process and its children were killed."
    assert time.monotonic() - began < 5


def test_it_runs_a_coroutine_function_in_the_child_process():
    result = ChildRun(child_request("engine_tests.async_add", 20, 22)).run(datetime.now(UTC))
    assert (result.status, result.result, result.error) == ("succeeded", 42, "")


def test_it_kills_a_coroutine_function_that_runs_past_its_timeout_in_the_child(tmp_path):
    marker = tmp_path / "started"
    result = ChildRun(child_request("engine_tests.async_waits_forever", str(marker), timeout=1)).run(datetime.now(UTC))
    assert marker.exists()  # it really ran
    assert (result.status, result.error) == (
        "timed_out",
        "Timed out after 1s; the process and its children were killed.",
    )


def test_it_kills_the_processes_a_timed_out_child_started(tmp_path):
    pid_file = tmp_path / "pid"
    ChildRun(child_request("engine_tests.loops_forever", str(pid_file), timeout=1)).run(datetime.now(UTC))
    grandchild = int(pid_file.read_text())
    assert wait_for(lambda: process_is_gone(grandchild), timeout=3), f"sleep {grandchild} still runs"


def test_it_cancels_a_running_child(tmp_path):
    marker = tmp_path / "started"
    child = ChildRun(child_request("engine_tests.waits_forever", str(marker)))
    killer = threading.Thread(target=lambda: wait_for(marker.exists) and child.kill("cancel requested"))
    killer.start()
    began = time.monotonic()
    result = child.run(datetime.now(UTC))
    killer.join()
    assert result.status == "cancelled"
    assert result.error == "Cancelled (cancel requested); the process was killed."
    assert time.monotonic() - began < 5


def test_it_cancels_a_child_killed_before_it_started(tmp_path):
    child = ChildRun(child_request("engine_tests.waits_forever", str(tmp_path / "started")))
    child.kill("replaced by a newer run")
    began = time.monotonic()
    result = child.run(datetime.now(UTC))
    assert result.status == "cancelled"
    assert time.monotonic() - began < 2  # not the 5 s join of a process nobody signalled
    assert not child.process.is_alive()
