"""Tempora's benchmarks, each beside plain APScheduler in memory (the floor) where it has one.

    make bench                       # everything, SQLite and PostgreSQL (about 30 minutes)
    .venv/bin/python -m bench.run fire-lag 100 1000 --seconds 30   # + django-apscheduler's store
    .venv/bin/python -m bench.run burst 1000 10000
    .venv/bin/python -m bench.run busy 1000      # fire lag and burst beside a CPU hog
    .venv/bin/python -m bench.run scale 10000 100000
    .venv/bin/python -m bench.run change 1000    # a change through the services until applied
    .venv/bin/python -m bench.run celery 100 1000  # the Celery executor end to end (PostgreSQL)

Each scenario runs on SQLite and on PostgreSQL (`--database` picks one): a fresh SQLite database
in a temporary directory, or a PostgreSQL database of its own on BENCH_POSTGRES's server, jobs
created through the services (bulk rows for the scale scenario), and a real `manage.py
runscheduler` process whose CPU and memory are read from /proc. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.measure import cpu_seconds, percentiles, rss_mb

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


# The PostgreSQL server the PostgreSQL scenarios use: each creates its own database there and
# drops it afterwards (BENCH_POSTGRES names the server's maintenance database).
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASES = ("sqlite", "postgresql")


def _postgres(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(statement)


class Project:
    """A throwaway Tempora database (a SQLite file, or a PostgreSQL database of its own) and a
    runscheduler process against it."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tempora-bench-")
        self.env = {**os.environ, "TEMPORA_VAR_DIR": self.dir, "DJANGO_SETTINGS_MODULE": "config.settings"}
        self.env.pop("DATABASE_URL", None)
        if os.environ.get("BENCH_DATABASE") == "postgresql":
            name = f"tempora_bench_{os.getpid()}"
            _postgres(f'DROP DATABASE IF EXISTS "{name}"')
            _postgres(f'CREATE DATABASE "{name}"')
            atexit.register(_postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.env["DATABASE_URL"] = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)
        os.environ.update({k: self.env[k] for k in ("TEMPORA_VAR_DIR", "DJANGO_SETTINGS_MODULE")})
        os.environ["LOG_LEVEL"] = "WARNING"  # this process only creates jobs and reads results
        os.environ.pop("DATABASE_URL", None)
        if "DATABASE_URL" in self.env:
            os.environ["DATABASE_URL"] = self.env["DATABASE_URL"]
        import django

        django.setup()
        self.process = None

    def start(self) -> float:
        """Start runscheduler; answer the seconds until it leads with its store in sync.

        In sync: the leader is named and its full sync has stamped synced_until. A restart
        finds synced_until already set (and its sync writes the same value back), so it is
        cleared to a sentinel first; the sync moves it off the sentinel when done.
        """
        from django.db import close_old_connections

        from scheduler_app.models import SchedulerState

        state = SchedulerState.objects.filter(pk=1).first()
        before = state.synced_until if state else None
        if before is not None:
            SchedulerState.objects.filter(pk=1).update(synced_until=before - timedelta(microseconds=1))
        began = time.monotonic()
        log = open(Path(self.dir) / "runscheduler.log", "a")
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "runscheduler", "--drain", "5"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        while True:
            close_old_connections()
            state = SchedulerState.objects.filter(pk=1).first()
            if state and state.leader and state.synced_until and (before is None or state.synced_until >= before):
                return time.monotonic() - began
            if self.process.poll() is not None:
                raise SystemExit(f"runscheduler exited; see {log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def _sleep_until(at: datetime) -> None:
    time.sleep(max((at - datetime.now(UTC)).total_seconds(), 0))


def fire_lag(n: int, seconds: int) -> dict:
    project = Project()
    from scheduler_app import services
    from scheduler_app.models import Job

    parked = datetime.now(UTC) + timedelta(days=1)  # creating them takes a while: none fires meanwhile
    for i in range(n):
        services.job_create(
            name=f"noop-{i}",
            task="tempora.noop",
            start_at=parked,
            triggers=[{"kind": "interval", "interval_seconds": 1}],
        )
    project.start()
    # As the floor does: every job starts at one whole second 3 s ahead, measured from 2 s
    # later. Moved by one bulk UPDATE stamping updated_at, which the running scheduler applies.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    Job.objects.update(start_at=start, updated_at=datetime.now(UTC))
    t0 = start + timedelta(seconds=2)
    _sleep_until(t0)
    pid = project.process.pid
    cpu0 = cpu_seconds(pid)
    _sleep_until(t0 + timedelta(seconds=seconds))
    cpu = cpu_seconds(pid) - cpu0
    rss = rss_mb(pid)
    time.sleep(3)
    project.stop()
    return {**_window(t0, seconds, expected=n * seconds), "cpu_s": round(cpu, 2), "rss_mb": round(rss, 1)}


def _window(t0: datetime, seconds: int, *, expected: int) -> dict:
    """The runs scheduled in the measured window: how many started, their lag, their statuses."""
    from scheduler_app.models import Execution

    rows = Execution.objects.filter(scheduled_for__gte=t0, scheduled_for__lt=t0 + timedelta(seconds=seconds))
    lags = [
        (s - p).total_seconds()
        for p, s in rows.filter(started_at__isnull=False).values_list("scheduled_for", "started_at")
    ]
    return {"done": len(lags), "expected": expected, "lag": percentiles(lags), "statuses": dict(_status_counts(rows))}


def _status_counts(rows):
    from django.db.models import Count

    return rows.values_list("status").annotate(n=Count("id")).order_by()


def burst(n: int) -> dict:
    project = Project()
    from scheduler_app import services
    from scheduler_app.models import Execution

    later = datetime.now(UTC) + timedelta(days=1)
    for i in range(n):
        services.job_create(name=f"once-{i}", task="tempora.noop", triggers=[{"kind": "once", "run_at": later}])
    # All due at one instant a few seconds after the scheduler is up (creating them took a while;
    # a first start loads them, a second more per thousand jobs).
    from scheduler_app.models import Job, Trigger

    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8 + n // 1000)
    Trigger.objects.update(run_at=at)
    Job.objects.update(next_run_at=at, updated_at=datetime.now(UTC))
    startup = project.start()
    _sleep_until(at + timedelta(seconds=5))
    project.stop()
    started = list(Execution.objects.filter(started_at__isnull=False).values_list("started_at", flat=True))
    return {
        "started": len(started),
        "last_s": round((max(started) - at).total_seconds(), 3) if started else None,
        "startup_s": round(startup, 2),
        "statuses": dict(_status_counts(Execution.objects.all())),
    }


def scale(n: int) -> dict:
    """n daily cron jobs defined: start-up time, memory and idle CPU of runscheduler.

    Started twice: a first start (an empty store: every job is written to it) and, after a
    SIGTERM, a restart (the store already in sync: next to nothing to write).
    """
    project = Project()
    from django.db import transaction

    from scheduler_app.models import Job, Trigger

    now = datetime.now(UTC)
    with transaction.atomic():
        jobs = []
        for i in range(n):
            hour, minute = divmod(i % 1440, 60)
            first = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            jobs.append(
                Job(
                    name=f"daily-{i}",
                    task="tempora.noop",
                    next_run_at=first if first > now else first + timedelta(days=1),
                )
            )
        Job.objects.bulk_create(jobs, batch_size=2000)
        Trigger.objects.bulk_create(
            [
                Trigger(job=job, kind="cron", cron_expression=f"{i % 60} {(i // 60) % 24} * * *")
                for i, job in enumerate(jobs)
            ],
            batch_size=2000,
        )
    startup = project.start()
    pid = project.process.pid
    time.sleep(5)
    cpu0, t = cpu_seconds(pid), time.monotonic()
    time.sleep(20)
    idle = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t) * 100
    rss = rss_mb(pid)
    peak = rss_mb(pid, peak=True)
    project.stop()
    restart = project.start()
    restart_peak = rss_mb(project.process.pid, peak=True)
    project.stop()
    return {
        "jobs": n,
        "startup_s": round(startup, 2),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "idle_cpu_percent": round(idle, 2),
        "restart_s": round(restart, 2),
        "restart_peak_rss_mb": round(restart_peak, 1),
    }


