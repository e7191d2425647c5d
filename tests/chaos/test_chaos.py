"""Chaos: three schedulers on PostgreSQL, broken the ways an operator breaks them, judged by side effects.

Jobs whose bodies trace their own start and end (jobs_for_chaos.py) run on three
`runscheduler` processes, each behind a proxy of its own, and a Celery worker, beside two
CPU hogs. The acts: repeated `kill -9` of the leader (a new scheduler replaces each, as a
supervisor would), a cut of the leader's proxy longer than the lease, a SIGTERM of the
leader while long runs are in their bodies (standbys waiting), `kill -9` of a Celery pool
process and of a whole worker. At the end the rows are judged against the traces and the
acts (verdict.py) and the figures are printed for the README.

    make chaos                                  # every act, interleaved (what CI runs)
    TEMPORA_CHAOS=kill9 make chaos              # one scenario: kill9, cut, sigterm, celery
    TEMPORA_CHAOS=cut,sigterm make chaos        # several, one test each

The bounds below are the documented guarantees; adjust them here when the engine's change.
"""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler_app import services
from scheduler_app.conf import tempora_settings
from scheduler_app.models import Execution, Job
from tests.chaos.verdict import JobSpec, Judge, Limits, owed
from tests.process.harness import PROCESS

pytestmark = PROCESS

LEASE = 10  # SCHEDULER_LEASE_SECONDS, the shipped default
LIMITS = Limits(
    lease=LEASE,
    # The lease (every pass renews it, so it ends about a lease after the kill), the standby's
    # 0.5 s look, one pass, the monitor's 0.1 s poll; 1 s of slack beside the CPU hogs.
    failover=LEASE + 2.5,
    graceful_failover=2.0,  # a stopping leader hands over at once: one pass plus slack
    lost_window=0.5,  # a body's end → its outcome durable; the writer's batching is 250 ms today
    # A dead Celery worker's run is recovered (lost, then its policy) within the threshold plus
    # one check, a fifth of it (docs/engine.md, "Celery runs when a worker dies"), plus slack.
    celery_recovery=tempora_settings.CELERY_LOST_SECONDS * 1.2 + 2,
    cut_grace=LEASE / 3 + 2,  # after a cut, until the node has beaten again
    # A child run's lifeline kills it 0.05 s after its scheduler's kill -9 (docs/engine.md); a body
    # ending inside that is recorded lost (nobody is left to record it). Beside the hogs, 0.25 s.
    child_exit=0.25,
)
DRAIN = 25  # --drain: longer than the lease, as in the field (the default is 30 s)
CUT_SECONDS = LEASE + 5  # longer than the lease: the cut leader must be deposed and fenced off
CUT_MODE = "freeze"  # a partition: connections stay open and resume (see proxy.py)
LONG_SECONDS = 20  # the long runs the SIGTERM finds in their bodies; they fit in the drain
START_AHEAD = 15  # the jobs' start_at: time to create 41 jobs beside the hogs (9 s seen) and apply them
WARM_UP = 5  # seconds of calm before the first act
SETTLE = 10  # ... and after the last (retries, re-plans, a cut node back): then the end
MAX_WORKERS = 24
HOGS = 2

JOBS = [
    *(JobSpec(f"tick-{n:02}", 1, 0.2) for n in range(20)),
    *(JobSpec(f"once-{n:02}", 1, 0.3, lost_policy="record") for n in range(6)),
    *(JobSpec(f"retry-{n:02}", 1, 0.3, lost_policy="retry", max_retries=2) for n in range(6)),
    *(JobSpec(f"child-once-{n}", 2, 1.5, lost_policy="record", timeout=30) for n in range(2)),
    *(JobSpec(f"child-retry-{n}", 2, 1.5, lost_policy="retry", max_retries=2, timeout=30) for n in range(2)),
    JobSpec("celery-fast", 2, 0.2, executor="celery"),
    JobSpec("celery-once", 6, 4.0, lost_policy="record", executor="celery"),
    JobSpec("celery-retry", 6, 4.0, lost_policy="retry", max_retries=2, executor="celery"),
    JobSpec("long-once", None, LONG_SECONDS, lost_policy="record"),
    JobSpec("long-retry", None, LONG_SECONDS, lost_policy="retry", max_retries=1),
]
CELERY_SLOW = ["celery-once", "celery-retry"]
CELERY_JOBS = [spec.name for spec in JOBS if spec.executor == "celery"]

# (seconds after the warm-up, act). "all" interleaves every act, about two minutes.
SCENARIOS = {
    "kill9": [(0, "kill"), (20, "kill"), (40, "kill")],
    "cut": [(0, "cut")],
    "sigterm": [(0, "sigterm")],
    "celery": [(0, "celery_pool_kill"), (15, "celery_worker_kill")],
    "all": [
        (0, "kill"),
        (6, "celery_pool_kill"),
        (20, "kill"),
        (40, "kill"),
        (46, "celery_worker_kill"),
        (60, "kill"),
        (80, "cut"),
        (104, "sigterm"),
    ],
}


