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


def fire_lag(n: int, seconds: int) -> dict:
    from bench.run import Project

    Project()  # a fresh database, migrated; Django set up in this process
    from django_apscheduler.jobstores import DjangoJobStore
    from django_apscheduler.models import DjangoJobExecution

    from bench import floor

    result = floor.fire_lag(n, seconds, jobstores={"default": DjangoJobStore()})
    return {**result, "execution_rows": DjangoJobExecution.objects.count()}


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    if "--database" in sys.argv:
        os.environ["BENCH_DATABASE"] = sys.argv[sys.argv.index("--database") + 1]
        args = [arg for arg in args if arg != os.environ["BENCH_DATABASE"]]
    kind, n, seconds = args[0], int(args[1]), int(args[2])
    print(json.dumps({"fire-lag": fire_lag}[kind](n, seconds)))
