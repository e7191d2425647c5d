"""A job with no further run has no next run (NULL), and the scheduler's next wake-up is a real run."""

from __future__ import annotations

from datetime import timedelta

from rest_framework.test import APIClient

from scheduler_app import services
from scheduler_app.models import Execution, Job
from tests.process.harness import PROCESS, every, utcnow

pytestmark = PROCESS


def test_one_offs_that_ran_windows_that_ended_and_used_up_max_runs_leave_no_next_run(schedulers, team_admin):
    schedulers.start_leader()
    upcoming = every("hourly", 3600)
    one_off = services.job_create(name="one-off", task="tempora.noop", triggers=[{"kind": "once", "delay_seconds": 1}])
    ended = every("ends-soon", 1, end_at=utcnow() + timedelta(seconds=5))
    used_up = every("twice-only", 1, max_runs=2)
    jobs = [one_off, ended, used_up]

    def ran(job, times):
        return Execution.objects.filter(job=job, status="succeeded").count() >= times

    schedulers.wait_for(
        lambda: ran(one_off, 1) and ran(ended, 1) and ran(used_up, 2), timeout=20, what="each job's last run"
    )
    schedulers.wait_for(
        lambda: utcnow() > ended.end_at
        and not Job.objects.filter(pk__in=[j.pk for j in jobs], next_run_at__isnull=False).exists(),
        timeout=10,
        what="every finished job's next_run_at to be NULL",
    )
    schedulers.stays(  # and it stays so: nothing puts a stale time back
        lambda: not Job.objects.filter(pk__in=[j.pk for j in jobs], next_run_at__isnull=False).exists(),
        seconds=2,
        what="no next run for the finished jobs",
    )
    assert Execution.objects.filter(job=used_up).exclude(status="skipped").count() == 2

    client = APIClient()
    client.force_authenticate(team_admin)
    upcoming.refresh_from_db()
    wakeup = client.get("/api/scheduler/").json()["next_wakeup"]
    assert wakeup == upcoming.next_run_at.isoformat().replace("+00:00", "Z")
