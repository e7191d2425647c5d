"""A run now given its own arguments runs with them in a real scheduler, in a thread and in a
child process, and a run without them takes the job's (issue 8: `kwargs` on run-now used to be
dropped, and the run used the job's own)."""

from __future__ import annotations

from scheduler_app import services
from scheduler_app.models import Execution
from tests.process.harness import PROCESS

pytestmark = PROCESS


def test_run_now_with_its_own_arguments_runs_with_them_in_a_thread_and_in_a_child(schedulers):
    in_thread = services.job_create(
        name="greet-in-thread", task="tempora.sample_job", kwargs={"message": "from the job"}
    )
    in_child = services.job_create(
        name="greet-in-child", task="tempora.sample_job", kwargs={"message": "from the job"}, timeout=30
    )
    schedulers.start_leader()
    given = {
        services.job_run_now(job=job, kwargs={"message": f"given to {job.name}"}).pk: f"given to {job.name}"
        for job in (in_thread, in_child)
    }
    own = services.job_run_now(job=in_thread).pk
    expected = {**given, own: "from the job"}
    rows = schedulers.wait_for(
        lambda: list(Execution.objects.filter(pk__in=expected, status="succeeded"))
        if Execution.objects.filter(pk__in=expected, status="succeeded").count() == 3
        else None,
        timeout=20,
        what="the three runs to succeed",
    )
    assert {row.pk: row.result["message"] for row in rows} == expected
