"""The chaos suite: PostgreSQL only, chosen by the database's vendor at collection.

On another database (SQLite: `make test` without DATABASE_URL) its tests are deselected —
the summary says "N deselected" and why — rather than run and skipped, so a run that did
not break anything never reads as one that survived. CI's PostgreSQL half sets
TEMPORA_REQUIRE_CHAOS=1, which turns that deselection into an error: there the suite must run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tests.chaos.jobs_for_chaos  # noqa: F401  (registers the traced task here too, so jobs validate)
from tests.chaos.cluster import Cluster, require_redis
from tests.process.harness import Schedulers

HERE = Path(__file__).resolve().parent
_deselected: list[str] = []


def _vendor() -> str:
    from django.db import connection

    return connection.vendor  # the backend's name; no connection is opened


def pytest_collection_modifyitems(config, items):
    chaos = [item for item in items if HERE in Path(item.path).resolve().parents]
    if not chaos or _vendor() == "postgresql":
        return
    if os.environ.get("TEMPORA_REQUIRE_CHAOS"):
        raise pytest.UsageError(
            f"TEMPORA_REQUIRE_CHAOS is set but the database is {_vendor()}: the chaos suite runs on PostgreSQL only"
        )
    config.hook.pytest_deselected(items=chaos)
    items[:] = [item for item in items if item not in chaos]
    _deselected.extend(item.nodeid for item in chaos)


def pytest_terminal_summary(terminalreporter):
    if _deselected:
        terminalreporter.write_line(
            f"chaos suite: {len(_deselected)} test(s) deselected, not run: it needs PostgreSQL "
            f"(the database here is {_vendor()}; set DATABASE_URL=postgres://...)",
            yellow=True,
        )


@pytest.fixture
def chaos_cluster(transactional_db, tmp_path):
    """chaos_cluster(**options) → a Cluster; everything it started is killed at the end.

    Its logs are printed at teardown, which pytest shows only for a failed test.
    Depending on transactional_db makes this teardown run before the database is flushed.
    """
    require_redis()
    made: list[Cluster] = []

    def make(**options) -> Cluster:
        cluster = Cluster(Schedulers(tmp_path), **options)
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.teardown()
            print(cluster.logs())
