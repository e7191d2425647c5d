"""No user can starve the others: a cap per job owner on a real scheduler's worker threads."""

from __future__ import annotations

from datetime import timedelta

from scheduler_app import services
from scheduler_app.models import Execution, Job
from tests.process.harness import PROCESS

pytestmark = PROCESS


def test_one_users_hanging_runs_leave_workers_for_everybody_else(schedulers, owner, outsider):
    scheduler = schedulers.start_leader()  # 10 workers; the default cap is half of them
    # Ten "http-like" runs that hang (a sleep), priorities 1..10, all asked for at once.
    hanging = [
        services.job_create(name=f"hangs-{n}", task="tests.sleep", kwargs={"seconds": 6}, owner=owner, priority=n)
        for n in range(1, 11)
    ]
    runs = services.jobs_run_now(jobs=Job.objects.filter(pk__in=[job.pk for job in hanging]))
    ids = [run.pk for run in runs]

    def count(status: str) -> int:
        return Execution.objects.filter(pk__in=ids, status=status).count()

    schedulers.wait_for(
        lambda: count("running") == 5 and count("queued") == 5,
        timeout=10,
        what="five of the user's runs running, five waiting their turn",
    )
    other = services.job_create(name="someone-else", task="tempora.noop", owner=outsider)
    asked = services.job_run_now(job=other)
    done = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=asked.pk, status="succeeded").first(),
        timeout=5,
        what="another user's run",
    )
    waited = (done.started_at - asked.created_at).total_seconds()
    print(f"another user's run started {waited:.3f}s after it was asked for")
    assert waited < 1
    assert (count("running"), count("queued")) == (5, 5)  # the user's others still wait, none skipped or failed

    rows = schedulers.wait_for(
        lambda: list(Execution.objects.filter(pk__in=ids, status="succeeded").select_related("job"))
        if count("succeeded") == 10
        else None,
        timeout=30,
        what="all ten of the user's runs, five at a time",
    )
    first_wave = {row.job.priority for row in rows if row.started_at < done.started_at}
    assert first_wave == {10, 9, 8, 7, 6}  # the highest priorities went first
    # Never more than five at once: each run of the second wave started after one of the first ended.
    ends = sorted(row.finished_at for row in rows if row.job.priority in first_wave)
    later = sorted(row.started_at for row in rows if row.job.priority not in first_wave)
    assert all(start >= end - timedelta(milliseconds=50) for start, end in zip(later, ends, strict=True))
    assert "started with 10 worker threads, at most 5 runs at once per job owner" in scheduler.log()
