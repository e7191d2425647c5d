"""Judging a chaos run: the database's rows against the bodies' own traces and the test's acts.

Every check answers a list of violations (one line each, with the evidence); the figures
are what the README quotes. Times are unix seconds on this host's clock, which stamps the
rows, the traces and the acts alike.

When may a node be "down"? The test knows what it did to each: a node is down from its
kill -9, during a cut (plus `cut_grace` for its first heartbeat after), and at the end of
its own drain after a SIGTERM. Recovery of a node at any other moment — marking it stopped
or its runs lost — declares a live node dead.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from scheduler_app.models import Execution
from tests.chaos.cluster import Cluster, Event, Node

STOP_SLACK = 2.0  # a stopping node marks itself stopped (and its leftovers lost) this close to its "stopped" line
PASS_REASONS = ("schedule", "catch_up")  # rows a scheduling pass inserts


@dataclass(frozen=True)
class Limits:
    lease: float
    failover: float  # kill -9 of the leader → the first pass committed by the next one
    graceful_failover: float  # SIGTERM of the leader → the first pass committed by a standby
    lost_window: float  # a body's end → its outcome durable (a kill inside it may record `lost`)
    celery_recovery: float  # a Celery kill → no run of it left `running`
    cut_grace: float  # after a cut ends, until the node has beaten again
    child_exit: float  # a child run's body may still end this long after its scheduler's kill -9


@dataclass(frozen=True)
class JobSpec:
    name: str
    interval: int | None  # None: no trigger (run now only)
    seconds: float  # the body's length
    lost_policy: str = "auto"
    max_retries: int = 0
    executor: str = "thread"
    timeout: int | None = None  # a timeout of its own: the body runs in a child process

    @property
    def at_most_once(self) -> bool:
        return self.lost_policy == "record"


@dataclass
class Body:
    """One body's trace: where it ran, when it started, when (if) it ended."""

    execution: int
    pid: int
    start: float
    end: float | None = None
    starts: int = 1


@dataclass
class Row:
    pk: int
    job: str
    scheduled_for: datetime
    attempt: int
    reason: str
    status: str
    worker: str
    started_at: float | None
    finished_at: float | None
    error: str


@dataclass
class Verdict:
    figures: dict[str, str] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)

    def failed(self) -> dict[str, list[str]]:
        return {name: found for name, found in self.violations.items() if found}

    def report(self, limit: int = 8) -> str:
        lines = ["", "== chaos figures (paste into the README) =="]
        lines += [f"  {name}: {value}" for name, value in self.figures.items()]
        lines.append("== acts ==")
        lines += [f"  {line}" for line in self.timeline]
        lines.append("== checks ==")
        for name, found in self.violations.items():
            lines.append(f"  {'FAIL' if found else 'ok  '} {name}: {len(found)}")
            lines += [f"       - {line}" for line in found[:limit]]
            if len(found) > limit:
                lines.append(f"       ... and {len(found) - limit} more")
        return "\n".join(lines)


def owed(job, interval: int, end: datetime) -> list[datetime]:
    """The fire times a row is owed for: from the job's start (its start_at, or its creation
    if later) until `end`."""
    when = job.start_at
    while when < job.created_at:
        when += timedelta(seconds=interval)
    times = []
    while when <= end:
        times.append(when)
        when += timedelta(seconds=interval)
    return times


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _at(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def _spread(values: list[float], unit: str = "s") -> str:
    if not values:
        return "none"
    return (
        f"min {min(values):.2f} {unit}, median {statistics.median(values):.2f} {unit}, "
        f"max {max(values):.2f} {unit} (n={len(values)})"
    )


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)]