CELERY_BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/14")  # emptied by the scenario


def celery_fire_lag(n: int, seconds: int, *, workers: int = 2, concurrency: int = 4) -> dict:
    """The Celery executor end to end: n jobs every second on `workers` Celery workers (prefork,
    `concurrency` processes each), lag from the scheduled time to the body's start on a worker
    (the claim stamps started_at right before the body). PostgreSQL only: several processes
    write the outcomes."""
    import redis

    redis.Redis.from_url(CELERY_BROKER).flushdb()
    project = Project()
    project.env["CELERY_BROKER_URL"] = CELERY_BROKER
    from scheduler_app import services
    from scheduler_app.models import Job

    parked = datetime.now(UTC) + timedelta(days=1)
    for i in range(n):
        services.job_create(
            name=f"celery-noop-{i}",
            task="tempora.noop",
            executor="celery",
            start_at=parked,
            triggers=[{"kind": "interval", "interval_seconds": 1}],
        )
    pool = []
    for k in range(workers):
        log = open(Path(project.dir) / f"celery-{k}.log", "wb")
        pool.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "WARNING",
                    "-n",
                    f"bench-{k}@%h",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env=project.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    time.sleep(8)  # the workers' start-up (Django in every pool process)
    project.start()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    Job.objects.update(start_at=start, updated_at=datetime.now(UTC))
    t0 = start + timedelta(seconds=2)
    _sleep_until(t0 + timedelta(seconds=seconds))
    time.sleep(5)
    project.stop()
    for worker in pool:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in pool:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    return {**_window(t0, seconds, expected=n * seconds), "workers": f"{workers} x {concurrency} processes"}


