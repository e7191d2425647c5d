"""A cluster to break: runscheduler processes behind proxies, Celery workers, CPU hogs, a monitor.

Built on tests/process/harness.py (its Schedulers start the processes and wait on the
database). What this adds:

- every scheduler reaches PostgreSQL through a Proxy of its own, so any of them — the
  leader of the moment — can be cut off without touching the shared server;
- Celery workers on a Redis database only this suite uses, each in a session of its own so
  that a `kill -9` of the whole worker takes its pool processes with it;
- a Monitor thread that polls the database ten times a second and notes who holds the
  lease, each node's state, and when every Execution row became visible (so failover and
  commits by a deposed leader are measured from what other processes could see);
- the acts (kill -9 of the leader, a cut, SIGTERM with a standby, Celery kills), each one
  recorded as an Event with its wall-clock time, which the verdict compares with the rows
  and the traces.

Times are wall-clock (time.time()): the rows and the traces are stamped with the same clock
by processes on this host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import DatabaseError, connection
from django.db.models import Q

from scheduler_app.models import Execution, SchedulerNode, SchedulerState
from tests.chaos.jobs_for_chaos import TRACE_FILE
from tests.process.harness import POLL, ROOT, SchedulerProcess, Schedulers, database_url, process_gone
from tests.process.proxy import Proxy

TASK_MODULE = "tests.chaos.jobs_for_chaos"
# A Redis database only this suite uses (tests/process/test_celery_executor.py uses 14): it is
# flushed at the start, so no message from an earlier run names an execution of this one.
BROKER_DB = 13
BROKER = f"redis://127.0.0.1:6379/{BROKER_DB}"
MONITOR_POLL = 0.1


@dataclass
class Event:
    kind: str  # kill | cut | sigterm | stop | celery_pool_kill | celery_worker_kill | start
    at: float
    node: str = ""
    until: float | None = None  # the end of a cut
    pids: tuple[int, ...] = ()
    note: str = ""


@dataclass
class Node:
    """One runscheduler process of the cluster, and what the test did to it."""

    process: SchedulerProcess
    name: str
    proxy: Proxy
    drain: float
    started_at: float
    killed_at: float | None = None
    terminated_at: float | None = None
    exited_at: float | None = None  # seen gone by the monitor
    cuts: list[list[float | None]] = field(default_factory=list)  # [start, end]

    @property
    def cut_now(self) -> bool:
        return bool(self.cuts) and self.cuts[-1][1] is None


@dataclass
class Seen:
    """An Execution row as the monitor first saw it (its commit happened since the poll before)."""

    pk: int
    worker: str
    reason: str
    at: float
    poll: int


class Monitor(threading.Thread):
    """Polls the database while the cluster runs; its own connection (Django's are per thread)."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(name="chaos-monitor", daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()
        self.leaders: list[tuple[float, str, int]] = []  # per poll: (time, leader, lease epoch)
        self.node_states: list[tuple[float, str, str]] = []  # (time, node, state) at each change
        self.seen: dict[int, Seen] = {}
        # When each row was first seen `lost`: the row's finished_at is the recovering
        # round's start, which can be seconds before its commit.
        self.lost_seen: dict[int, float] = {}
        self.errors: list[str] = []
        self._max_id = 0
        self._gaps: dict[int, float] = {}  # ids below the highest seen, not visible yet
        self._last_state: dict[str, str] = {}

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.poll()
                except DatabaseError as exc:  # the test's own connection is direct: unexpected, noted
                    self.errors.append(f"{time.time():.3f} {exc}")
                    connection.close()
                self.stopping.wait(MONITOR_POLL)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)

    def poll(self) -> None:
        index = len(self.leaders)
        rows = list(
            Execution.objects.filter(Q(pk__gt=self._max_id) | Q(pk__in=list(self._gaps))).values_list(
                "pk", "worker", "reason"
            )
        )
        # Read after the rows: a row first seen in this poll was committed while the leader
        # was the one read here or the one read by the poll before.
        state = SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).values_list(
            "leader", "lease_epoch"
        ).first() or ("", 0)
        nodes = list(SchedulerNode.objects.values_list("name", "state"))
        lost = list(
            Execution.objects.filter(
                status="lost", finished_at__gte=datetime.now(UTC) - timedelta(minutes=2)
            ).values_list("pk", flat=True)
        )
        now = time.time()
        for pk in lost:
            self.lost_seen.setdefault(pk, now)
        self.leaders.append((now, state[0], state[1]))
        for name, node_state in nodes:
            if self._last_state.get(name) != node_state:
                self._last_state[name] = node_state
                self.node_states.append((now, name, node_state))
        previous_max = self._max_id
        for pk, worker, reason in rows:
            self._gaps.pop(pk, None)
            if pk not in self.seen:
                self.seen[pk] = Seen(pk, worker, reason, now, index)
            self._max_id = max(self._max_id, pk)
        visible = {pk for pk, _, _ in rows}
        for pk in range(previous_max + 1, self._max_id):
            if pk not in visible:
                self._gaps[pk] = now
        # An id a rolled-back insert used never appears: forget it after a minute.
        for pk, since in list(self._gaps.items()):
            if now - since > 60:
                del self._gaps[pk]
        for node in list(self.cluster.nodes.values()):  # the test thread adds nodes meanwhile
            if node.exited_at is None and process_gone(node.process.pid):
                node.exited_at = now

    def leader_at(self, poll: int) -> str:
        return self.leaders[poll][1] if 0 <= poll < len(self.leaders) else ""


