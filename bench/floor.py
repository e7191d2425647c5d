"""The floor: plain APScheduler 3, in-memory job store, no database, a no-op job.

Run as a script by bench/run.py so its CPU and memory are measured alone:
`python bench/floor.py fire-lag 1000 30` or `python bench/floor.py burst 1000`.
Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bench.measure import cpu_seconds, percentiles, rss_mb

lags: list[tuple[datetime, float]] = []  # (scheduled, lag seconds)
lock = threading.Lock()


def noop() -> None:
    pass


def _timed_run(job, alias, run_times, logger_name):
    started = datetime.now(UTC)
    with lock:
        lags.extend((t, (started - t).total_seconds()) for t in run_times)
    return run_job(job, alias, run_times, logger_name)


class MeasuredPool(ThreadPoolExecutor):
    """APScheduler's thread pool, noting when each run starts against its scheduled time."""

    def _do_submit_job(self, job, run_times):
        def callback(future):
            if future.exception():
                self._run_job_error(job.id, future.exception(), None)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(_timed_run, job, job._jobstore_alias, run_times, self._logger.name)
        future.add_done_callback(callback)


def fire_lag(n: int, seconds: int, *, jobstores: dict | None = None) -> dict:
    """n no-op jobs every second, measured over `seconds` from 2 s after they start (bench/peers.py
    passes django-apscheduler's job store)."""
    scheduler = BackgroundScheduler(jobstores=jobstores or {}, executors={"default": MeasuredPool(10)}, timezone=UTC)
    scheduler.start(paused=True)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3 + n // 500)
    for i in range(n):
        scheduler.add_job(
            noop,
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
    with lock:
        window = [lag for at, lag in lags if t0 <= at < t0 + timedelta(seconds=seconds)]
    scheduler.shutdown(wait=True)
    return {"done": len(window), "expected": n * seconds, "lag": percentiles(window), "cpu_s": cpu, "rss_mb": rss_mb()}


def burst(n: int) -> dict:
    scheduler = BackgroundScheduler(executors={"default": MeasuredPool(10)}, timezone=UTC)
    at = datetime.now(UTC) + timedelta(seconds=3)
    for i in range(n):
        scheduler.add_job(noop, DateTrigger(at), id=str(i), misfire_grace_time=60)
    scheduler.start()
    time.sleep((at - datetime.now(UTC)).total_seconds() + 3)
    scheduler.shutdown(wait=True)
    return {"started": len(lags), "last_s": max(lag for _, lag in lags) if lags else None}


if __name__ == "__main__":
    kind = sys.argv[1]
    result = fire_lag(int(sys.argv[2]), int(sys.argv[3])) if kind == "fire-lag" else burst(int(sys.argv[2]))
    print(json.dumps(result))
