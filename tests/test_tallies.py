"""The run tallies: the fold counts each finished run once, and the statistics read the same from them."""

from __future__ import annotations

import random
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection
from django.db.models import Count

from scheduler_app import services, statistics, tallies
from scheduler_app.models import Execution, JobDayTally, RunTally
from tests.conftest import grant

pytestmark = pytest.mark.django_db


def add_run(job, *, finished_at, seconds=1.0, status="succeeded", reason="manual", scheduled_for=None):
    return Execution.objects.create(
        job=job,
        job_name=job.name if job else "gone",
        scheduled_for=scheduled_for or finished_at,
        run_after=finished_at,
        started_at=finished_at - timedelta(seconds=seconds) if seconds is not None else None,
        finished_at=finished_at,
        status=status,
        reason=reason,
    )


def everyone(now):
    return statistics.Tallied.everyone(now=now)


def test_the_fold_counts_finished_runs_once_and_leaves_active_ones(make_job, now):
    job = make_job()
    for minutes in range(5):
        add_run(job, finished_at=now - timedelta(minutes=minutes))
    add_run(job, finished_at=now, status="failed")
    running = Execution.objects.create(
        job=job, job_name=job.name, scheduled_for=now, run_after=now, started_at=now, status="running"
    )
    assert tallies.fold(now=now) == 6
    assert tallies.fold(now=now) == 0  # nothing is counted twice
    running.refresh_from_db()
    assert running.tallied_at is None
    counts = sorted(RunTally.objects.filter(owner=RunTally.EVERYONE).values_list("hour", "status", "count"))
    assert counts == [(now - timedelta(hours=1), "succeeded", 4), (now, "failed", 1), (now, "succeeded", 1)]
    day = JobDayTally.objects.get(job_id=job.pk)
    assert (day.runs, day.succeeded, day.failed, day.timed, day.seconds) == (6, 5, 1, 6, 6.0)
    # The run that was active, once finished, is counted by the next fold.
    Execution.objects.filter(pk=running.pk).update(status="succeeded", finished_at=now + timedelta(seconds=3))
    assert tallies.fold(now=now) == 1
    assert RunTally.objects.get(owner=RunTally.EVERYONE, hour=now, status="succeeded").count == 2


def test_a_fold_goes_in_batches(make_job, now):
    job = make_job()
    for minutes in range(7):
        add_run(job, finished_at=now - timedelta(minutes=minutes))
    assert [tallies.fold(now=now, batch=3) for _ in range(4)] == [3, 3, 1, 0]


@pytest.mark.django_db(transaction=True)
def test_two_folds_at_once_count_each_run_exactly_once(make_job, now):
    job = make_job()
    Execution.objects.bulk_create(
        Execution(
            job=job,
            job_name=job.name,
            scheduled_for=now - timedelta(seconds=i),
            run_after=now,
            started_at=now - timedelta(seconds=i + 1),
            finished_at=now - timedelta(seconds=i),
            status="succeeded",
        )
        for i in range(3000)
    )
    counted = []
    start = threading.Barrier(2)

    def folder():
        try:
            start.wait()
            total = 0
            for _ in range(200):  # a fold that loses a race on a new tally row counts nothing and tries again
                total += tallies.fold_all(now=now, batch=100)
                if not Execution.objects.filter(tallied_at__isnull=True).exists():
                    break
            counted.append(total)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=folder) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counted) == 3000
    total = sum(RunTally.objects.filter(owner=RunTally.EVERYONE).values_list("count", flat=True))
    assert total == 3000
    assert sum(JobDayTally.objects.values_list("runs", flat=True)) == 3000


@pytest.mark.django_db(transaction=True)
def test_a_fold_committed_between_two_reads_is_counted_once(make_job, now):
    # The reads add the runs not yet folded to the tallies: read apart, a fold committing between
    # them counted its batch twice (read as pending, then in the tallies).
    job = make_job()
    for minutes in range(5):
        add_run(job, finished_at=now - timedelta(minutes=minutes))
    tallied = everyone(now)

    def fold_elsewhere():
        try:
            assert tallies.fold(now=now) == 5
        finally:
            close_old_connections()

    with statistics.snapshot():
        assert len(tallied.pending) == 5
        folder = threading.Thread(target=fold_elsewhere)
        folder.start()
        folder.join()
        figures = tallied.figures()
        per_job = tallied.per_job(now.date() - timedelta(days=1))
    assert figures.by_status["succeeded"] == 5
    assert [row["runs"] for row in per_job] == [5]
    assert everyone(now).figures().by_status["succeeded"] == 5  # and afterwards, from the tallies alone


