"""RunRequest.for_execution: a run now given its own arguments runs with them, not the job's."""

from __future__ import annotations

import pytest

from scheduler_app import services
from scheduler_app.engine.runner import RunRequest, run_in_thread
from scheduler_app.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(make_job):
    return make_job(name="greeter", kwargs={"message": "from the job"}, args=[])


def request_for(execution: Execution) -> RunRequest:
    return RunRequest.for_execution(Execution.objects.select_related("job").get(pk=execution.pk))


def test_a_run_given_keyword_arguments_runs_with_them(job, now):
    execution = services.job_run_now(job=job, kwargs={"message": "just this once"}, now=now)
    request = request_for(execution)
    assert request.kwargs == {"message": "just this once"} and request.args == []
    assert run_in_thread(request, now).result["message"] == "just this once"


def test_a_run_given_positional_arguments_keeps_the_jobs_keyword_ones(job, now, make_job):
    job = make_job(name="adder", task="engine_tests.add", args=[1, 2])
    request = request_for(services.job_run_now(job=job, args=[40, 2], now=now))
    assert (request.args, request.kwargs) == ([40, 2], {})
    assert run_in_thread(request, now).result == 42


def test_a_run_without_overrides_takes_the_jobs_arguments_as_they_are_when_it_runs(job, now):
    execution = services.job_run_now(job=job, now=now)
    services.job_update(job=job, kwargs={"message": "edited since"})
    assert request_for(execution).kwargs == {"message": "edited since"}


def test_a_retry_requested_by_hand_keeps_the_runs_own_arguments(job, now):
    execution = services.job_run_now(job=job, kwargs={"message": "once"}, now=now)
    Execution.objects.filter(pk=execution.pk).update(status="failed")
    execution.refresh_from_db()
    retry = services.execution_retry(execution=execution, now=now)
    assert retry.kwargs == {"message": "once"}
    assert request_for(retry).kwargs == {"message": "once"}
