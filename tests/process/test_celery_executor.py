"""The celery executor, end to end: a real runscheduler, a real Celery worker, a real Redis."""

from __future__ import annotations

import pytest
from django_celery_results.models import TaskResult

from scheduler_app import services
from scheduler_app.models import Execution
from tests.process.celery_workers import CeleryWorkers
from tests.process.harness import PROCESS, every

pytestmark = PROCESS

# A database number of the local Redis that only these tests use; stale messages from an
# earlier run name executions this database does not have, and a worker's claim of those fails.
BROKER = "redis://127.0.0.1:6379/14"


@pytest.fixture
def celery_worker(schedulers):
    workers = CeleryWorkers(schedulers, BROKER)
    try:
        # The failing job calls port 9 here, where nothing listens; loopback is otherwise fenced off.
        yield workers.start(env={"TEMPORA_HTTP_ALLOW_HOSTS": "127.0.0.1:9"}, ready=False)
    finally:
        workers.stop_all()


def test_a_celery_job_runs_on_a_worker_and_its_outcome_is_recorded(schedulers, celery_worker):
    job = every("on-a-worker", 2, task="tempora.sample_job", kwargs={"message": "from celery"}, executor="celery")
    schedulers.start_leader(env={"CELERY_BROKER_URL": BROKER})

    row = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="succeeded").first(), timeout=30, what="a run on the worker"
    )
    assert row.worker.startswith("celery@")
    assert row.task_id == f"tempora-{row.pk}"
    assert row.result["message"] == "from celery"
    assert "sample_job: from celery" in row.output
    # Celery's own record of the task, through django-celery-results. The worker stores it
    # after the task returns, so a moment after our row says succeeded.
    schedulers.wait_for(
        lambda: TaskResult.objects.filter(task_id=row.task_id, status="SUCCESS").exists(),
        timeout=10,
        what="django-celery-results' record of the task",
    )


def test_a_failing_celery_job_is_retried_then_becomes_a_dead_letter(schedulers, celery_worker, settings):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["127.0.0.1:9"]
    job = every(
        "fails-on-a-worker",
        60,
        task="tempora.http_request",
        kwargs={"url": "http://127.0.0.1:9/"},
        executor="celery",
        max_retries=1,
        retry_backoff=1,
    )
    schedulers.start_leader(env={"CELERY_BROKER_URL": BROKER})
    services.job_run_now(job=job)
    last = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, attempt=2, status="failed").first(),
        timeout=30,
        what="the retry to fail on the worker",
    )
    first = Execution.objects.get(job=job, attempt=1)
    assert first.status == "failed" and not first.dead_letter
    assert last.reason == "retry" and last.dead_letter
    assert "connection_error" in last.error


def test_a_coroutine_function_runs_on_a_worker(schedulers, celery_worker):
    job = services.job_create(
        name="async-on-a-worker", task="tests.async_nap", kwargs={"seconds": 0.2}, executor="celery"
    )
    schedulers.start_leader(env={"CELERY_BROKER_URL": BROKER})
    run = services.job_run_now(job=job)
    row = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status__in=Execution.FINISHED).first(),
        timeout=30,
        what="the coroutine's run on the worker",
    )
    assert (row.status, row.result) == ("succeeded", {"napped": 0.2})
    assert row.worker.startswith("celery@")


def test_cancelling_a_run_on_a_worker_stops_it(schedulers, celery_worker):
    job = services.job_create(name="busy-on-a-worker", task="tests.busy", kwargs={"seconds": 60}, executor="celery")
    schedulers.start_leader(env={"CELERY_BROKER_URL": BROKER})
    run = services.job_run_now(job=job)
    schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status="running").exists(),
        timeout=30,
        what="the run to be running on the worker",
    )
    asked = services.execution_cancel(execution=Execution.objects.get(pk=run.pk))
    assert asked.status == "running" and asked.cancel_requested_at is not None
    row = schedulers.wait_for(
        lambda: Execution.objects.filter(pk=run.pk, status__in=Execution.FINISHED).first(),
        timeout=10,
        what="the worker to stop the run",
    )
    assert (row.status, row.error) == ("cancelled", "Cancelled (cancel requested); the run stopped.")