def test_percentiles_from_the_histogram_are_within_ten_percent(make_job, now):
    job = make_job()
    rng = random.Random(7)
    durations = sorted(rng.lognormvariate(0, 2) for _ in range(500))
    for index, seconds in enumerate(durations):
        add_run(job, finished_at=now - timedelta(seconds=index), seconds=seconds)
    tallies.fold_all(now=now)
    figures = everyone(now).figures()
    for p in (50, 90, 95, 99):
        exact = durations[max(int(p / 100 * len(durations) + 0.999999), 1) - 1]
        assert figures.percentile(p) == pytest.approx(exact, rel=0.1), p
    assert figures.longest == pytest.approx(durations[-1], abs=1e-6)  # stored to the microsecond
    assert figures.shortest == pytest.approx(durations[0], abs=1e-6)


def test_each_user_reads_the_tallies_of_what_they_may_see(make_job, now, owner, outsider, django_user_model):
    mine, theirs = make_job(owner=owner), make_job(owner=outsider)
    add_run(mine, finished_at=now)
    add_run(mine, finished_at=now, status="failed")
    add_run(theirs, finished_at=now)
    viewer = grant(django_user_model.objects.create_user("viewer"), "scheduler_app.view_job")
    for counted in (False, True):
        if counted:
            tallies.fold_all(now=now)
        assert statistics.Tallied(owner, now=now).figures().by_status["succeeded"] == 1
        assert statistics.Tallied(owner, now=now).figures().by_status["failed"] == 1
        assert statistics.Tallied(outsider, now=now).figures().by_status["failed"] == 0
        assert statistics.Tallied(viewer, now=now).figures().by_status["succeeded"] == 2
        from django.contrib.auth.models import AnonymousUser

        assert statistics.Tallied(AnonymousUser(), now=now).figures().by_status["succeeded"] == 0
        assert [row["job"] for row in statistics.Tallied(owner, now=now).per_job(now.date())] == [mine.pk]


def test_per_job_adds_the_runs_not_yet_counted_to_the_tallies(make_job, now):
    busy, quiet = make_job(name="busy"), make_job(name="quiet")
    for minutes in range(3):
        add_run(busy, finished_at=now - timedelta(minutes=minutes), seconds=2)
    add_run(quiet, finished_at=now - timedelta(minutes=1), seconds=4)
    tallies.fold_all(now=now)
    # After the fold, quiet overtakes busy with runs only the raw rows know of.
    for minutes in range(3):
        add_run(quiet, finished_at=now + timedelta(minutes=minutes + 1), seconds=4, status="failed")
    later = now + timedelta(minutes=5)
    rows = statistics.Tallied.everyone(now=later).per_job(now.date(), limit=1)
    assert [(row["job_name"], row["runs"], row["failed"], row["mean_duration_seconds"]) for row in rows] == [
        ("quiet", 4, 3, 4.0)
    ]
    both = statistics.Tallied.everyone(now=later).per_job(now.date())
    assert [(row["job_name"], row["runs"]) for row in both] == [("quiet", 4), ("busy", 3)]
    # A job whose runs were only skipped ran nothing: it has no row.
    idle = make_job(name="idle")
    add_run(idle, finished_at=now, status="skipped", seconds=None)
    tallies.fold_all(now=later)
    names = [row["job_name"] for row in statistics.Tallied.everyone(now=later).per_job(now.date())]
    assert names == ["quiet", "busy"]


def test_windows_start_on_the_hour_and_skipped_runs_are_not_runs(make_job, now):
    job = make_job()
    add_run(job, finished_at=now - timedelta(hours=2, minutes=1))  # before the window's hour
    add_run(job, finished_at=now - timedelta(hours=1, minutes=59))  # inside it
    add_run(job, finished_at=now, status="skipped", seconds=None)
    for counted in (False, True):
        if counted:
            tallies.fold_all(now=now)
        figures = everyone(now).figures(now - timedelta(hours=2))
        assert figures.by_status["succeeded"] == 1 and figures.by_status["skipped"] == 1
        assert figures.timed == 1


def test_retries_are_counted(make_job, now):
    job = make_job()
    add_run(job, finished_at=now, status="failed")
    add_run(job, finished_at=now, reason="retry", scheduled_for=now - timedelta(seconds=1))
    tallies.fold_all(now=now)
    assert everyone(now).figures().retries == 1


