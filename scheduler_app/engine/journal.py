"""The node's journal: each run's start and end on local disk, the moment they happen.

The writer (writer.py) records outcomes in batches, up to a quarter of a second after a run
ends. A scheduler killed in between took those outcomes with it: recovery recorded bodies
that had finished as `lost`, and ran them again. So the worker thread appends a line before
it calls a body ("S <id>") and one right after it returns ("F <id> <result>") to a file of
its own node, and only then hands the outcome to the writer.

The file is mapped into memory (mmap, MAP_SHARED) and a line is one copy into the mapping:
the pages are the kernel's page cache, so a killed process loses nothing it copied. Not a
write() per line: a syscall releases the GIL, and ten worker threads each waiting up to a
switch interval to get it back after every write() tripled the start lag at a thousand
runs a second. Segments are allocated on disk up front (a full disk fails the allocation,
never a write into the mapping).

Nothing is fsync'ed. The node that recovers a dead one on the same host (its restarted
successor, or a standby there) reads its journal first (recovery.mark_lost): a run that
finished is recorded as it finished, and a queued run whose start is not in the journal
provably never started, so it is planned again rather than lost. A machine crash can lose
the last seconds the kernel had not yet written back (up to about 30 s by default): the
journal notes the boot it was written in, and read after a reboot it still proves what
finished, but no longer what never started.

Segments: lines go to the current segment, SEGMENT_BYTES long (zeros past the last line);
a new one begins when a line does not fit, and a segment is deleted once the writer has
committed every outcome written to it. A node that stops cleanly deletes its journal; a
recovered node's journal is deleted once its runs are settled.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler_app.conf import tempora_settings
from scheduler_app.engine.runner import RunResult

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 4 * 1024 * 1024
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def directory() -> Path:
    return Path(tempora_settings.JOURNAL_DIR)


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
    """The journal one node writes. Thread-safe: worker threads append, the writer commits.

    Appending holds a lock only for a copy into memory: no syscall, so the GIL is never
    released while it is held.
    """

    def __init__(self, path: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = path
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # segment -> outcomes written to it, not yet committed
        self._maps: dict[int, mmap.mmap] = {}
        self._segment = -1
        self._map: mmap.mmap | None = None
        self._position = 0
        self._broken = False
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written first, deleted on any failed append: without it (or in another boot) the
        # journal cannot prove that a run never started.
        _write_file(path / "boot", boot_id())
        self._open_segment(0, segment_bytes)

    @classmethod
    def open(cls, node: str) -> Journal | None:
        """The journal of this node, or None (logged) when it cannot be created."""
        try:
            return cls(node_directory(node))
        except OSError as exc:
            logger.error(
                "no run journal (%s): a kill -9 of this scheduler can lose the outcomes of the last "
                "runs, and recovery cannot tell runs that never started",
                exc,
            )
            return None

    # Writing (worker threads) ----------------------------------------------------------

    def started(self, execution_id: int) -> int | None:
        """Before the body is called. Answers the segment, for `committed`."""
        return self._append(b"S %d\n" % execution_id)

    def finished(self, execution_id: int, result: RunResult) -> int | None:
        """Right after the body returned, before the outcome goes to the writer.

        `F <id> <status> <started µs> <finished µs> [JSON of what else there is]`: JSON only
        when the run left a result, output or an error (encoding it every time was most of
        the journal's cost per run)."""
        line = b"F %d %s %d %d" % (
            execution_id,
            result.status.encode(),
            _micros(result.started_at),
            _micros(result.finished_at),
        )
        rest = {name: value for name in _PAYLOAD if (value := getattr(result, name)) not in (None, "")}
        if rest:
            line += b" " + json.dumps(rest, separators=(",", ":")).encode()
        return self._append(line + b"\n")

    def _append(self, line: bytes) -> int | None:
        with self._lock:
            if self._map is None:
                return None  # closed (the process is stopping) or broken
            end = self._position + len(line)
            if end > len(self._map):
                try:
                    self._rotate(len(line))
                except OSError as exc:
                    self._break(exc)
                    return None
                end = len(line)
            self._map[self._position : end] = line
            self._position = end
            self._pending[self._segment] += 1
            return self._segment

    def _open_segment(self, number: int, size: int) -> None:
        fd = os.open(self._segment_path(number), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)  # the blocks now: a full disk is an error here, not a SIGBUS later
            mapped = mmap.mmap(fd, size)
        finally:
            os.close(fd)  # the mapping keeps the file
        self._segment, self._map, self._position = number, mapped, 0
        self._maps[number] = mapped
        self._pending[number] = 0

    def _rotate(self, need: int) -> None:
        self._open_segment(self._segment + 1, max(self.segment_bytes, need))
        _delete(self._take_done())

    def _break(self, exc: OSError) -> None:
        """An append failed: a start may be missing, so this journal must prove nothing unstarted."""
        if not self._broken:
            logger.error(
                "the run journal %s failed (%s); recovery will not trust it to tell unstarted runs", self.path, exc
            )
        self._broken = True
        self._map = None
        try:
            (self.path / "boot").unlink(missing_ok=True)
        except OSError:
            pass

    # Committing (the writer's thread) --------------------------------------------------

    def committed(self, segments: Iterable[int | None]) -> None:
        """The writer committed outcomes written to these segments; delete segments now done.

        Counted before taking the lock, deleted after: a worker thread waiting for the lock
        gives up the GIL, and getting it back can take a whole switch interval."""
        counts = Counter(segment for segment in segments if segment is not None)
        if not counts:
            return
        with self._lock:
            for segment, n in counts.items():
                self._pending[segment] -= n
            done = self._take_done()
        _delete(done)

    def _take_done(self) -> list[tuple[mmap.mmap, Path]]:
        """(Under the lock.) Segments, other than the current one, with nothing left to commit."""
        done = []
        for segment in [s for s, n in self._pending.items() if n <= 0 and s != self._segment]:
            del self._pending[segment]
            done.append((self._maps.pop(segment), self._segment_path(segment)))
        return done

    def close(self, *, remove: bool) -> None:
        """Stop writing; `remove`: every outcome is committed, so the journal goes too."""
        with self._lock:
            self._map = None
            for mapped in self._maps.values():
                mapped.close()
            self._maps.clear()
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
        # Zeros: the unwritten rest of the segment, or a line a killed thread had reserved
        # and not yet copied (it then prefixes the next line).
        for line in data.split(b"\n"):
            line = line.lstrip(b"\x00")
            if line:
                _replay_line(line, replay)
    return replay


def _replay_line(line: bytes, replay: Replay) -> None:
    # A line cut short (the last write of a full disk) is skipped: its run counts as unknown.
    try:
        kind, execution_id, *rest = line.split(b" ", 5)
        if kind == b"S" and not rest:
            replay.started.add(int(execution_id))
        elif kind == b"F":
            status, started, finished, *payload = rest
            extra = json.loads(payload[0]) if payload else {}
            replay.finished[int(execution_id)] = RunResult(
                status.decode(),
                _from_micros(int(started)),
                _from_micros(int(finished)),
                extra.get("result"),
                extra.get("output", ""),
                extra.get("error", ""),
                extra.get("traceback", ""),
            )
            replay.started.add(int(execution_id))
        else:
            raise ValueError(kind)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        logger.warning("skipping a damaged journal line: %r", line[:200])


def remove(node: str) -> None:
    shutil.rmtree(node_directory(node), ignore_errors=True)


def _delete(segments: list[tuple[mmap.mmap, Path]]) -> None:
    for mapped, path in segments:
        mapped.close()
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not delete journal segment %s (%s)", path, exc)


_PAYLOAD = ("result", "output", "error", "traceback")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND  # exact, unlike timestamp()'s float


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _write_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
