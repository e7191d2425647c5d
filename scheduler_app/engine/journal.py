"""The node's journal: each run's start and end on local disk, the moment they happen.

The writer (writer.py) records outcomes in batches, up to a quarter of a second after a run
ends. A scheduler killed in between took those outcomes with it: recovery recorded bodies
that had finished as `lost`, and ran them again. So the worker thread appends a line before
it calls a body ("S <id>") and one right after it returns ("F <id> <result>"), one write()
each, to a file of its own node, and only then hands the outcome to the writer.

Nothing is fsync'ed: a killed process loses nothing the kernel already has. The node that
recovers a dead one on the same host (its restarted successor, or a standby there) reads
its journal first (recovery.mark_lost): a run that finished is recorded as it finished, and
a queued run whose start is not in the journal provably never started, so it is planned
again rather than lost. A machine crash can lose the last seconds the kernel had not yet
written back (up to about 30 s by default): the journal notes the boot it was written in,
and read after a reboot it still proves what finished, but no longer what never started.

Segments: lines go to the current segment; a new one begins every SEGMENT_BYTES, and a
segment is deleted once the writer has committed every outcome written to it. A node that
stops cleanly deletes its journal; a recovered node's journal is deleted once its runs are
settled.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings

from scheduler_app.engine.runner import RunResult

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 1024 * 1024
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def directory() -> Path:
    return Path(settings.SCHEDULER_JOURNAL_DIR)


def node_directory(node: str) -> Path:
    # Node names are host:pid:time; keep them readable but safe as one path component.
    return directory() / re.sub(r"[^A-Za-z0-9._-]", "_", node)


def boot_id() -> str:
    """This machine's current boot (Linux); '' where unknown: then no journal proves a run
    never started, since a crash could have lost its start."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


class Journal:
    """The journal one node writes. Thread-safe: worker threads append, the writer commits."""

    def __init__(self, path: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = path
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # segment -> outcomes written to it, not yet committed
        self._segment = -1
        self._fd = -1
        self._size = 0
        self._broken = False
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written first, deleted on any failed append: without it (or in another boot) the
        # journal cannot prove that a run never started.
        _write_file(path / "boot", boot_id())
        self._open_segment(0)

    @classmethod
    def open(cls, node: str) -> Journal | None:
        """The journal of this node, or None (logged) when it cannot be created."""
        try:
            return cls(node_directory(node))
        except OSError as exc:
            logger.error("no run journal (%s): a kill -9 of this scheduler can lose the outcomes of the last "
                         "runs, and recovery cannot tell runs that never started", exc)
            return None

    # Writing (worker threads) ----------------------------------------------------------

    def started(self, execution_id: int) -> int | None:
        """Before the body is called. Answers the segment, for `committed`."""
        return self._append(b"S %d\n" % execution_id)

    def finished(self, execution_id: int, result: RunResult) -> int | None:
        """Right after the body returned, before the outcome goes to the writer."""
        record = {
            "status": result.status, "started_at": _iso(result.started_at), "finished_at": _iso(result.finished_at),
            "result": result.result, "output": result.output, "error": result.error, "traceback": result.traceback,
        }
        return self._append(b"F %d %s\n" % (execution_id, json.dumps(record, separators=(",", ":")).encode()))

    def _append(self, line: bytes) -> int | None:
        with self._lock:
            if self._fd < 0:
                return None  # closed (the process is stopping) or broken
            if self._size >= self.segment_bytes:
                self._rotate()
            try:
                if os.write(self._fd, line) != len(line):
                    raise OSError("short write (disk full?)")
            except OSError as exc:
                self._break(exc)
                return None
            self._size += len(line)
            self._pending[self._segment] += 1
            return self._segment

    def _open_segment(self, number: int) -> None:
        self._fd = os.open(self._segment_path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment, self._size = number, 0
        self._pending[number] = 0

    def _rotate(self) -> None:
        old = self._segment
        os.close(self._fd)
        try:
            self._open_segment(old + 1)
        except OSError as exc:
            self._fd = -1
            self._break(exc)
        self._delete_done()

    def _break(self, exc: OSError) -> None:
        """An append failed: a start may be missing, so this journal must prove nothing unstarted."""
        if not self._broken:
            logger.error("the run journal %s failed (%s); recovery will not trust it to tell unstarted runs",
                         self.path, exc)
        self._broken = True
        try:
            (self.path / "boot").unlink(missing_ok=True)
        except OSError:
            pass

    # Committing (the writer's thread) --------------------------------------------------

    def committed(self, segments: Iterable[int | None]) -> None:
        """The writer committed outcomes written to these segments; delete segments now done."""
        with self._lock:
            for segment in segments:
                if segment is not None:
                    self._pending[segment] -= 1
            self._delete_done()

    def _delete_done(self) -> None:
        for segment in [s for s, n in self._pending.items() if n <= 0 and s != self._segment]:
            del self._pending[segment]
            try:
                self._segment_path(segment).unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("could not delete journal segment %s (%s)", segment, exc)

    def close(self, *, remove: bool) -> None:
        """Stop writing; `remove`: every outcome is committed, so the journal goes too."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)

    def _segment_path(self, number: int) -> Path:
        return self.path / f"{number:08d}.log"


# Reading (the recovering node) --------------------------------------------------------------


@dataclass
class Replay:
    """What a dead node's journal proves."""

    started: set[int] = field(default_factory=set)
    finished: dict[int, RunResult] = field(default_factory=dict)
    # True when no start can be missing (same boot, no failed append): a queued run that is
    # not in `started` never started.
    complete: bool = False


def read(node: str) -> Replay | None:
    """The journal of `node` in this host's journal directory, or None if there is none."""
    path = node_directory(node)
    if not path.is_dir():
        return None
    replay = Replay()
    try:
        written_in = (path / "boot").read_text().strip()
    except OSError:
        written_in = ""
    replay.complete = bool(written_in) and written_in == boot_id()
    for segment in sorted(path.glob("*.log")):
        try:
            data = segment.read_bytes()
        except OSError as exc:
            logger.warning("cannot read journal segment %s (%s)", segment, exc)
            replay.complete = False
            continue
        for line in data.splitlines():
            _replay_line(line, replay)
    return replay


def _replay_line(line: bytes, replay: Replay) -> None:
    # A line cut short (the last write of a full disk) is skipped: its run counts as unknown.
    try:
        kind, execution_id, *rest = line.split(b" ", 2)
        if kind == b"S":
            replay.started.add(int(execution_id))
        elif kind == b"F":
            record = json.loads(rest[0])
            replay.finished[int(execution_id)] = RunResult(
                record["status"], datetime.fromisoformat(record["started_at"]),
                datetime.fromisoformat(record["finished_at"]), record["result"], record["output"],
                record["error"], record["traceback"],
            )
            replay.started.add(int(execution_id))
    except (ValueError, IndexError, KeyError, TypeError):
        logger.warning("skipping a damaged journal line: %r", line[:200])


def remove(node: str) -> None:
    shutil.rmtree(node_directory(node), ignore_errors=True)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _write_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
