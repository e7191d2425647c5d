"""The leader counts finished runs into the statistics' tallies as they finish."""

from __future__ import annotations

from scheduler_app.models import Execution, RunTally
from tests.process.harness import PROCESS, every

pytestmark = PROCESS


def test_the_leader_folds_finished_runs_into_the_tallies(schedulers):
    every("ticker", 1)
    every("too-slow", 2, task="tests.sleep", kwargs={"seconds": 5}, timeout=1)
    schedulers.start_leader()

    def counted():
        finished = Execution.objects.filter(status__in=Execution.FINISHED)
        if finished.filter(status="succeeded").count() < 3 or not finished.filter(status="timed_out").exists():
            return None
        return not finished.filter(tallied_at__isnull=True).exists()

    schedulers.wait_for(counted, timeout=30, what="finished runs of both jobs counted by the fold")
    schedulers.stop_all()  # then nothing is counted while the two sides are compared
    rows = Execution.objects.filter(tallied_at__isnull=False)
    for status in ("succeeded", "timed_out"):
        tallied = RunTally.objects.filter(owner=RunTally.EVERYONE, status=status).values_list("count", flat=True)
        assert sum(tallied) == rows.filter(status=status).count() >= 1, status
