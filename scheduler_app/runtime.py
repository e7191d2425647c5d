"""What a running task may ask the scheduler: should this run stop?

    from scheduler_app.registry import task
    from scheduler_app.runtime import raise_if_cancelled

    @task
    def import_rows(path: str) -> int:
        done = 0
        for batch in read_batches(path):
            raise_if_cancelled()  # a cancelled run stops here, between two batches
            save(batch)
            done += len(batch)
        return done

A run that executes in a scheduler thread (or on a Celery worker) is stopped in two steps.
First the flag these functions read is set: when someone cancels the run, or when it passes
its time limit. A task that looks at it stops where it chooses. A body that does not look
is interrupted a moment later: `RunCancelled` or `RunTimedOut` is raised into its thread at
the next line of Python it executes, or its asyncio task is cancelled. Neither reaches into
a blocking C call (time.sleep, a socket read): the exception lands when that call returns.
A run in a child process (a job with a timeout of its own) is killed instead.

Both exceptions derive from BaseException, like KeyboardInterrupt, so the usual
`except Exception:` in a task does not swallow them. A body that ends by raising one of them
is recorded as cancelled or timed out; one that returns normally is recorded by its outcome.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class RunStopped(BaseException):
    """The scheduler stopped this run (see the module's docstring)."""


class RunCancelled(RunStopped):
    """Someone cancelled this run."""


class RunTimedOut(RunStopped):
    """This run passed its time limit."""


class _Control(Protocol):
    reason: str | None  # None while the run may go on; else "cancel", "timeout" or "shutdown"


# The run this code executes for. A context variable, not a thread-local, so that the
# tasks and threads a coroutine starts through asyncio (to_thread, run_in_executor) see it.
current: ContextVar[_Control | None] = ContextVar("tempora_run", default=None)

_EXCEPTIONS = {"cancel": RunCancelled, "timeout": RunTimedOut}


def cancel_requested() -> bool:
    """True once this run should stop: it was cancelled, passed its time limit, or its
    scheduler is shutting down. Always False outside a run (a test, a shell)."""
    control = current.get()
    return control is not None and control.reason is not None


def raise_if_cancelled() -> None:
    """Raise RunCancelled (or RunTimedOut) if this run should stop; else do nothing."""
    control = current.get()
    if control is not None and control.reason is not None:
        raise _EXCEPTIONS.get(control.reason, RunStopped)(control.reason)
