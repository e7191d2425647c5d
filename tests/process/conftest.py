"""Fixtures for the tests that run a real `manage.py runscheduler` (see harness.py).

Every test module here sets `pytestmark = PROCESS`: slow, and `django_db(transaction=True)`,
because rows must be committed for the subprocess to see them. The test database (a file
for SQLite, test_<name> for PostgreSQL) is shared with the subprocess through DATABASE_URL.
"""

from __future__ import annotations

import pytest

import tests.process.jobs_for_tests  # noqa: F401  (registers the test tasks here too, so jobs validate)
from tests.process.harness import Schedulers


@pytest.fixture
def schedulers(transactional_db, tmp_path):
    """Start runscheduler processes for this test; all are killed at its end.

    Their logs are printed at teardown, which pytest shows only for a failed test.
    Depending on transactional_db makes this teardown run before the database is flushed.
    """
    harness = Schedulers(tmp_path)
    try:
        yield harness
    finally:
        harness.stop_all()
        print(harness.logs())
