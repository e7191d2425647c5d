"""After `kill -9` and a restart, each job's missed occurrences are handled as its catch-up policy says."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

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

GRACE = timedelta(seconds=1)
DOWNTIME = 6  # seconds between the kill and the restart


@dataclass
class AfterRestart:
    rows: list[Execution]  # every occurrence row of the job
    first_pass: list[Execution]  # the rows the restarted scheduler's first pass wrote
    backlog: list[Execution]  # ... for occurrences already past their grace (the downtime)
    on_time: list[Execution]  # ... for occurrences still within their grace


def kill_9_and_restart(schedulers, make_jobs: Callable[[], list[Job]]) -> dict[str, AfterRestart]:
    """Run the jobs, kill -9 the scheduler, wait DOWNTIME, start another; answer what each job got."""
    first = schedulers.start_leader(lease=3)
    jobs = make_jobs()  # after the start, so no occurrence is late before the kill
    schedulers.wait_for(
        lambda: all(Execution.objects.filter(job=job, status="succeeded").count() >= 2 for job in jobs),
        timeout=8,
        what="two runs of every job",
    )
    first_node = first.node_name()
    first.kill()
    killed_at = utcnow()
    time.sleep(DOWNTIME)  # the downtime itself, not a wait for a condition

    second = schedulers.start_leader(lease=3)
    restarted_at = utcnow()
    schedulers.wait_for(
        lambda: all(
            Execution.objects.filter(job=job, status="succeeded", scheduled_for__gt=restarted_at + GRACE).exists()
            for job in jobs
        ),
        timeout=8,
        what="every job firing on time again",
    )
    # The killed node's unfinished rows are recovered: one recorded ahead and never started is
    # planned again (its journal says so), and by the restart it is past its grace: missed.
    schedulers.wait_for(
        lambda: not Execution.objects.filter(status__in=Execution.ACTIVE, scheduled_for__lt=restarted_at).exists(),
        timeout=5,
        what="every row before the restart to be finished or recovered",
    )
    assert SchedulerNode.objects.get(name=first_node).state == SchedulerNode.State.STOPPED
    second.terminate()
    second.wait_exit(10)

    assert_no_duplicate_occurrences()
    answers = {}
    for job in jobs:
        rows = occurrences(job)
        assert_one_row_per_occurrence(rows, every_seconds=2)
        for row in rows:
            if row.created_at < killed_at:
                # Fired by the first scheduler: ran, was in flight at the kill (lost), or was
                # queued ahead and never started (missed by the time it was planned again).
                assert row.status in ("succeeded", "lost", "missed"), row
                assert row.worker == first_node, row
        first_pass_at = min(row.created_at for row in rows if row.created_at > killed_at)
        first_pass = [row for row in rows if row.created_at == first_pass_at]
        backlog = [row for row in first_pass if first_pass_at - row.scheduled_for > GRACE]
        on_time = [row for row in first_pass if row not in backlog]
        # The first pass records the whole downtime at once; later passes only new occurrences.
        # DOWNTIME, less the 0.5 s the killed pass looked ahead and the 1 s grace: two at least.
        assert len(backlog) >= 2, (job.name, backlog)
        assert all(row.reason == "schedule" and row.status == "succeeded" for row in on_time), (job.name, on_time)
        assert all(row in first_pass for row in rows if row.reason == "catch_up"), job.name
        print(f"{job.name}: backlog {[(row.reason, row.status) for row in backlog]}, on time {len(on_time)}")
        answers[job.name] = AfterRestart(rows, first_pass, backlog, on_time)
    return answers


def test_kill_9_then_restart_catches_up_as_each_policy_says(schedulers):
    # A 1 s grace, so the occurrences of the downtime are late when the next scheduler starts.
    # "all" here allows overlapping runs; the next test has the default overlap policy.
    after = kill_9_and_restart(
        schedulers,
        lambda: [
            every("catch-up-once", 2, catch_up="once", misfire_grace_time=1),
            every("catch-up-none", 2, catch_up="none", misfire_grace_time=1),
            every("catch-up-all", 2, catch_up="all", misfire_grace_time=1, overlap_policy="allow", max_instances=10),
        ],
    )

    none = after["catch-up-none"]
    assert {row.status for row in none.backlog} == {"missed"}
    assert all("catch-up policy 'none'" in row.error for row in none.backlog)

    every_one = after["catch-up-all"]
    assert {(row.reason, row.status) for row in every_one.backlog} == {("catch_up", "succeeded")}

    # One run stands for the whole downtime: the latest missed occurrence, unless an on-time
    # run was due in the same pass anyway (then that run is it).
    once = after["catch-up-once"]
    assert len([row for row in once.first_pass if row.status != "missed"]) == 1, once.first_pass
    assert {row.status for row in once.backlog[:-1]} == {"missed"}
    if not once.on_time:
        assert (once.backlog[-1].reason, once.backlog[-1].status) == ("catch_up", "succeeded")


def test_every_late_occurrence_runs_under_the_default_overlap_policy(schedulers):
    after = kill_9_and_restart(
        schedulers,
        lambda: [
            every("catch-up-all", 2, catch_up="all", misfire_grace_time=1),
            every("within-grace", 2, misfire_grace_time=60),
        ],
    )
    assert {(row.reason, row.status) for row in after["catch-up-all"].backlog} == {("catch_up", "succeeded")}
    assert {(row.reason, row.status) for row in after["within-grace"].backlog} == {("schedule", "succeeded")}
