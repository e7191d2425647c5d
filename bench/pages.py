"""Page and API timings at a month's history, served as in production (gunicorn, DEBUG off).

    .venv/bin/python -m bench.pages --jobs 10000 --executions 100000 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tempora_bench .venv/bin/python -m bench.pages ...

For each history size: a fresh database (a SQLite file in a temporary directory, or the
PostgreSQL database DATABASE_URL names, dropped and created again), filled by bench.history,
a gunicorn serving config.wsgi, and each page requested warm (after two unmeasured requests)
over one kept-alive connection, as a superuser and as an ordinary user who owns a fifth of the
jobs. Prints a Markdown table of median and p95 milliseconds per page and size.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import percentiles

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 20

PAGES = [
    "/",
    "/jobs/",
    # The state filter (JobQuerySet.in_state); the console names it `status`, the API `state`.
    "/jobs/?status=scheduled",
    "/jobs/{job}/",
    "/executions/",
    "/executions/?status=failed",
    "/executions/?q=malformed",
    "/dead-letters/",
    "/calendar/",
    "/api/jobs/",
    "/api/jobs/?state=scheduled",
    "/api/executions/",
    "/api/executions/?status=failed",
    "/api/executions/?search=malformed",
    "/api/stats/",
    "/metrics",
]
# Pages an ordinary user may not see (a 403 by design).
SUPERUSER_ONLY = {"/metrics"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(workdir: str, jobs: int, executions: int) -> tuple[dict[str, str], dict[str, str]]:
    """Fill a fresh database; answer the environment to serve it and a session cookie per role."""
    env = {
        **os.environ,
        "TEMPORA_VAR_DIR": workdir,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    url = os.environ.get("DATABASE_URL")
    if url and url.startswith("postgres"):
        name = url.rsplit("/", 1)[1]
        admin = url.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(
            ["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}"', "-c", f'CREATE DATABASE "{name}"'],
            check=True,
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command; call_command('migrate', verbosity=0)\n"
        "call_command('collectstatic', interactive=False, verbosity=0)\n"
        "from bench.history import build\n"
        f"print('built', build(jobs={jobs}, executions={executions}), flush=True)\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "User = get_user_model()\n"
        "admin = User.objects.create_superuser('bench-admin', 'a@example.com', 'x')\n"
        "owner = User.objects.get(username='bench-user-0')\n"
        "for role, user in (('superuser', admin), ('owner', owner)):\n"
        "    session = SessionStore()\n"
        "    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: 'django.contrib.auth.backends.ModelBackend',\n"
        "                    HASH_SESSION_KEY: user.get_session_auth_hash()})\n"
        "    session.create()\n"
        "    print('session', role, session.session_key, flush=True)\n"
        "from scheduler_app.models import Job\n"
        "print('job', Job.objects.filter(owner=owner).order_by('pk').values_list('pk', flat=True).first(), flush=True)\n"
    )
    began = time.monotonic()
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    print(f"history of {jobs} jobs, {executions} executions built in {time.monotonic() - began:.0f} s", file=sys.stderr)
    sessions, job = {}, ""
    for line in output.splitlines():
        words = line.split()
        if words[0] == "session":
            sessions[words[1]] = words[2]
        elif words[0] == "job":
            job = words[1]
    env["BENCH_JOB"] = job
    return env, sessions


def time_pages(env: dict[str, str], sessions: dict[str, str], requests: int) -> dict[tuple[str, str], list[float]]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "1",
            "--keep-alive",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(env["TEMPORA_VAR_DIR"]) / "gunicorn.log", "w"),
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        results = {}
        for role, key in sessions.items():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            headers = {"Cookie": f"sessionid={key}", "Host": "127.0.0.1"}
            for page in PAGES:
                if role != "superuser" and page in SUPERUSER_ONLY:
                    continue
                path = page.format(job=env["BENCH_JOB"])
                samples = []
                for attempt in range(2 + requests):
                    began = time.perf_counter()
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status != 200:
                        log = (Path(env["TEMPORA_VAR_DIR"]) / "gunicorn.log").read_text()[-3000:]
                        raise SystemExit(f"{path} as {role}: {response.status}\n{log}")
                    if attempt >= 2:
                        samples.append(time.perf_counter() - began)
                results[(role, page)] = samples
            connection.close()
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=REQUESTS, help="timed requests per page (after two warm-ups)")
    parser.add_argument("executions", type=int, nargs="+", help="history sizes, e.g. 100000 1000000")
    options = parser.parse_args()
    table = {}
    for executions in options.executions:
        with tempfile.TemporaryDirectory(prefix="tempora-pages-") as workdir:
            env, sessions = prepare(workdir, options.jobs, executions)
            for key, samples in time_pages(env, sessions, options.requests).items():
                table.setdefault(key, {})[executions] = percentiles(samples)
    sizes = options.executions
    print("| role | page | " + " | ".join(f"{size:,} runs: median / p95 ms" for size in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for (role, page), by_size in table.items():
        cells = [
            f"{by_size[size]['p50']:.0f} / {by_size[size]['p95']:.0f}" if size in by_size else "" for size in sizes
        ]
        print(f"| {role} | `{page}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
