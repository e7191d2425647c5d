"""The peers, measured as the floor is: django-apscheduler's DjangoJobStore under plain APScheduler 3.

    .venv/bin/python -m bench.peers fire-lag 1000 30 [--database postgresql]

Plain APScheduler with django-apscheduler's job store on a fresh database (SQLite, or a
PostgreSQL database of its own: bench.run's Project), its event listeners on (a
DjangoJobExecution row per run, as django-apscheduler stores them), the floor's thread pool and
no-op job, and each run's start timed against its scheduled time in the process. bench.run
prints it beside Tempora's and the floor's. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.measure import cpu_seconds, percentiles, rss_mb


def fire_lag(n: int, seconds: int) -> dict:
    from bench.run import Project

    Project()  # a fresh database, migrated; Django set up in this process
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger
    from django_apscheduler.jobstores import DjangoJobStore
    from django_apscheduler.models import DjangoJobExecution

    from bench import floor

    scheduler = BackgroundScheduler(
        jobstores={"default": DjangoJobStore()}, executors={"default": floor.MeasuredPool(10)}, timezone=UTC
    )
    scheduler.start(paused=True)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3 + n // 500)
    for i in range(n):
        scheduler.add_job(
            floor.noop,
            IntervalTrigger(seconds=1, start_date=start),
            id=str(i),
            misfire_grace_time=60,
            coalesce=False,
            max_instances=10,
        )
    scheduler.resume()
    t0 = start + timedelta(seconds=2)
    time.sleep(max((t0 - datetime.now(UTC)).total_seconds(), 0))
    cpu0 = cpu_seconds()
    time.sleep(seconds)
    cpu = cpu_seconds() - cpu0
    time.sleep(2)
    with floor.lock:
        window = [lag for at, lag in floor.lags if t0 <= at < t0 + timedelta(seconds=seconds)]
    scheduler.shutdown(wait=True)
    return {
        "done": len(window),
        "expected": n * seconds,
        "lag": percentiles(window),
        "cpu_s": round(cpu, 2),
        "rss_mb": round(rss_mb(), 1),
        "execution_rows": DjangoJobExecution.objects.count(),
    }


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    if "--database" in sys.argv:
        os.environ["BENCH_DATABASE"] = sys.argv[sys.argv.index("--database") + 1]
        args = [arg for arg in args if arg != os.environ["BENCH_DATABASE"]]
    kind, n, seconds = args[0], int(args[1]), int(args[2])
    print(json.dumps({"fire-lag": fire_lag}[kind](n, seconds)))