def change(n: int) -> dict:
    """A change made through the services, until the running scheduler has applied it.

    n jobs firing every minute; 200 changes one after another (alternately pausing and resuming
    one of them, a random 0-0.5 s apart, so that they do not fall in step with the loop's poll),
    each timed from the service call until the job store says so (read every 2 ms). The commit
    wakes the scheduler (PostgreSQL: NOTIFY; SQLite: its socket in VAR_DIR/wake).
    """
    import random

    pace = random.Random(7)
    project = Project()
    from django_apscheduler.models import DjangoJob

    from scheduler_app import services
    from scheduler_app.models import Job

    for i in range(n):
        services.job_create(
            name=f"minutely-{i}", task="tempora.noop", triggers=[{"kind": "cron", "cron_expression": "* * * * *"}]
        )
    project.start()
    jobs = list(Job.objects.order_by("pk")[:100])
    waits = []
    for index, job in enumerate(jobs):
        for pause in (True, False):
            began = time.monotonic()
            (services.job_pause if pause else services.job_resume)(job=job)
            while DjangoJob.objects.filter(id=str(job.pk)).exists() == pause:
                if time.monotonic() - began > 10:
                    raise SystemExit(f"change {index} not applied within 10 s")
                time.sleep(0.002)
            waits.append(time.monotonic() - began)
            time.sleep(pace.uniform(0, 0.5))
    project.stop()
    return {"jobs": n, "changes": len(waits), "applied_after": percentiles(waits)}


def floor(*args: str) -> dict:
    done = subprocess.run([PYTHON, "-m", "bench.floor", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["fire-lag", "burst", "busy", "scale", "change", "celery", "all"])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--database", choices=DATABASES, action="append", help="sqlite, postgresql or both (repeat it); default both"
    )
    options = parser.parse_args()
    databases = options.database or list(DATABASES)
    everything = ["fire-lag", "burst", "busy", "scale", "change", "celery"]
    scenarios = everything if options.scenario == "all" else [options.scenario]
    for scenario in scenarios:
        if scenario == "fire-lag":
            for n in options.sizes if options.scenario != "all" and options.sizes else (100, 1000):
                base = floor("fire-lag", str(n), str(options.seconds))
                for database in databases:
                    ours = _isolated("fire-lag", n, options.seconds, database=database)
                    peer = _peer("fire-lag", n, options.seconds, database=database)
                    _print(f"fire-lag {n}", database, ours, base, peers={"django_apscheduler": peer})
        elif scenario == "burst":
            for n in options.sizes if options.scenario != "all" and options.sizes else (1000, 10_000):
                base = floor("burst", str(n))
                for database in databases:
                    _print(f"burst {n}", database, _isolated("burst", n, database=database), base)
        elif scenario == "busy":
            # A busy machine: a process spinning on one core beside the scheduler (and beside the
            # floor, measured in the same conditions).
            n = options.sizes[0] if options.scenario != "all" and options.sizes else 1000
            with _cpu_hog():
                base = floor("fire-lag", str(n), str(options.seconds))
                burst_base = floor("burst", str(n))
                for database in databases:
                    ours = _isolated("fire-lag", n, options.seconds, database=database)
                    _print(f"busy fire-lag {n}", database, ours, base)
                    _print(f"busy burst {n}", database, _isolated("burst", n, database=database), burst_base)
        elif scenario == "celery":
            for n in options.sizes if options.scenario != "all" and options.sizes else (100, 1000):
                _print(f"celery {n}", "postgresql", _isolated("celery", n, options.seconds, database="postgresql"))
        elif scenario == "change":
            for n in options.sizes if options.scenario != "all" and options.sizes else (1000,):
                for database in databases:
                    _print(f"change {n}", database, _isolated("change", n, database=database))
        else:
            for n in options.sizes if options.scenario != "all" and options.sizes else (10_000, 100_000):
                for database in databases:
                    _print(f"scale {n}", database, _isolated("scale", n, database=database))


@contextlib.contextmanager
def _cpu_hog():
    hog = subprocess.Popen([PYTHON, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def _print(scenario: str, database: str, ours: dict, floor: dict | None = None, peers: dict | None = None) -> None:
    line = {"scenario": scenario, "database": database, "tempora": ours}
    if floor is not None:
        line["apscheduler_in_memory"] = floor
    line.update(peers or {})
    print(json.dumps(line), flush=True)


def _peer(kind: str, n: int, seconds: int, *, database: str) -> dict:
    """django-apscheduler's DjangoJobStore under plain APScheduler (bench/peers.py), its own process."""
    done = subprocess.run(
        [PYTHON, "-m", "bench.peers", kind, str(n), str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_DATABASE": database},
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _isolated(kind: str, n: int, seconds: int | None = None, *, database: str = "sqlite") -> dict:
    """Each scenario in its own process: Django is set up once per process, per database."""
    args = [PYTHON, "-m", "bench.run", "--one", kind, str(n), str(seconds or 0)]
    done = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "BENCH_DATABASE": database}
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        kind, n, seconds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        result = {
            "fire-lag": lambda: fire_lag(n, seconds),
            "burst": lambda: burst(n),
            "scale": lambda: scale(n),
            "change": lambda: change(n),
            "celery": lambda: celery_fire_lag(n, seconds),
        }[kind]()
        print(json.dumps(result))
    else:
        main()
