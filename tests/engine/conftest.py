"""Fixtures for the engine's unit tests: rows in a given state, built without a scheduler."""

from __future__ import annotations

from datetime import datetime

import pytest

import tests.engine.tasks_for_tests  # noqa: F401  (registers the engine_tests.* tasks)
from scheduler_app.models import Execution, Job


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
