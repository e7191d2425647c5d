"""One lock order for the writer, recovery and the pass: executions by id, then jobs by id.

PostgreSQL reported "deadlock detected" between the writer (its job counters, in the order
runs finished) and the pass (its jobs' next_run_at, in the order they came due): two
transactions taking the same job rows in opposite orders.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection, connections, transaction

from scheduler_app.engine import outcomes
from scheduler_app.engine.firing import record_fires
from scheduler_app.engine.runner import RunRequest, RunResult
from scheduler_app.engine.writer import apply_outcomes
from scheduler_app.models import Execution, Job
from tests.engine.conftest import NODE


def finished(execution: Execution, at) -> outcomes.Outcome:
    execution = Execution.objects.select_related("job").get(pk=execution.pk)
    result = RunResult("succeeded", at - timedelta(seconds=1), at)
    return outcomes.finished(RunRequest.for_execution(execution), result, worker=NODE)


def fired(job: Job, at):
    return (SimpleNamespace(id=str(job.pk), next_run_time=at + timedelta(minutes=5)), [at])


class Statements:
    """Every statement this connection runs, with its parameters (executemany: all rows)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object, bool]] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append((sql, params, many))
        return execute(sql, params, many, context)

    def updates(self, table: str, *, key: int = -1) -> list[list]:
        """The keys each UPDATE of `table` takes, in the order it locks them: an executemany's
        rows in order (`key`: the key's place in a row), or, for PostgreSQL's one-statement
        UPDATE ... FROM unnest, the ids its SELECT ... ORDER BY id FOR UPDATE just before locked."""
        taken = []
        for index, (sql, params, many) in enumerate(self.seen):
            if not sql.replace('"', "").startswith(f"UPDATE {table} "):
                continue
            if many:
                taken.append([list(row)[key] for row in params])
                continue
            lock, ids, _ = self.seen[index - 1]
            assert f"FROM {table} " in lock.replace('"', "") and "ORDER BY" in lock and "FOR UPDATE" in lock
            taken.append(sorted(ids[0]))  # ORDER BY takes them in this order
        return taken

    def locking(self) -> list[str]:
        return [sql for sql, _, _ in self.seen if "FOR UPDATE" in sql]


@pytest.mark.django_db
def test_the_writer_takes_executions_and_then_jobs_in_id_order(make_job, make_execution, now):
    jobs = [make_job() for _ in range(3)]
    runs = [make_execution(job, status="running") for job in jobs]
    batch = [finished(run, now) for run in reversed(runs)]  # finished newest first
    statements = Statements()
    with connection.execute_wrapper(statements):
        apply_outcomes(batch)
    [execution_rows] = statements.updates(Execution._meta.db_table, key=-2)
    assert execution_rows == sorted(run.pk for run in runs)
    [job_rows] = statements.updates(Job._meta.db_table)
    assert job_rows == sorted(job.pk for job in jobs)
    if connection.features.has_select_for_update:
        assert statements.locking() and all("ORDER BY" in sql for sql in statements.locking())


@pytest.mark.django_db
def test_the_pass_takes_jobs_in_id_order_and_inserts_in_job_order(dispatcher, make_job, now):
    jobs = [make_job() for _ in range(3)]
    statements = Statements()
    with connection.execute_wrapper(statements):
        record_fires(
            [fired(job, now) for job in reversed(jobs)], now=now, dispatcher=dispatcher, node=NODE, paused=False
        )
    [job_rows] = statements.updates(Job._meta.db_table)
    assert job_rows == sorted(job.pk for job in jobs)
    inserted = list(Execution.objects.order_by("pk").values_list("job_id", flat=True))
    assert inserted == sorted(job.pk for job in jobs)


def _waiting_on_locks() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for_waiters(n: int) -> None:
    deadline = time.monotonic() + 10
    while _waiting_on_locks() < n:
        assert time.monotonic() < deadline, f"expected {n} session(s) waiting on a lock"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_the_writer_and_a_pass_on_the_same_jobs_never_deadlock(dispatcher, make_job, make_execution, now):
    """Deterministic on PostgreSQL: a third session holds the first job's row; the pass queues
    for it first, then the writer. Once it lets go, the pass holds the first job and wants the
    second: with the writer's counters in finishing order (second job first) that was a cycle."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite has one write lock, no cycle is possible)")
    first, second = make_job(), make_job()
    runs = [make_execution(job, status="running", scheduled_for=now - timedelta(minutes=1)) for job in (first, second)]
    batch = [finished(run, now) for run in reversed(runs)]
    errors: list[BaseException] = []

    def in_thread(work):
        def run():
            try:
                with transaction.atomic():
                    work()
            except BaseException as exc:  # reported by the test, not lost in the thread
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:  # the lock an UPDATE of the job's counters takes
            cursor.execute(f"SELECT id FROM {Job._meta.db_table} WHERE id = %s FOR NO KEY UPDATE", [first.pk])
        a_pass = in_thread(
            lambda: record_fires(
                [fired(first, now), fired(second, now)],
                now=now,
                dispatcher=dispatcher,
                node=NODE,
                paused=False,
            )
        )
        _wait_for_waiters(1)
        writer = in_thread(lambda: apply_outcomes(batch))
        _wait_for_waiters(2)
        holder.rollback()
    finally:
        holder.close()
    a_pass.join(20)
    writer.join(20)
    assert not a_pass.is_alive() and not writer.is_alive()
    assert errors == []
    assert set(Execution.objects.filter(pk__in=[run.pk for run in runs]).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert Execution.objects.filter(scheduled_for=now, status="queued").count() == 2
