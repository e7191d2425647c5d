"""The database goes away (PostgreSQL stopped) or stays locked (SQLite): the scheduler survives.

The scheduler must log, back off, reconnect and carry on, and the occurrences it could not
record on time are recorded afterwards by the misfire policy: run late, caught up, or missed,
never silently lost. One test per backend; each skips on the other.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from datetime import timedelta

import pytest
from django.db import connection

from scheduler_app import services
from scheduler_app.models import Execution, Job, SchedulerNode
from tests.process.harness import (
    PROCESS,
    assert_no_duplicate_occurrences,
    assert_one_row_per_occurrence,
    every,
    occurrences,
    utcnow,
)

pytestmark = PROCESS

OUTAGE = 30  # seconds PostgreSQL is down
LOCKED = 3  # seconds SQLite stays locked


def _outage_jobs(*, short_grace: int) -> dict[str, Job]:
    """Three 1 s jobs: one whose grace outlasts the outage, two whose grace it outlasts."""
    # The default overlap policy: the runs one pass records for a job follow each other.
    return {
        "grace": every("outage-within-grace", 1, misfire_grace_time=60),
        "none": every("outage-catch-up-none", 1, misfire_grace_time=short_grace, catch_up="none"),
        "once": every("outage-catch-up-once", 1, misfire_grace_time=short_grace, catch_up="once"),
    }


def _assert_recorded_by_policy(jobs: dict[str, Job], *, down_from, down_until) -> None:
    """Every occurrence has one row; those of the outage follow each job's misfire policy."""
    assert_no_duplicate_occurrences()
    for key, job in jobs.items():
        rows = occurrences(job)
        assert_one_row_per_occurrence(rows, every_seconds=1)
        assert rows[0].scheduled_for < down_from and rows[-1].scheduled_for > down_until, job.name
        gap = [row for row in rows if down_from + timedelta(seconds=1) < row.scheduled_for < down_until]
        assert gap, job.name
        grace = timedelta(seconds=job.misfire_grace_time)
        late = [row for row in rows if row.created_at - row.scheduled_for > grace]
        print(
            f"{job.name}: {len(gap)} occurrences in the gap: "
            f"{sorted({(row.reason, row.status) for row in gap})}, {len(late)} recorded past their grace"
        )
        if key == "grace":
            assert {(row.reason, row.status) for row in gap} == {("schedule", "succeeded")}
            continue
        assert late, "the outage was shorter than the grace: nothing tests the policy"
        assert all(down_from < row.scheduled_for < down_until for row in late), late
        assert all(row.status == "succeeded" for row in rows if row not in late)
        if key == "none":
            assert {row.status for row in late} == {"missed"}
            continue
        # "once": in each pass that recorded late occurrences, one run stands for them all:
        # the latest, unless an on-time run was due in the same pass (then that run is it).
        for recorded_at in {row.created_at for row in late}:
            same_pass = [row for row in rows if row.created_at == recorded_at]
            ran = [row for row in same_pass if row in late and row.status != "missed"]
            on_time = [row for row in same_pass if row not in late]
            assert len(ran) == (0 if on_time else 1), same_pass
            assert all(row.reason == "catch_up" and row.status == "succeeded" for row in ran)


# PostgreSQL -----------------------------------------------------------------------------


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main"]


def _pg_ready() -> bool:
    settings = connection.settings_dict
    host, port = settings.get("HOST") or "127.0.0.1", str(settings.get("PORT") or 5432)
    return subprocess.run(["pg_isready", "-q", "-h", host, "-p", port], check=False).returncode == 0


def _start_postgres() -> None:
    if not _pg_ready():
        subprocess.run([*_cluster(), "start"], check=False, timeout=120)
    deadline = time.monotonic() + 60
    while not _pg_ready():
        assert time.monotonic() < deadline, "PostgreSQL did not come back within 60 s"
        time.sleep(0.25)


