"""Fixtures for the engine's unit tests: rows in a given state, built without a scheduler."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler_app.engine.dispatch import Dispatcher
from scheduler_app.engine.writer import Writer
from scheduler_app.models import Execution, Job
from tests.engine import tasks_for_tests  # registers the engine_tests.* tasks

NODE = "host:1:node-a"


@pytest.fixture
def make_execution(now):
    """make_execution(job, status="running", **fields): an Execution row as the engine leaves it."""

    def make(job: Job | None, *, status: str = "running", scheduled_for: datetime | None = None, **fields) -> Execution:
        at = scheduled_for or now
        fields.setdefault("run_after", at)
        fields.setdefault("created_at", at)
        return Execution.objects.create(
            job=job, job_name=job.name if job else "gone", scheduled_for=at, status=status, **fields
        )

    return make


@pytest.fixture
def dispatcher():
    """A dispatcher of node NODE with one worker thread and its own writer, stopped after the test."""
    writer = Writer()
    writer.start()
    dispatcher = Dispatcher(node=NODE, writer=writer, max_workers=1)
    yield dispatcher
    tasks_for_tests.release.set()  # never leave a pool thread waiting
    dispatcher.drain(5, "test over")
    writer.stop()
    dispatcher.shutdown()
