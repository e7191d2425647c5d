"""A month of history in minutes: jobs and their executions written by bulk SQL.

    .venv/bin/python -m bench.history --jobs 10000 --executions 1000000            # SQLite in a temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tempora_bench \\
        .venv/bin/python -m bench.history --jobs 100000 --executions 10000000

What a team sees after a month (issue 11): executions spread evenly over the last 30 days,
about 3 % failed (each with an error and a traceback, one in ten of them dead letters), output on
one run in ten, every job on a cron trigger in one of a few groups and owned by one of a few users.
Jobs and triggers go through bulk_create; executions through one INSERT ... SELECT per batch over
a generated series, so ten million rows take minutes, not hours. The database must be migrated
and empty of jobs; prints the seconds each step took.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta

FAILED_EVERY = 33  # ~3 % of runs fail
DEAD_EVERY = 10  # of those, one in ten is a dead letter
OUTPUT_EVERY = 10
GROUPS = ("etl", "reports", "billing", "ops", "default")
BATCH = 500_000

# Columns every execution row needs (NOT NULL without a database default) and the expression
# that fills each from the series number n, the job count J and the history's start S (epoch
# seconds) and step D (seconds between runs). {ts} turns epoch seconds into the vendor's datetime.
COLUMNS = {
    "job_id": "{first_job} + (n %% {jobs})",
    "job_name": "'bench-' || (n %% {jobs})",
    "scheduled_for": "{ts}({start} + n * {step})",
    "run_after": "{ts}({start} + n * {step})",
    "queued_at": "{ts}({start} + n * {step})",
    "started_at": "{ts}({start} + n * {step} + 0.01)",
    "finished_at": "{ts}({start} + n * {step} + 0.01 + (n %% 97) * 0.05)",
    "status": f"CASE WHEN n %% {FAILED_EVERY} = 0 THEN 'failed' ELSE 'succeeded' END",
    "attempt": "1",
    "reason": "'schedule'",
    "output": f"CASE WHEN n %% {OUTPUT_EVERY} = 0 THEN 'processed ' || n || ' rows' ELSE '' END",
    "error": f"CASE WHEN n %% {FAILED_EVERY} = 0 THEN 'ValueError: row ' || n || ' is malformed' ELSE '' END",
    "traceback": f"CASE WHEN n %% {FAILED_EVERY} = 0 THEN 'Traceback (most recent call last):\n  ...\n"
    "ValueError: row ' || n || ' is malformed' ELSE '' END",
    "worker": "'bench-node'",
    "task_id": "''",
    "dead_letter": f"n %% {FAILED_EVERY * DEAD_EVERY} = 0",
    "created_at": "{ts}({start} + n * {step})",
}


def _series(vendor: str) -> tuple[str, str]:
    """The SELECT of numbers low..high-1, and the function from epoch seconds to a datetime."""
    if vendor == "postgresql":
        return "SELECT n FROM generate_series(%(low)s, %(high)s - 1) AS n", "to_timestamp"
    # SQLite stores datetimes as ISO text in UTC: datetime_of (registered in build) writes it.
    return (
        "WITH RECURSIVE series(n) AS (SELECT %(low)s UNION ALL SELECT n + 1 FROM series WHERE n + 1 < %(high)s) "
        "SELECT n FROM series",
        "datetime_of",
    )


def build(
    *, jobs: int, executions: int, days: int = 30, paused: bool = False, now: datetime | None = None
) -> dict[str, float]:
    """Write `jobs` jobs and `executions` executions; answer the seconds each step took. The jobs
    are active (the calendar and next runs have work to do) unless `paused`: a scheduler started
    on the database then fires nothing."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from scheduler_app import tallies
    from scheduler_app.models import Execution, Job, Trigger

    now = now or datetime.now(UTC)
    timings = {}
    began = time.monotonic()
    users = [get_user_model().objects.get_or_create(username=f"bench-user-{n}")[0] for n in range(5)]
    with transaction.atomic():
        Job.objects.bulk_create(
            (
                Job(
                    name=f"bench-{n}",
                    task="tempora.sample_job",
                    group=GROUPS[n % len(GROUPS)],
                    owner=users[n % 5],
                    paused=paused,
                )
                for n in range(jobs)
            ),
            batch_size=5000,
        )
        ids = dict(Job.objects.filter(name__startswith="bench-").values_list("name", "id"))
        Trigger.objects.bulk_create(
            (Trigger(job_id=ids[f"bench-{n}"], kind="cron", cron_expression=f"{n % 60} * * * *") for n in range(jobs)),
            batch_size=5000,
        )
    timings["jobs"] = time.monotonic() - began
    first_job = min(ids.values())
    if max(ids.values()) - first_job + 1 != jobs:
        raise SystemExit("bench.history needs an empty job table (job ids must be consecutive)")

    start = (now - timedelta(days=days)).timestamp()
    step = days * 86400 / max(executions, 1)
    vendor = connection.vendor
    began = time.monotonic()
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            # One function for the datetime text Django reads back (it parses fractional seconds).
            connection.connection.create_function(
                "datetime_of",
                1,
                lambda seconds: datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                deterministic=True,
            )
        series, ts = _series(vendor)
        names = ", ".join(f'"{column}"' for column in COLUMNS)
        values = ", ".join(
            expression.format(first_job=first_job, jobs=jobs, start=start, step=step, ts=ts)
            for expression in COLUMNS.values()
        )
        sql = f'INSERT INTO "{Execution._meta.db_table}" ({names}) SELECT {values} FROM ({series}) AS numbers'
        for low in range(0, executions, BATCH):
            with transaction.atomic():
                cursor.execute(sql, {"low": low, "high": min(low + BATCH, executions)})
    timings["executions"] = time.monotonic() - began
    # What the scheduler's fold does as runs finish, for the whole month at once: the statistics
    # read the tallies it writes.
    began = time.monotonic()
    tallies.fold_all(now=now)
    timings["tallies"] = time.monotonic() - began
    # Statistics for the planner once the history is as a running scheduler leaves it (before
    # the fold, every run looks uncounted and the index of uncounted runs looks huge).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # every table: the jobs' and triggers' too (PostgreSQL's planner needs them)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--paused", action="store_true", help="pause every job (for a scheduler on this database)")
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    timings = build(jobs=options.jobs, executions=options.executions, days=options.days, paused=options.paused)
    print(" ".join(f"{step}: {seconds:.1f} s" for step, seconds in timings.items()))


if __name__ == "__main__":
    main()