def test_it_survives_postgresql_stopped_for_30_seconds(schedulers):
    if connection.vendor != "postgresql":
        pytest.skip("stops the PostgreSQL server; on SQLite see the locked-database test")
    scheduler = schedulers.start_leader()
    jobs = _outage_jobs(short_grace=5)  # created after the start: no occurrence is late before the outage
    schedulers.wait_for(
        lambda: all(Execution.objects.filter(job=job, status="succeeded").count() >= 2 for job in jobs.values()),
        timeout=5,
        what="two runs of every job",
    )

    connection.close()  # this process's connection dies with the server too
    down_from = utcnow()
    try:
        subprocess.run([*_cluster(), "stop"], check=True, timeout=60)
        schedulers.watch(OUTAGE)  # fails at once if the scheduler exits
    finally:
        _start_postgres()
    down_until = utcnow()
    connection.close()

    schedulers.wait_for(
        lambda: all(
            Execution.objects.filter(
                job=job, status="succeeded", scheduled_for__gt=down_until + timedelta(seconds=1)
            ).exists()
            for job in jobs.values()
        ),
        timeout=20,
        what="every job firing again after the outage",
        db_errors_ok=True,
    )
    print(
        f"PostgreSQL back at {down_until:%H:%M:%S}; firing again {(utcnow() - down_until).total_seconds():.1f}s later"
    )
    schedulers.wait_for(
        lambda: not Execution.objects.filter(status__in=Execution.ACTIVE, scheduled_for__lt=down_until).exists(),
        timeout=10,
        what="every run of the outage finished",
    )
    assert scheduler.alive()
    scheduler.terminate()
    scheduler.wait_exit(10)
    assert "database error" in scheduler.log() or "failed" in scheduler.log()
    _assert_recorded_by_policy(jobs, down_from=down_from, down_until=down_until)


# SQLite ---------------------------------------------------------------------------------


def test_it_waits_out_a_locked_sqlite_database(schedulers):
    if connection.vendor != "sqlite":
        pytest.skip("locks the SQLite file; on PostgreSQL see the outage test")
    # A busy timeout shorter than the lock, so the scheduler's threads get "database is
    # locked" errors and must back off and retry (with the default 20 s they would just wait).
    scheduler = schedulers.start_leader(env={"SQLITE_BUSY_TIMEOUT": "1"})
    jobs = _outage_jobs(short_grace=1)  # created after the start: no occurrence is late before the lock
    schedulers.wait_for(
        lambda: all(Execution.objects.filter(job=job, status="succeeded").count() >= 2 for job in jobs.values()),
        timeout=5,
        what="two runs of every job",
    )

    locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=10, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        down_from = utcnow()
        schedulers.watch(LOCKED)  # readers still work in WAL mode; writers wait or fail
        assert not Execution.objects.filter(created_at__gt=down_from + timedelta(seconds=1.5)).exists()
    finally:
        locker.execute("COMMIT")
        locker.close()
    down_until = utcnow()

    schedulers.wait_for(
        lambda: all(
            Execution.objects.filter(
                job=job, status="succeeded", scheduled_for__gt=down_until + timedelta(seconds=1)
            ).exists()
            for job in jobs.values()
        ),
        timeout=10,
        what="every job firing again after the lock",
    )
    schedulers.wait_for(
        lambda: not Execution.objects.filter(status__in=Execution.ACTIVE, scheduled_for__lt=down_until).exists(),
        timeout=5,
        what="every run of the locked time finished",
    )
    assert scheduler.alive()
    scheduler.terminate()
    scheduler.wait_exit(10)
    print("errors logged while locked:", scheduler.log().count("database is locked"))
    _assert_recorded_by_policy(jobs, down_from=down_from, down_until=down_until)


def test_sigterm_while_the_sqlite_database_is_locked_still_drains_and_exits(schedulers):
    if connection.vendor != "sqlite":
        pytest.skip("locks the SQLite file")
    long_job = services.job_create(name="long-in-thread", task="tests.sleep", kwargs={"seconds": 60})
    scheduler = schedulers.start_leader(drain=1, env={"SQLITE_BUSY_TIMEOUT": "1"})
    run = services.job_run_now(job=long_job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists(), timeout=3, what="the long run"
    )

    locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=10, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        node = scheduler.node_name()
        scheduler.terminate()  # recording "draining" fails: the stop must go on regardless
        time.sleep(LOCKED)  # the lock itself, not a wait for a condition
    finally:
        locker.execute("COMMIT")
        locker.close()
    took = scheduler.wait_exit(15)
    print(f"SIGTERM during a {LOCKED}s lock -> exited {took:.2f}s after the lock ended")
    assert scheduler.popen.returncode == 0, scheduler.log()[-3000:]
    run.refresh_from_db()
    assert run.status == "lost" and "The scheduler stopped (SIGTERM)" in run.error
    assert SchedulerNode.objects.get(name=node).state == "stopped"
