"""The "django_tasks" executor: Django's own @task functions scheduled by Tempora, and runs
enqueued through a real Tasks backend (the backport's ImmediateBackend, which runs them at
once, in the caller). The real database backend with a real `db_worker` process and a real
runscheduler is tests/process/test_django_tasks_executor.py.

transaction=True: a failed enqueue is written by the dispatcher's writer thread, on its own connection.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import checks
from django.core.exceptions import ValidationError

from scheduler_app import services
from scheduler_app.engine.dispatch import claim
from scheduler_app.engine.runner import RunRequest
from scheduler_app.models import Execution, Job
from scheduler_app.registry import autodiscover, register_django_tasks, registry
from tests import django_tasks_for_tests
from tests.engine.conftest import NODE
from tests.engine.test_dispatch import wait_for

try:
    from django.tasks import task as django_task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task as django_task

pytestmark = pytest.mark.django_db(transaction=True)

GREET = "tests.django_tasks_for_tests.greet"
EXPLODE = "tests.django_tasks_for_tests.explode"
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@django_task(takes_context=True)
def wants_context(context, n: int) -> int:
    return n


@pytest.fixture(autouse=True)
def django_tasks_registered():
    register_django_tasks(django_tasks_for_tests)


@pytest.fixture
def immediate(settings):
    settings.TASKS = IMMEDIATE


def run_now(dispatcher, job: Job) -> Execution:
    """A run-now request, claimed and handed over as Engine.start_waiting does."""
    execution = Execution.objects.select_related("job").get(pk=services.job_run_now(job=job).pk)
    assert claim(execution, node=NODE, now=datetime.now(UTC))
    dispatcher.launch([(RunRequest.for_execution(execution), "start")])
    return execution


def row(execution: Execution) -> Execution:
    return Execution.objects.get(pk=execution.pk)


# The registry ------------------------------------------------------------------------------


def test_a_django_task_is_registered_under_its_dotted_path_with_its_functions_parameters():
    info = registry.get(GREET)
    assert info.func is django_tasks_for_tests.greet.func  # the plain function is what runs
    assert info.django_task is django_tasks_for_tests.greet
    assert info.description == "Say hello to someone (a Django task)."
    assert [(p.name, p.required, p.default, p.annotation) for p in info.parameters] == [
        ("name", True, None, "str"),
        ("punctuation", False, "!", "str"),
    ]


def test_it_registers_by_hand_and_under_our_own_decorator_too():
    from scheduler_app.registry import task

    by_hand = registry.register(django_tasks_for_tests.explode, name="tests.explode_by_hand")
    assert by_hand.func is django_tasks_for_tests.explode.func
    decorated = task(name="tests.greet_decorated")(django_tasks_for_tests.greet)
    assert decorated is django_tasks_for_tests.greet  # still Django's Task: .enqueue() works as before
    assert registry.get("tests.greet_decorated").parameters == registry.get(GREET).parameters
    registry.unregister("tests.explode_by_hand")
    registry.unregister("tests.greet_decorated")


def test_a_task_that_takes_djangos_context_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="takes Django's TaskContext"):
        registry.register(wants_context)
    assert f"{__name__}.wants_context" not in registry


def test_discovery_registers_the_django_tasks_of_the_task_modules(settings):
    registry.unregister(GREET)
    settings.TEMPORA = {**settings.TEMPORA, "TASK_MODULES": ["tests.django_tasks_for_tests"]}
    autodiscover()
    assert registry.get(GREET).func is django_tasks_for_tests.greet.func


def test_a_job_names_a_django_task_and_its_arguments_are_checked_against_the_function(make_job):
    job = make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    assert (job.task, job.executor) == (GREET, "django_tasks")
    with pytest.raises(ValidationError) as refused:
        make_job(task=GREET, kwargs={"nome": "Ada"})
    assert "do not fit the task" in str(refused.value.message_dict)


# Runs through the ImmediateBackend ------------------------------------------------------------


def test_a_run_now_on_the_immediate_backend_records_success_and_the_result(immediate, dispatcher, make_job):
    job = make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    run = row(run_now(dispatcher, job))
    assert run.status == "succeeded"
    assert run.result == {"greeting": "hello Ada!"}
    assert "greeting Ada" in run.output
    assert run.worker.startswith("django_tasks@")
    assert len(run.task_id) == 32  # the backend's own id of its result
    assert run.started_at <= run.finished_at
    job.refresh_from_db()
    assert (job.run_count, job.last_status) == (1, "succeeded")


def test_a_failing_django_task_records_failed_with_the_error_then_its_retry(immediate, dispatcher, make_job):
    job = make_job(task=EXPLODE, kwargs={"why": "no cheese"}, executor="django_tasks", max_retries=1)
    run = row(run_now(dispatcher, job))
    assert run.status == "failed"
    assert run.error == "RuntimeError: no cheese"
    assert "raise RuntimeError(why)" in run.traceback
    retry = Execution.objects.get(job=job, attempt=2)
    assert (retry.status, retry.reason) == ("scheduled", "retry")


def test_a_run_the_backend_refuses_is_recorded_failed_not_left_queued(settings, dispatcher, make_job):
    job = make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    settings.TASKS = {"default": {**IMMEDIATE["default"], "QUEUES": ["elsewhere"]}}  # our queue is "default"
    run = run_now(dispatcher, job)
    failed = wait_for(lambda: Execution.objects.filter(pk=run.pk, status="failed").first(), what="the refusal")
    assert failed.error.startswith("Not enqueued on the Tasks backend 'default': InvalidTaskError")


def test_a_redelivered_message_runs_nothing(immediate, dispatcher, make_job):
    from scheduler_app.engine.tasks_executor import run_execution

    job = make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    run = row(run_now(dispatcher, job))
    again = run_execution.enqueue(run.pk)
    assert again.return_value == {"execution": run.pk, "status": "not queued"}
    assert row(run).finished_at == run.finished_at


# The one rule: a backend to enqueue on -------------------------------------------------------


def test_the_executor_is_refused_when_the_backend_is_not_configured(settings, make_job):
    settings.TEMPORA = {**settings.TEMPORA, "TASKS_BACKEND": "nowhere"}
    with pytest.raises(ValidationError) as refused:
        make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    assert "TEMPORA['TASKS_BACKEND']='nowhere' names no usable backend" in refused.value.message_dict["executor"][0]


def test_a_job_on_a_backend_that_went_away_fails_the_check_and_can_still_be_paused(settings, make_job):
    job = make_job(task=GREET, kwargs={"name": "Ada"}, executor="django_tasks")
    assert [m for m in checks.run_checks(tags=["tempora"]) if m.id == "tempora.E013"] == []
    settings.TASKS = {"other": IMMEDIATE["default"]}
    (error,) = [m for m in checks.run_checks(tags=["tempora"]) if m.id == "tempora.E013"]
    assert "names no usable backend of settings.TASKS" in error.msg
    assert "TEMPORA['TASKS_BACKEND']" in error.hint
    services.job_pause(job=job)
    assert Job.objects.get(pk=job.pk).paused