def selected_scenarios() -> list[str]:
    names = [name.strip() for name in os.environ.get("TEMPORA_CHAOS", "all").split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise pytest.UsageError(f"TEMPORA_CHAOS names no scenario {unknown}; choose from {sorted(SCENARIOS)}")
    return names


def create_jobs(start_at: datetime) -> list[Job]:
    jobs = []
    for spec in JOBS:
        fields = dict(
            task="tests.chaos_trace",
            kwargs={"label": spec.name, "seconds": spec.seconds},
            max_retries=spec.max_retries,
            retry_backoff=1,
            executor=spec.executor,
            timeout=spec.timeout,
            start_at=start_at,
            lost_policy=spec.lost_policy,
        )
        triggers = [{"kind": "interval", "interval_seconds": spec.interval}] if spec.interval else []
        jobs.append(services.job_create(name=spec.name, triggers=triggers, **fields))
    return jobs


def play(cluster, act: str, jobs: dict[str, Job]) -> None:
    if act == "kill":
        cluster.kill_leader()
    elif act == "cut":
        cluster.cut_leader(CUT_SECONDS, CUT_MODE)
    elif act == "sigterm":
        cluster.sigterm_with_standby([jobs["long-once"], jobs["long-retry"]])
    elif act == "celery_pool_kill":
        cluster.kill_celery_pool_process(CELERY_SLOW)
    elif act == "celery_worker_kill":
        cluster.kill_celery_worker(CELERY_SLOW)
    else:
        raise AssertionError(f"no act {act!r}")


def rows_up_to(end: float) -> bool:
    """Every occurrence owed by every interval job up to `end` has a row."""
    end_at = datetime.fromtimestamp(end, tz=UTC)
    for spec in JOBS:
        if spec.interval is None:
            continue
        job = Job.objects.get(name=spec.name)
        have = set(
            Execution.objects.filter(job=job, reason__in=Execution.SCHEDULED_REASONS).values_list(
                "scheduled_for", flat=True
            )
        )
        if not set(owed(job, spec.interval, end_at)) <= have:
            return False
    return True


@pytest.mark.parametrize("scenario", selected_scenarios())
def test_chaos(scenario, chaos_cluster):
    cluster = chaos_cluster(lease=LEASE, drain=DRAIN, max_workers=MAX_WORKERS, hogs=HOGS)
    cluster.start(schedulers=3)
    # Far enough ahead for the jobs to be created and applied first; one created late anyway
    # is owed its occurrences from its creation only (verdict.owed).
    start_at = datetime.fromtimestamp(math.ceil(time.time()) + START_AHEAD, tz=UTC)
    creating = time.monotonic()
    jobs = {job.name: job for job in create_jobs(start_at)}
    creating = time.monotonic() - creating
    cluster.schedulers.watch(max(start_at.timestamp() - time.time(), 0) + WARM_UP)

    began = time.time()
    for offset, act in SCENARIOS[scenario]:
        wait = began + offset - time.time()
        if wait > 0:
            cluster.schedulers.watch(wait)
        play(cluster, act, jobs)

    # Settle: the SIGTERM'd leader finishes its drain; a Celery kill gets its recovery bound.
    cluster.wait_exits(DRAIN + 15)
    cluster.schedulers.watch(SETTLE)
    celery_kills = [e.at for e in cluster.events if e.kind.startswith("celery_")]
    if celery_kills:
        cluster.celery_stuck = cluster.stuck_celery_runs(CELERY_JOBS, until=max(celery_kills) + LIMITS.celery_recovery)
    end = time.time()
    deadline = time.monotonic() + 2 * LEASE + 5  # a failover started by the last act
    while not rows_up_to(end - 1) and time.monotonic() < deadline:
        time.sleep(0.5)
    cluster.stop_all(timeout=DRAIN + 10)
    cluster.celery_left_running = [
        f"execution {pk} ({name}) still `running` after the workers' warm shutdown"
        for pk, name in Execution.objects.filter(job_name__in=CELERY_JOBS, status="running").values_list(
            "pk", "job_name"
        )
    ]
    cluster.monitor.stop()

    verdict = Judge(cluster, JOBS, LIMITS, start=began, end=end).run()
    verdict.figures = {
        "scenario": f"{scenario} ({', '.join(act for _, act in SCENARIOS[scenario])})",
        **verdict.figures,
        "setup": f"{len(JOBS)} jobs created in {creating:.1f} s",
    }
    report = verdict.report()
    print(report)
    (cluster.var_dir / "chaos-report.txt").write_text(verdict.report(limit=100_000))  # every violation
    if os.environ.get("TEMPORA_CHAOS_REPORT"):
        path = Path(os.environ["TEMPORA_CHAOS_REPORT"])
        path.write_text((path.read_text() if path.exists() else "") + report + "\n")
    failed = verdict.failed()
    assert not failed, f"{len(failed)} chaos check(s) failed: {', '.join(failed)}\n{report}"