def test_a_backlog_past_the_limit_is_read_in_part_and_said_so(make_job, now, monkeypatch):
    job = make_job()
    for minutes in range(4):
        add_run(job, finished_at=now - timedelta(minutes=minutes))
    monkeypatch.setattr(statistics, "PENDING_LIMIT", 3)
    figures = everyone(now)
    assert figures.figures().by_status["succeeded"] == 3
    assert figures.up_to_date is False
    tallies.fold_all(now=now)
    figures = everyone(now)
    assert figures.figures().by_status["succeeded"] == 4 and figures.up_to_date is True


def test_old_tallies_are_pruned(make_job, now):
    job = make_job()
    add_run(job, finished_at=now - timedelta(days=tallies.KEEP_DAYS + 1))
    add_run(job, finished_at=now)
    tallies.fold_all(now=now)
    assert tallies.prune(now=now) == 3  # the old hour (counts, durations: no owner, everyone's only) and day
    assert everyone(now).figures().by_status["succeeded"] == 1


def test_stats_read_the_tallies_in_a_fixed_number_of_queries(client, django_user_model, make_job, now):
    from django.test.utils import CaptureQueriesContext

    admin = grant(django_user_model.objects.create_user("admin", password="pw-123456789"), "scheduler_app.view_job")
    client.force_login(admin)
    job = make_job()
    add_run(job, finished_at=now)
    client.get("/api/stats/")
    with CaptureQueriesContext(connection) as few:
        client.get("/api/stats/")
    for minutes in range(50):
        add_run(make_job(), finished_at=now - timedelta(hours=minutes))
    tallies.fold_all(now=now)
    with CaptureQueriesContext(connection) as many:
        client.get("/api/stats/")
    assert len(many) == len(few)


def test_the_runs_the_fold_counts_are_the_runs_the_reads_add():
    where = Execution.objects.untallied().query.where
    statuses = next(child.rhs for child in where.children if child.lhs.target.name == "status")
    assert set(statuses) == set(Execution.FINISHED)


# The queries behind the statistics, as sent (bound parameters: SQLite uses a partial index only
# for a condition it can read in the SQL, so a plan of the SQL with its values inlined would lie).
STATISTICS_QUERIES = {
    # name: (the query, the index SQLite must search)
    "finished runs not yet counted": (
        lambda now: Execution.objects.untallied().order_by()[:20001],
        "execution_untallied",
    ),
    "running now": (lambda now: Execution.objects.running().order_by(), "execution_status_recent"),
    "active, by status": (
        lambda now: Execution.objects.filter(status__in=Execution.ACTIVE)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id")),
        "execution_status_recent",
    ),
    "dead letters": (lambda now: Execution.objects.dead_letters().order_by(), "execution_dead_letters"),
    "the last hour's runs": (
        lambda now: Execution.objects.filter(finished_at__gte=now - timedelta(hours=1)).order_by(),
        "execution_finished_at",
    ),
}


@pytest.mark.parametrize("name", STATISTICS_QUERIES)
def test_statistics_never_scan_the_history(name, make_job, now):
    job = make_job()
    Execution.objects.bulk_create(
        Execution(
            job=job,
            job_name=job.name,
            scheduled_for=now - timedelta(minutes=n),
            run_after=now,
            finished_at=now - timedelta(minutes=n),
            status="succeeded",
            tallied_at=now,
        )
        for n in range(300)
    )
    query, index = STATISTICS_QUERIES[name]
    sql, params = query(now).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert not re.search(r"SCAN scheduler_app_execution$", plan, re.MULTILINE), plan
            assert f"INDEX {index}" in plan, plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # as ten million rows price a scan
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on scheduler_app_execution" not in plan, plan


@pytest.mark.django_db(transaction=True)
def test_the_statistics_pages_read_in_one_snapshot_and_leave_no_transaction_open(client, django_user_model):
    # Outside a test's transaction, as in production: the snapshot is a transaction of its own
    # (PostgreSQL REPEATABLE READ; SQLite a deferred read), and it must end with the request.
    admin = django_user_model.objects.create_superuser("admin", password="pw-123456789")
    client.force_login(admin)
    job = services.job_create(name="counted", task="tempora.noop")
    add_run(job, finished_at=datetime.now(UTC) - timedelta(seconds=5))
    for url in ("/api/stats/", "/", "/scheduler/api/status"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not connection.in_atomic_block
        if connection.vendor == "sqlite":
            assert not connection.connection.in_transaction
    assert client.get("/api/stats/").json()["totals"]["succeeded"] == 1
