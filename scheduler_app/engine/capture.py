"""Capture what a run prints and logs, per thread, capped.

Jobs run in a pool of threads that share sys.stdout and the logging tree. A run's output is
collected by thread: while a thread runs a job, whatever it writes to stdout or stderr and
whatever log records it emits go into that run's buffer (capped, so a chatty job cannot eat
the scheduler's memory); other threads write through as usual.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from contextlib import contextmanager

_local = threading.local()
_install_lock = threading.Lock()
_installed = False
TRUNCATED = "\n[output truncated]\n"


class CappedBuffer:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def write(self, text: str) -> None:
        if self.truncated or not text:
            return
        room = self.limit - self._size
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self._parts.append(text)
        self._size += len(text)

    def getvalue(self) -> str:
        return "".join(self._parts) + (TRUNCATED if self.truncated else "")


class _ThreadStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: the current run's buffer, else the real stream."""

    def __init__(self, original) -> None:
        self._original = original

    def write(self, text: str) -> int:
        buffer = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.write(text)
        else:
            self._original.write(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "buffer", None) is None:
            self._original.flush()

    def __getattr__(self, name):
        return getattr(self._original, name)


class _ThreadLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.write(self.format(record) + "\n")


def install() -> None:
    """Route stdout, stderr and log records through the per-thread buffers (once per process)."""
    global _installed
    with _install_lock:
        # Checked every time, not once: whoever replaces sys.stdout after us (a test runner
        # between tests, a library redirecting output) would otherwise send every later
        # run's prints past its buffer.
        if not isinstance(sys.stdout, _ThreadStream):
            sys.stdout = _ThreadStream(sys.stdout)
        if not isinstance(sys.stderr, _ThreadStream):
            sys.stderr = _ThreadStream(sys.stderr)
        if _installed:
            return
        handler = _ThreadLogHandler(level=logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        _installed = True


@contextmanager
def captured(limit: int):
    """`with captured(65536) as buffer:` collects this thread's output into `buffer`."""
    install()
    buffer = CappedBuffer(limit)
    previous = getattr(_local, "buffer", None)
    _local.buffer = buffer
    try:
        yield buffer
    finally:
        _local.buffer = previous


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED
