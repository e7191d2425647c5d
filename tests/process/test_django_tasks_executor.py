"""The django_tasks executor, end to end: a real runscheduler enqueues on the database backend
(django-tasks-db, the project's TASKS), a real `manage.py db_worker` claims and runs the job's
Django @task, and the Execution row records it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scheduler_app.models import Execution
from scheduler_app.registry import register_django_tasks
from tests import django_tasks_for_tests
from tests.process.harness import PROCESS, ROOT, TASK_MODULE, every, stop

pytestmark = [
    *PROCESS,
    pytest.mark.skipif(
        not __import__("importlib").util.find_spec("django_tasks_db"), reason="needs django-tasks-db (requirements.txt)"
    ),
]

# Both processes find the Django tasks as runscheduler finds ours: in the task modules.
MODULES = {"TEMPORA_TASK_MODULES": f"{TASK_MODULE},tests.django_tasks_for_tests"}


@pytest.fixture
def db_worker(schedulers):
    """One `manage.py db_worker` on the project's database backend, stopped at the test's end."""
    log_path = schedulers.var_dir / "db-worker.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay"],
            cwd=ROOT,
            env={**schedulers.env, **MODULES},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield popen
    finally:
        stop(popen)
        print(f"===== db-worker =====\n{log_path.read_text(errors='replace')[-4000:]}")


def test_a_django_task_fires_on_its_schedule_and_a_db_worker_runs_and_records_it(schedulers, db_worker):
    from django_tasks_db.models import DBTaskResult

    register_django_tasks(django_tasks_for_tests)  # the job is validated here, in the test process
    job = every(
        "django-task-on-a-worker",
        2,
        task="tests.django_tasks_for_tests.greet",
        kwargs={"name": "worker"},
        executor="django_tasks",
    )
    schedulers.start_leader(env=MODULES)

    row = schedulers.wait_for(
        lambda: Execution.objects.filter(job=job, status="succeeded").first(),
        timeout=30,
        what="a scheduled run, done by the db_worker",
    )
    assert row.reason == "schedule"
    assert row.result == {"greeting": "hello worker!"}
    assert "greeting worker" in row.output
    assert row.worker.startswith("django_tasks@")
    assert db_worker.poll() is None
    # The backend's own record of our wrapper, the one the row names.
    record = schedulers.wait_for(
        lambda: DBTaskResult.objects.filter(id=row.task_id, status="SUCCESSFUL").first(),
        timeout=10,
        what="django-tasks-db's record of the run",
    )
    assert record.task_path == "scheduler_app.engine.tasks_executor.run_execution"
    assert record.args_kwargs["args"] == [row.pk]