class Judge:
    def __init__(self, cluster: Cluster, specs: list[JobSpec], limits: Limits, *, start: float, end: float) -> None:
        self.cluster = cluster
        self.specs = {spec.name: spec for spec in specs}
        self.limits = limits
        self.start = start
        self.end = end
        self.rows = [
            Row(
                r["pk"],
                r["job_name"],
                r["scheduled_for"],
                r["attempt"],
                r["reason"],
                r["status"],
                r["worker"],
                _ts(r["started_at"]),
                _ts(r["finished_at"]),
                r["error"],
            )
            for r in Execution.objects.filter(job_name__in=list(self.specs)).values(
                "pk",
                "job_name",
                "scheduled_for",
                "attempt",
                "reason",
                "status",
                "worker",
                "started_at",
                "finished_at",
                "error",
            )
        ]
        self.by_pk = {row.pk: row for row in self.rows}
        self.bodies: dict[int, Body] = {}
        self.unattributed: list[str] = []
        for kind, pk, _, pid, at, label in cluster.traces():
            body = self.bodies.get(pk)
            if kind == "S":
                if body is None:
                    self.bodies[pk] = Body(pk, pid, at)
                else:
                    body.starts += 1
            elif body is not None:
                body.end = at
            if pk not in self.by_pk:
                self.unattributed.append(f"trace of execution {pk} ({label}) has no row")
        self.kills = [e for e in cluster.events if e.kind == "kill"]
        self._own_stops: dict[str, float] = {}
        self.verdict = Verdict()

    # When a node may be down ----------------------------------------------------------------

    def down(self, node: Node, t: float) -> str | None:
        """Why `node` may be taken for dead at `t`, or None: it was alive and reachable."""
        if node.killed_at is not None and t >= node.killed_at:
            return "killed"
        for start, end in node.cuts:
            if start <= t <= (end if end is not None else float("inf")) + self.limits.cut_grace:
                return "cut off"
        if node.terminated_at is not None and t >= self.own_stop(node) - STOP_SLACK:
            return "stopping"
        if node.exited_at is not None and t >= node.exited_at:
            return "exited"
        return None

    def own_stop(self, node: Node) -> float:
        """When a SIGTERM'd node finished its own shutdown: its "stopped; …" log line, written
        right after it marked its leftovers lost and itself stopped. (Its exit can come
        seconds later on a loaded machine.)"""
        if node.name not in self._own_stops:
            stopped = [
                line for line in node.process.log().splitlines() if " scheduler_app.engine.loop: stopped; " in line
            ]
            at = None
            if stopped:
                at = datetime.strptime(stopped[-1][:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
            self._own_stops[node.name] = at or min(node.terminated_at + node.drain, node.exited_at or float("inf"))
        return self._own_stops[node.name]

    def gone_at(self, row: Row, body: Body) -> float | None:
        """When the process that would record this body went away (its node, or its Celery pool process)."""
        node = self.cluster.nodes.get(row.worker)
        if node is None:
            return self.cluster.celery_killed.get(body.pid)
        # A cut counts from its start even for a body that began during it (a thread needs
        # no database to run, only to record).
        # A kill counts even before the body's start: a child the forkserver started just
        # as its scheduler died runs its body with no scheduler at all.
        moments = [start for start, end in node.cuts if end is None or end >= body.start]
        moments += [t for t in (node.killed_at,) if t is not None]
        moments += [t for t in (node.exited_at if node.terminated_at else None,) if t is not None and t >= body.start]
        return min(moments) if moments else None

    def _how_gone(self, row: Row, gone: float) -> str:
        node = self.cluster.nodes.get(row.worker)
        if node is None:
            return "killed (Celery)"
        if node.killed_at == gone:
            return "killed"
        return "cut off" if any(start == gone for start, _ in node.cuts) else "stopped"

    # Checks -----------------------------------------------------------------------------------

    def run(self) -> Verdict:
        checks = {
            "duplicate rows for one (job, occurrence, attempt)": self.duplicates,
            "occurrences without a row": self.missing,
            "at-most-once bodies run twice": self.double_runs,
            "an execution's body run twice (redelivery)": self.redelivered,
            "finished bodies recorded lost beyond the window": self.finished_lost,
            "bodies still running after their row said lost": self.ran_after_lost,
            "live nodes declared dead": self.live_declared_dead,
            "runs of live processes marked lost": self.live_runs_lost,
            "Celery runs left running": self.celery_running,
            "failover after kill -9 beyond the lease plus one pass": self.failover,
            "failover after SIGTERM with a standby beyond one pass": self.graceful_failover,
            "passes committed by a deposed leader": self.deposed_commits,
            "queued runs of a dead node lost without a re-run": self.lost_unstarted,
            "deadlocks reported by PostgreSQL": self.deadlocks,
            "acts the harness could not play": lambda: list(self.cluster.unplayed),
        }
        for name, check in checks.items():
            self.verdict.violations[name] = check()
        self.verdict.timeline = [
            f"{_at(e.at)} {e.kind} {e.node or ''} {' '.join(map(str, e.pids))} {e.note}".replace("  ", " ").strip()
            + (f" until {_at(e.until)}" if e.until else "")
            for e in self.cluster.events
            if e.kind != "start"
        ]
        self.figure_block()
        return self.verdict

    def duplicates(self) -> list[str]:
        counts = Counter(
            (r.job, r.scheduled_for, r.attempt) for r in self.rows if r.reason in Execution.SCHEDULED_REASONS
        )
        return [
            f"{job} {when:%H:%M:%S.%f} attempt {attempt}: {n} rows"
            for (job, when, attempt), n in counts.items()
            if n > 1
        ]

    def missing(self) -> list[str]:
        from scheduler_app.models import Job

        found, self.missing_count = [], 0
        covered = defaultdict(set)
        for row in self.rows:
            if row.reason in Execution.SCHEDULED_REASONS:
                covered[row.job].add(row.scheduled_for)
        end = datetime.fromtimestamp(self.end - 1, tz=UTC)
        for job in Job.objects.filter(name__in=[s.name for s in self.specs.values() if s.interval]):
            gaps = [when for when in owed(job, self.specs[job.name].interval, end) if when not in covered[job.name]]
            self.missing_count += len(gaps)
            if gaps:
                found.append(
                    f"{job.name}: {len(gaps)} occurrence(s) without a row, first "
                    + ", ".join(f"{g:%H:%M:%S}" for g in gaps[:6])
                )
        return found

    def _bodies_per_occurrence(self) -> dict[tuple[str, datetime], list[Body]]:
        grouped = defaultdict(list)
        for body in self.bodies.values():
            row = self.by_pk.get(body.execution)
            if row is not None:
                grouped[(row.job, row.scheduled_for)].append(body)
        return grouped

    def double_runs(self) -> list[str]:
        found = []
        self.twice_all = 0
        for (job, when), bodies in self._bodies_per_occurrence().items():
            runs = sum(body.starts for body in bodies)
            if runs < 2:
                continue
            self.twice_all += 1
            if self.specs[job].at_most_once:
                found.append(
                    f"{job} {when:%H:%M:%S}: {runs} bodies (executions "
                    + ", ".join(f"{b.execution} pid {b.pid} {_at(b.start)}-{_at(b.end)}" for b in bodies)
                    + ")"
                )
        return found

    def redelivered(self) -> list[str]:
        return [
            f"execution {b.execution} ({self.by_pk[b.execution].job}): {b.starts} starts"
            for b in self.bodies.values()
            if b.starts > 1 and b.execution in self.by_pk
        ]

    def finished_lost(self) -> list[str]:
        found, self.lost_window_seen, self.child_after_kill = [], [], []
        for row in self.rows:
            body = self.bodies.get(row.pk)
            if row.status != "lost" or body is None or body.end is None:
                continue
            gone = self.gone_at(row, body)
            where = f"{row.job} execution {row.pk} on {row.worker or '?'} (pid {body.pid})"
            if gone is None:
                found.append(
                    f"{where}: ended {_at(body.end)}, recorded lost at {_at(self.lost_at(row))}; "
                    "its process was never killed nor cut off"
                )
            elif (
                body.end > gone
                and self.specs[row.job].timeout
                and self._how_gone(row, gone) == "killed"
                and body.end - gone <= self.limits.child_exit
            ):
                self.child_after_kill.append(body.end - gone)  # its lifeline had not killed it yet
            elif body.end > gone:
                found.append(
                    f"{where}: ended {body.end - gone:.2f}s after its process was {self._how_gone(row, gone)} "
                    f"({_at(gone)}), recorded lost at {_at(self.lost_at(row))}"
                )
            elif gone - body.end > self.limits.lost_window:
                found.append(
                    f"{where}: ended {gone - body.end:.2f}s before its process went away ({_at(gone)}), "
                    f"beyond the {self.limits.lost_window:g}s window; recorded lost at {_at(self.lost_at(row))}"
                )
            else:
                self.lost_window_seen.append(gone - body.end)
        return found

    def lost_at(self, row: Row) -> float | None:
        """When the row said `lost` for others to see: the monitor's sight of the commit, else its finished_at."""
        return self.cluster.monitor.lost_seen.get(row.pk, row.finished_at)

    def ran_after_lost(self) -> list[str]:
        found = []
        for row in self.rows:
            body = self.bodies.get(row.pk)
            lost_at = self.lost_at(row)
            if row.status != "lost" or body is None or lost_at is None:
                continue
            if body.start > lost_at:
                found.append(
                    f"{row.job} execution {row.pk}: its body started {body.start - lost_at:.2f}s "
                    f"after its row said lost"
                )
            elif body.end is not None and body.end > lost_at:
                found.append(
                    f"{row.job} execution {row.pk} (pid {body.pid}): its body ran on "
                    f"{body.end - lost_at:.2f}s after its row said lost ({_at(lost_at)})"
                )
        return found

    def live_declared_dead(self) -> list[str]:
        found = []
        logs = {name: node.process.log() for name, node in self.cluster.nodes.items()}
        for at, name, state in self.cluster.monitor.node_states:
            node = self.cluster.nodes.get(name)
            if state != "stopped" or node is None or self.down(node, at):
                continue
            by = [other for other, text in logs.items() if other != name and f"node {name} is dead" in text]
            found.append(
                f"{name} marked stopped at {_at(at)} while alive and reachable"
                + (f" (recovered by {', '.join(by)})" if by else "")
                + f" [started {_at(node.started_at)}, SIGTERM {_at(node.terminated_at)}, "
                f"exit {_at(node.exited_at)}]"
            )
        return found

    def live_runs_lost(self) -> list[str]:
        found = []
        for row in self.rows:
            lost_at = self.lost_at(row)
            if row.status != "lost" or lost_at is None:
                continue
            node = self.cluster.nodes.get(row.worker)
            if node is not None:
                if self.down(node, lost_at) is None:
                    found.append(
                        f"{row.job} execution {row.pk} on {row.worker} marked lost at "
                        f"{_at(lost_at)} while its node was alive: {row.error[:120]}"
                    )
                continue
            body = self.bodies.get(row.pk)
            if self.specs[row.job].executor == "celery":
                killed = self.cluster.celery_killed.get(body.pid) if body else None
                any_kill = any(t <= lost_at for t in self.cluster.celery_killed.values())
                if (body and (killed is None or killed > lost_at)) or (not body and not any_kill):
                    found.append(
                        f"{row.job} execution {row.pk} (Celery, pid {body.pid if body else '?'}) marked "
                        f"lost at {_at(lost_at)} while its worker lived: {row.error[:120]}"
                    )
        return found

    def celery_running(self) -> list[str]:
        return list(self.cluster.celery_stuck) + list(self.cluster.celery_left_running)

    def _first_pass_after(self, event: Event, until: float) -> tuple[float | None, float | None]:
        """(seconds to the lease changing hands, seconds to the first pass committed by the new leader)."""
        monitor = self.cluster.monitor
        takeover = next(
            (
                t - event.at
                for t, leader, _ in monitor.leaders
                if event.at < t < until and leader not in ("", event.node)
            ),
            None,
        )
        for seen in sorted(monitor.seen.values(), key=lambda s: s.at):
            if not (event.at < seen.at < until) or seen.reason not in PASS_REASONS:
                continue
            if seen.worker in (event.node, "") or seen.worker not in self.cluster.nodes:
                continue
            if seen.worker in (monitor.leader_at(seen.poll), monitor.leader_at(seen.poll - 1)):
                return takeover, seen.at - event.at
        return takeover, None

    def _next_act(self, event: Event) -> float:
        later = [e.at for e in self.cluster.events if e.at > event.at and e.kind in ("kill", "cut", "sigterm", "stop")]
        return min(later, default=self.end)

    def failover(self) -> list[str]:
        found, self.failovers = [], []
        for event in self.kills:
            takeover, first = self._first_pass_after(event, self._next_act(event))
            if first is None:
                found.append(
                    f"kill of {event.node} at {_at(event.at)}: no pass by a new leader before the next act "
                    f"(lease taken after {takeover if takeover is None else round(takeover, 2)}s)"
                )
                continue
            self.failovers.append(first)
            if first > self.limits.failover:
                found.append(
                    f"kill of {event.node} at {_at(event.at)}: first pass of the new leader after "
                    f"{first:.2f}s (lease taken after {takeover:.2f}s), bound {self.limits.failover:g}s"
                )
        return found

    def graceful_failover(self) -> list[str]:
        found, self.graceful = [], []
        for event in (e for e in self.cluster.events if e.kind == "sigterm"):
            takeover, first = self._first_pass_after(event, self._next_act(event))
            if first is not None:
                self.graceful.append(first)
            if first is None or first > self.limits.graceful_failover:
                found.append(
                    f"SIGTERM of {event.node} at {_at(event.at)}: first pass of a standby after "
                    f"{'never' if first is None else f'{first:.2f}s'} (lease taken after "
                    f"{'never' if takeover is None else f'{takeover:.2f}s'}), "
                    f"bound {self.limits.graceful_failover:g}s"
                )
        return found

    def deposed_commits(self) -> list[str]:
        monitor = self.cluster.monitor
        found = []
        for seen in sorted(monitor.seen.values(), key=lambda s: s.at):
            if seen.reason not in PASS_REASONS or seen.worker not in self.cluster.nodes:
                continue
            holders = {monitor.leader_at(seen.poll), monitor.leader_at(seen.poll - 1)}
            if seen.worker not in holders:
                row = self.by_pk.get(seen.pk)
                found.append(
                    f"execution {seen.pk} ({row.job if row else '?'}) by {seen.worker} became visible at "
                    f"{_at(seen.at)} while {' / '.join(sorted(h or '(nobody)' for h in holders))} "
                    "held the lease"
                )
        return found

    def lost_unstarted(self) -> list[str]:
        grouped = defaultdict(list)
        for row in self.rows:
            # After the end every scheduler stops: nobody is left to re-plan those.
            if row.reason in Execution.SCHEDULED_REASONS and row.scheduled_for.timestamp() <= self.end:
                grouped[(row.job, row.scheduled_for)].append(row)
        found = []
        for (job, when), rows in grouped.items():
            if all(r.status == "lost" and r.started_at is None and r.pk not in self.bodies for r in rows):
                found.append(f"{job} {when:%H:%M:%S}: lost while queued on {rows[0].worker or '?'}, never run")
        return found

    def deadlocks(self) -> list[str]:
        text = self.cluster.all_log_text()
        return [line[:200] for line in text.splitlines() if "deadlock detected" in line]

    # Figures ------------------------------------------------------------------------------

    def figure_block(self) -> None:
        figures = self.verdict.figures
        limits = self.limits
        statuses = Counter(row.status for row in self.rows)
        events = Counter(event.kind for event in self.cluster.events)
        leaders = [leader for _, leader, _ in self.cluster.monitor.leaders if leader]
        changes = sum(1 for a, b in pairwise(leaders) if a != b)
        lags = [
            row.started_at - row.scheduled_for.timestamp()
            for row in self.rows
            if row.reason == "schedule" and row.started_at is not None
        ]
        cuts = [e for e in self.cluster.events if e.kind == "cut"]
        survived = len(self.failovers)
        figures["run"] = (
            f"{self.end - self.start:.0f} s of chaos, {len(self.cluster.nodes)} scheduler processes "
            f"(3 at a time, lease {limits.lease:g} s), {self.cluster.hog_count} CPU hogs"
        )
        figures["jobs"] = (
            f"{len(self.specs)} ({', '.join(f'{n} {k}' for k, n in self._job_kinds().items())}); "
            f"{len(self.bodies)} bodies ran; rows: "
            + ", ".join(f"{n} {status}" for status, n in statuses.most_common())
        )
        figures["kill -9 of the leader"] = f"{events['kill']}, survived {survived}"
        figures["failover after kill -9 (kill -> first pass of the new leader)"] = (
            f"{_spread(self.failovers)}; bound {limits.failover:g} s"
        )
        figures["failover after SIGTERM with a standby"] = (
            f"{_spread(self.graceful)}; bound {limits.graceful_failover:g} s"
        )
        for event in cuts:
            takeover, first = self._first_pass_after(event, self._next_act(event))
            figures[f"proxy cut ({event.note}) of the leader for {(event.until or self.end) - event.at:.0f} s"] = (
                f"lease taken after {'never' if takeover is None else f'{takeover:.2f} s'}, first pass of the "
                f"new leader after {'never' if first is None else f'{first:.2f} s'}"
            )
        figures["Celery kills"] = (
            f"{events['celery_pool_kill']} pool process, {events['celery_worker_kill']} whole "
            f"worker; runs left running {len(self.celery_running())} "
            f"(bound {limits.celery_recovery:g} s)"
        )
        figures["duplicates"] = str(len(self.verdict.violations["duplicate rows for one (job, occurrence, attempt)"]))
        figures["occurrences without a row"] = str(self.missing_count)
        figures["bodies run twice"] = (
            f"{len(self.verdict.violations['at-most-once bodies run twice'])} at-most-once, "
            f"{self.twice_all} in all (retry jobs may)"
        )
        figures["finished bodies recorded lost"] = (
            f"{len(self.lost_window_seen)} within the window "
            f"(at most {max(self.lost_window_seen, default=0):.2f} s before the kill; window {limits.lost_window:g} s), "
            f"{len(self.verdict.violations['finished bodies recorded lost beyond the window'])} beyond it; "
            f"{len(self.child_after_kill)} child runs ended after their scheduler's kill -9 "
            f"(at most {max(self.child_after_kill, default=0):.2f} s after; allowed {limits.child_exit:g} s)"
        )
        figures["live nodes declared dead / live runs marked lost"] = (
            f"{len(self.verdict.violations['live nodes declared dead'])} / "
            f"{len(self.verdict.violations['runs of live processes marked lost'])}"
        )
        figures["leader changes"] = f"{changes} for {events['kill'] + events['sigterm'] + len(cuts)} acts"
        figures["passes by a deposed leader / deadlocks"] = (
            f"{len(self.verdict.violations['passes committed by a deposed leader'])} / "
            f"{len(self.verdict.violations['deadlocks reported by PostgreSQL'])}"
        )
        if lags:
            figures["start lag"] = (
                f"p50 {_percentile(lags, 0.5) * 1000:.0f} ms, p99 {_percentile(lags, 0.99) * 1000:.0f} ms"
            )
        if self.unattributed:
            figures["traces without a row"] = str(len(self.unattributed))

    def _job_kinds(self) -> Counter:
        kinds = Counter()
        for spec in self.specs.values():
            if spec.executor == "celery":
                kinds["Celery"] += 1
            elif spec.interval is None:
                kinds["long run-now"] += 1
            elif spec.timeout:
                kinds["child-process"] += 1
            elif spec.at_most_once:
                kinds["at-most-once"] += 1
            elif spec.lost_policy == "retry":
                kinds["retry"] += 1
            else:
                kinds["1 s thread"] += 1
        return kinds
