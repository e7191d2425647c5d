"""Liveness that slowness cannot fake, hand-over on a graceful stop, recovery only of the dead.

Real runscheduler processes: a leader whose main loop stalls keeps its lease; SIGTERM hands
the lease to a standby within about a second while the draining node finishes its run;
`kill -9` fails over within the lease plus one pass; a child run dies with its scheduler; a
node cut off from PostgreSQL for 30 s is not declared dead.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from scheduler_app import services
from scheduler_app.models import Execution, SchedulerNode, SchedulerState
from tests.process.harness import PROCESS, assert_no_duplicate_occurrences, database_url, every, process_gone, utcnow
from tests.process.proxy import Proxy

pytestmark = PROCESS

LEASE = 3


def leader() -> tuple[str, int]:
    return tuple(SchedulerState.objects.values_list("leader", "lease_epoch").get())


def beat_at(name: str):
    return SchedulerNode.objects.get(name=name).last_beat_at


def start_pair(schedulers, **options):
    """A leader and a standby that stands by, both on LEASE."""
    first = schedulers.start_leader(lease=LEASE, **options)
    second = schedulers.start(lease=LEASE, **options)
    name = second.node_name()
    schedulers.wait_for(
        lambda: SchedulerNode.objects.filter(name=name, role="standby", state="running").exists(),
        timeout=LEASE * 2,
        what="the second scheduler to stand by",
    )
    return first, second


# A slow leader is not a dead one ------------------------------------------------------------


def test_a_leader_whose_pass_and_main_loop_stall_keeps_its_lease(schedulers):
    first, second = start_pair(schedulers)
    name = first.node_name()
    held = leader()
    stall = services.job_create(name="stall", task="tests.stall_scheduler", kwargs={"seconds": 4 * LEASE})
    run = services.job_run_now(job=stall)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists(), timeout=5, what="the stall to begin"
    )
    began = beat_at(name)

    # The pass and the main loop wait for the job-store lock; the heartbeat and lease do not.
    schedulers.stays(lambda: leader() == held, seconds=3 * LEASE, what="the same leader in the same epoch")
    assert beat_at(name) > began + timedelta(seconds=2 * LEASE), "the heartbeat stopped with the loop"
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="succeeded").exists(),
        timeout=2 * LEASE,
        what="the stall to end",
    )
    assert leader() == held
    assert "stands by" not in first.log() and "now the leader" not in second.log()


def test_a_leader_whose_pass_waits_on_a_locked_table_keeps_its_lease(schedulers):
    if connection.vendor != "postgresql":
        pytest.skip("locks one table; on SQLite a lock is the whole database's (see the stall test)")
    # The test locks the job store's table: the pass blocks in its first query, holding the
    # job-store lock, and the main loop blocks behind it.
    every("ticking", 1)
    first, second = start_pair(schedulers)
    held = leader()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE django_apscheduler_djangojob IN ACCESS EXCLUSIVE MODE")
        schedulers.stays(lambda: leader() == held, seconds=3 * LEASE, what="the same leader in the same epoch")
    assert "stands by" not in first.log() and "now the leader" not in second.log()


# Graceful stop: hand over at once, drain, nothing lost --------------------------------------


def test_sigterm_hands_the_lease_over_in_about_a_second_and_the_draining_run_finishes(schedulers, tmp_path):
    notes = tmp_path / "notes.txt"
    job = services.job_create(
        name="twenty-seconds",
        task="tests.note_run",
        kwargs={"path": str(notes), "seconds": 20},
        max_retries=2,
        retry_backoff=1,
    )
    first, second = start_pair(schedulers, drain=30)
    draining, standby = first.node_name(), second.node_name()
    run = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running", worker=draining).exists(),
        timeout=5,
        what="the run to start on the leader",
    )
    _epoch = leader()[1]

    first.terminate()
    began = time.monotonic()
    schedulers.wait_for(lambda: leader() == (standby, _epoch + 1), timeout=5, what="the standby to take the lease")
    took_over = time.monotonic() - began
    schedulers.wait_for(lambda: f"{standby} leads: scheduling" in second.log(), timeout=5, what="the standby to lead")
    leads = time.monotonic() - began
    print(f"SIGTERM -> standby holds the lease after {took_over:.2f}s, schedules after {leads:.2f}s")
    assert took_over <= 1.5

    # Draining, beating, and never recovered while its run goes on.
    schedulers.stays(
        lambda: SchedulerNode.objects.get(name=draining).state == "draining"
        and Execution.objects.get(pk=run.pk).status == "running",
        seconds=3 * LEASE,
        what="the draining node left alone",
    )
    first.wait_exit(30)
    run.refresh_from_db()
    assert (run.status, run.worker) == ("succeeded", draining)
    assert not Execution.objects.filter(job=job, attempt__gt=1).exists()
    assert [line.split()[0] for line in notes.read_text().splitlines()] == ["start", "end"]
    assert SchedulerNode.objects.get(name=draining).state == "stopped"


# kill -9: failover within the lease plus one pass -------------------------------------------


def test_kill_9_of_the_leader_fails_over_within_the_lease_plus_one_pass(schedulers):
    ticking = every("ticking", 1)
    current, standby = start_pair(schedulers)
    measured = []
    for kill in range(3):
        next_name, epoch = standby.node_name(), leader()[1]
        current.kill()
        killed = time.monotonic()
        killed_at = utcnow()
        schedulers.wait_for(lambda name=next_name: leader()[0] == name, timeout=LEASE + 3, what="the takeover")
        took_over = time.monotonic() - killed
        assert leader() == (next_name, epoch + 1)  # one take-over, one new epoch
        schedulers.wait_for(
            lambda name=next_name, since=killed_at: Execution.objects.filter(
                job=ticking, worker=name, created_at__gt=since
            ).exists(),
            timeout=5,
            what="the new leader's first pass",
        )
        first_pass = time.monotonic() - killed
        measured.append((took_over, first_pass))
        print(f"kill -9 #{kill + 1}: lease taken after {took_over:.2f}s, first pass committed after {first_pass:.2f}s")
        # The lease ends at most LEASE after its last renewal; the standby looks twice a second.
        assert took_over <= LEASE + 1
        assert first_pass <= took_over + 1.5
        current, standby = standby, schedulers.start(lease=LEASE)
    assert_no_duplicate_occurrences()
    print("failover after kill -9 (lease taken, first pass):", ", ".join(f"{a:.2f}/{b:.2f}s" for a, b in measured))


# Children die with their scheduler ----------------------------------------------------------


def test_a_child_run_dies_with_its_scheduler_and_is_recorded_lost_after_a_restart(schedulers, tmp_path):
    ticks = tmp_path / "ticks.txt"
    # A timeout of its own: the run goes to a child process.
    job = services.job_create(
        name="ticking-child",
        task="tests.tick_forever",
        timeout=600,
        kwargs={"path": str(ticks), "label": "orphan"},
        max_retries=1,
        retry_backoff=1,
    )
    scheduler = schedulers.start_leader(lease=LEASE)
    run = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: ticks.exists() and ticks.read_text().count("\n") >= 3, timeout=10, what="the child to tick"
    )
    pids = {path.name.split("-")[1]: int(path.read_text()) for path in schedulers.pid_dir.glob("orphan-*")}
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, process_group=pids["child"]).exists(),
        timeout=5,
        what="the child's process group on its row",
    )

    scheduler.kill()
    killed = time.monotonic()
    schedulers.wait_for(
        lambda: process_gone(pids["child"]) and process_gone(pids["grandchild"]),
        timeout=2,
        what="the child and its grandchild to die with the scheduler",
    )
    print(f"kill -9 of the scheduler -> its child run's processes gone after {time.monotonic() - killed:.2f}s")
    last_tick = float(ticks.read_text().splitlines()[-1].split()[1])
    size = ticks.stat().st_size
    schedulers.stays(lambda: ticks.stat().st_size == size, seconds=1, what="no side effect after the kill")

    schedulers.start_leader(lease=LEASE)
    lost = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="lost").first(),
        timeout=LEASE + 5,
        what="the killed run recorded lost",
    )
    assert "stopped sending heartbeats" in lost.error
    retry = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, attempt=2, status="running").first(), timeout=10, what="the retry"
    )
    assert retry.started_at.timestamp() > last_tick  # never two bodies at once


# Cut off from the database: slow, not dead ---------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "freeze"])
def test_a_node_cut_off_from_the_database_for_30_seconds_is_not_declared_dead(schedulers, tmp_path, mode):
    if connection.vendor != "postgresql":
        pytest.skip("a TCP proxy in front of PostgreSQL")
    settings = connection.settings_dict
    host, port = settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)
    notes = tmp_path / "notes.txt"
    job = services.job_create(
        name="forty-seconds",
        task="tests.note_run",
        kwargs={"path": str(notes), "seconds": 40},
        max_retries=2,
        retry_backoff=1,
    )
    every("ticking", 1)
    with Proxy((host, port)) as proxy:
        through_proxy = database_url().replace(f":{port}/", f":{proxy.port}/")
        # Its own var directory: as if on another host, so only the dead threshold can decide.
        elsewhere = tmp_path / "elsewhere"
        cut = schedulers.start_leader(
            lease=LEASE, env={"DATABASE_URL": through_proxy, "TEMPORA_VAR_DIR": str(elsewhere)}
        )
        other = schedulers.start(lease=LEASE)
        name = cut.node_name()
        run = services.job_run_now(job=job)
        schedulers.wait_for(
            lambda: Execution.objects.filter(pk=run.pk, status="running", worker=name).exists(),
            timeout=5,
            what="the long run to start on the node to cut off",
        )
        down_from = utcnow()
        getattr(proxy, mode)()
        schedulers.wait_for(lambda: leader()[0] == other.node_name(), timeout=LEASE + 35, what="the other node to lead")
        remaining = 30 - (utcnow() - down_from).total_seconds()
        schedulers.stays(
            lambda: SchedulerNode.objects.get(name=name).state != "stopped",
            seconds=max(remaining, 0),
            what="the cut-off node not declared dead",
        )
        proxy.resume()
        print(f"cut off ({mode}) for {(utcnow() - down_from).total_seconds():.1f}s")
        schedulers.wait_for(
            lambda: Execution.objects.filter(pk=run.pk, status="succeeded").exists(),
            timeout=30,
            what="the long run to finish and be recorded",
        )
        schedulers.wait_for(
            lambda: beat_at(name) > utcnow() - timedelta(seconds=LEASE),
            timeout=15,
            what="the cut-off node to beat again",
        )
    node = SchedulerNode.objects.get(name=name)
    assert (node.state, node.role) == ("running", "standby")
    assert not Execution.objects.filter(worker=name, status="lost").exists()
    assert not Execution.objects.filter(job=job, attempt__gt=1).exists()
    assert [line.split()[0] for line in notes.read_text().splitlines()] == ["start", "end"]
    assert_no_duplicate_occurrences()