class Cluster:
    """Schedulers, Celery workers and CPU hogs for one chaos run, and the acts played on them."""

    def __init__(self, schedulers: Schedulers, *, lease: int, drain: float, max_workers: int, hogs: int) -> None:
        self.schedulers = schedulers
        self.lease = lease
        self.drain = drain
        self.max_workers = max_workers
        self.hog_count = hogs
        self.var_dir = schedulers.var_dir
        schedulers.env["TEMPORA_TASK_MODULES"] = TASK_MODULE
        schedulers.env["CELERY_BROKER_URL"] = BROKER
        self.nodes: dict[str, Node] = {}
        self.events: list[Event] = []
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.hogs: list[subprocess.Popen] = []
        self.celery_killed: dict[int, float] = {}  # pool or worker pid → when it was killed
        self.harness_notes: list[str] = []
        self.unplayed: list[str] = []  # an act that could not be played, and why
        self.celery_stuck: list[str] = []  # Celery rows still `running` at the recovery bound
        self.celery_left_running: list[str] = []  # ... and after the workers' warm shutdown
        self.monitor = Monitor(self)
        target = urlsplit(database_url())
        self._target = (target.hostname or "127.0.0.1", target.port or 5432)
        self._url = target

    @property
    def trace_path(self) -> Path:
        return self.var_dir / TRACE_FILE

    def note(self, text: str) -> None:
        self.harness_notes.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"[chaos] {text}", flush=True)

    # Starting and stopping ----------------------------------------------------------------

    def start(self, schedulers: int) -> None:
        import redis

        redis.Redis.from_url(BROKER).flushdb()
        self.trace_path.touch()
        self.hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.hog_count)]
        self.monitor.start()
        first = self.start_scheduler()
        self.schedulers.wait_leading(first.process, timeout=30)
        for _ in range(schedulers - 1):
            self.start_scheduler()
        self.start_worker()

    def start_scheduler(self) -> Node:
        proxy = Proxy(self._target, name=f"proxy-{len(self.nodes) + 1}")
        netloc = self._url.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{proxy.port}"
        url = urlunsplit(self._url._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
        process = self.schedulers.start(
            drain=self.drain,
            lease=self.lease,
            env={"DATABASE_URL": url, "SCHEDULER_MAX_WORKERS": str(self.max_workers)},
        )
        node = Node(process, process.node_name(), proxy, self.drain, time.time())
        self.nodes[node.name] = node
        self.events.append(Event("start", node.started_at, node.name))
        return node

    def start_worker(self) -> subprocess.Popen:
        log_path = self.var_dir / f"celery-worker-{len(self.workers) + 1}.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    "3",
                    "--loglevel",
                    "INFO",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=self.schedulers.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a whole-worker kill -9 takes the pool with it
            )
        self.workers.append(worker)
        self.worker_logs.append(log_path)
        self.schedulers.wait_for(
            lambda: "ready." in log_path.read_text(errors="replace"),
            timeout=60,
            what=f"Celery worker {len(self.workers)} to be ready",
        )
        return worker

    def stop_all(self, *, timeout: float) -> None:
        """The end of the run: SIGTERM every scheduler (each drains), then warm-stop the workers."""
        stopping = [node for node in self.nodes.values() if node.process.alive()]
        for node in stopping:
            node.terminated_at = time.time()
            self.events.append(Event("stop", node.terminated_at, node.name))
            node.process.terminate()
        for node in stopping:
            node.process.wait_exit(timeout)
            node.exited_at = node.exited_at or time.time()
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                self.note(f"Celery worker {worker.pid} did not finish its warm shutdown in 30 s")

    def teardown(self) -> None:
        """Whatever happened: nothing of this run left running, no connection left open."""
        self.monitor.stop()
        for process in self.hogs:
            process.kill()
            process.wait(10)
        for worker in self.workers:
            try:
                os.killpg(worker.pid, signal.SIGKILL)  # the pool processes too
            except ProcessLookupError:
                pass
            worker.wait(10)
        self.schedulers.stop_all()
        for node in self.nodes.values():
            node.proxy.close()
        for pid in self.trace_pids():
            if not process_gone(pid):  # a job's child process that outlived its scheduler
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def logs(self) -> str:
        parts = [self.schedulers.logs()]
        for path in self.worker_logs:
            text = path.read_text(errors="replace")
            parts.append(f"===== {path.name} =====\n{text[-6000:]}")
        return "\n".join(parts)

    def all_log_text(self) -> str:
        texts = [node.process.log() for node in self.nodes.values()]
        texts += [path.read_text(errors="replace") for path in self.worker_logs]
        return "\n".join(texts)

    # The cluster's state ----------------------------------------------------------------

    def live(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.process.alive() and node.terminated_at is None]

    def leader(self, *, timeout: float) -> Node | None:
        """The live node holding the lease and scheduling (None, noted, if none within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.schedulers.check_alive()
            name = (
                SchedulerState.objects.filter(pk=SchedulerState.SINGLETON_ID).values_list("leader", flat=True).first()
            )
            node = self.nodes.get(name or "")
            if node is not None and node in self.live() and not node.cut_now:
                if f"{name} leads: scheduling" in node.process.log():
                    return node
            time.sleep(POLL)
        self.note(f"no live leader within {timeout:.0f}s")
        self.unplayed.append(f"{time.strftime('%H:%M:%S')}: no live leader within {timeout:.0f}s")
        return None

    def traces(self) -> list[tuple[str, int, str, int, float, str]]:
        """The trace lines: (S|E, execution id, occurrence, pid, time, label)."""
        lines = []
        for line in self.trace_path.read_text().splitlines():
            kind, execution, occurrence, pid, at, *label = line.split(" ")
            lines.append((kind, int(execution), occurrence, int(pid), float(at), " ".join(label)))
        return lines

    def trace_pids(self) -> set[int]:
        try:
            return {pid for _, _, _, pid, _, _ in self.traces()}
        except FileNotFoundError:
            return set()

    def _body(self, execution_id: int) -> tuple[int, float] | None:
        """(pid, start) of a body that started and has not ended (its process may be dead)."""
        started = None
        for kind, pk, _, pid, at, _ in self.traces():
            if pk == execution_id:
                if kind == "E":
                    return None
                started = (pid, at)
        return started

    def _live_body(self, execution_id: int) -> tuple[int, float] | None:
        """(pid, start) of a body in progress: started, not ended, its process alive."""
        body = self._body(execution_id)
        return body if body is not None and not process_gone(body[0]) else None

    # The acts -----------------------------------------------------------------------------

    def kill_leader(self) -> Event | None:
        """kill -9 of the leader, and a new scheduler in its place (as a supervisor would)."""
        node = self.leader(timeout=3 * self.lease)
        if node is None:
            return None
        event = Event("kill", time.time(), node.name)
        node.killed_at = event.at
        node.process.kill()
        self.events.append(event)
        self.note(f"kill -9 of the leader {node.name}")
        self.start_scheduler()
        return event

    def cut_leader(self, seconds: float, mode: str = "freeze") -> Event | None:
        """The leader's proxy cut for `seconds` (freeze: a partition; drop: resets and refusals)."""
        node = self.leader(timeout=3 * self.lease)
        if node is None:
            return None
        event = Event("cut", time.time(), node.name, note=mode)
        node.cuts.append([event.at, None])
        getattr(node.proxy, mode)()
        self.events.append(event)
        self.note(f"cut ({mode}) of the leader {node.name} for {seconds:g}s")
        self.schedulers.watch(seconds)
        node.proxy.resume()
        event.until = node.cuts[-1][1] = time.time()
        return event

    def sigterm_with_standby(self, long_jobs: list, *, into_body: float = 2.0) -> Event | None:
        """SIGTERM of the leader while long runs are in their bodies there; standbys stand by."""
        from scheduler_app import services

        node = self.leader(timeout=3 * self.lease)
        if node is None:
            return None
        runs = [services.job_run_now(job=job) for job in long_jobs]

        def started_on_leader():
            rows = Execution.objects.filter(pk__in=[run.pk for run in runs], status="running")
            return (
                len(rows) == len(runs)
                and all(self._live_body(row.pk) for row in rows)
                and {row.worker for row in rows} == {node.name}
            )

        self.schedulers.wait_for(started_on_leader, timeout=15, what="the long runs to start on the leader")
        self.schedulers.watch(into_body)
        event = Event("sigterm", time.time(), node.name, note=f"drain {node.drain:g}s")
        node.terminated_at = event.at
        node.process.terminate()
        self.events.append(event)
        self.note(f"SIGTERM of the leader {node.name} with {len(long_jobs)} long runs in their bodies")
        self.start_scheduler()
        return event

    def kill_celery_pool_process(self, job_names: list[str], *, timeout: float = 20) -> Event | None:
        """kill -9 of the pool process that runs a body of one of `job_names`; the worker replaces it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pk in Execution.objects.filter(job_name__in=job_names, status="running").values_list("pk", flat=True):
                body = self._live_body(pk)
                if body:
                    event = Event("celery_pool_kill", time.time(), pids=(body[0],), note=f"execution {pk}")
                    os.kill(body[0], signal.SIGKILL)
                    self.celery_killed[body[0]] = event.at
                    self.events.append(event)
                    self.note(f"kill -9 of the Celery pool process {body[0]} (running execution {pk})")
                    return event
            time.sleep(POLL)
        self.note(f"no Celery body of {job_names} running within {timeout:.0f}s: no pool process killed")
        self.unplayed.append(f"{time.strftime('%H:%M:%S')}: no Celery body running to kill its pool process")
        return None

    def kill_celery_worker(self, job_names: list[str], *, timeout: float = 20) -> Event | None:
        """kill -9 of a whole worker (main process and pool) in a body's middle, then a new worker."""
        worker = self.workers[-1]

        def bodies():
            running = Execution.objects.filter(job_name__in=job_names, status="running").values_list("pk", flat=True)
            return [pk for pk in running if self._live_body(pk)]

        in_body = self.schedulers.wait_for(bodies, timeout=timeout, what="a Celery body to be running")
        pids = tuple(_process_group(worker.pid))
        event = Event("celery_worker_kill", time.time(), pids=pids, note=f"executions {in_body} in their bodies")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        for pid in pids:
            self.celery_killed[pid] = event.at
        self.events.append(event)
        self.note(f"kill -9 of the whole Celery worker {worker.pid} (pids {', '.join(map(str, pids))}), {event.note}")
        self.start_worker()
        return event

    def wait_exits(self, timeout: float) -> None:
        """Wait for the nodes the test stopped with SIGTERM to finish their drain."""
        for node in self.nodes.values():
            if node.terminated_at is not None and node.process.alive():
                node.process.wait_exit(timeout)

    def stuck_celery_runs(self, job_names: list[str], *, until: float, settle: float = 5) -> list[str]:
        """Poll until `until` for Celery rows `running` that nothing runs any more; answer those left.

        Stuck: its body's process is dead, or its body ended (or never started) more than
        `settle` seconds ago — a row is written a moment after its body ends.
        """
        while True:
            stuck, now = [], time.time()
            for row in Execution.objects.filter(job_name__in=job_names, status="running"):
                body = self._body(row.pk)
                ended = self._ended(row.pk)
                if body is not None and process_gone(body[0]):
                    why = f"its pool process {body[0]} is dead"
                elif ended is not None and ended < now - settle:
                    why = f"its body ended {now - ended:.1f}s ago"
                elif body is None and ended is None and row.started_at.timestamp() < now - 2 * settle:
                    why = f"its body never started, {now - row.started_at.timestamp():.0f}s after its claim"
                else:
                    continue
                stuck.append(
                    f"execution {row.pk} ({row.job_name}, started {row.started_at:%H:%M:%S}) is still `running`: {why}"
                )
            if not stuck or time.time() >= until:
                return stuck
            time.sleep(0.5)

    def _ended(self, execution_id: int) -> float | None:
        """When this execution's body ended (its last end line), or None."""
        ends = [at for kind, pk, _, _, at, _ in self.traces() if kind == "E" and pk == execution_id]
        return max(ends, default=None)


def _process_group(pgid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def require_redis() -> None:
    """The suite needs the broker: a missing Redis is a failure, never a skip."""
    import redis

    try:
        redis.Redis.from_url(BROKER, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"the chaos suite needs Redis at {BROKER} for its Celery worker: {exc}")
