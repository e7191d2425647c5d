"""Real Celery workers for the process tests, on a Redis database the test module names.

Each worker leads a session of its own, so `kill_whole()` is `kill -9` of the main process
and its pool processes together, as when a machine or container dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.process.harness import ROOT, Schedulers


class CeleryWorker:
    def __init__(self, popen: subprocess.Popen, log_path: Path) -> None:
        self.popen = popen
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill_whole(self) -> None:
        """`kill -9` of the worker: main process and pool processes at once."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # pool processes a warm shutdown left behind
        except ProcessLookupError:
            pass
        self.popen.wait(10)


class CeleryWorkers:
    """Starts workers for one test on `broker`; stops them at its end. With `empty`, the broker's
    Redis database is emptied first and last: only for a database no one else uses."""

    def __init__(self, schedulers: Schedulers, broker: str, *, empty: bool = False) -> None:
        self.schedulers = schedulers
        self.broker = broker
        self.empty = empty
        self.workers: list[CeleryWorker] = []
        if empty:
            redis.Redis.from_url(broker).flushdb()  # no message left by an earlier test

    def start(self, *, concurrency: int = 2, env: dict[str, str] | None = None, ready: bool = True) -> CeleryWorker:
        label = f"celery-worker-{len(self.workers) + 1}"
        log_path = self.schedulers.var_dir / f"{label}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                    "-n",
                    f"{label}@%h",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                env={**self.schedulers.env, "CELERY_BROKER_URL": self.broker, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = CeleryWorker(popen, log_path)
        self.workers.append(worker)
        if ready:
            self.wait_log(worker, " ready.", timeout=60)
        return worker

    def wait_log(self, worker: CeleryWorker, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in worker.log():
            if worker.popen.poll() is not None:
                pytest.fail(f"the Celery worker exited with {worker.popen.returncode}:\n{worker.log()[-4000:]}")
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {text!r} in the worker's log")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()
            print(f"===== {worker.log_path.name} =====\n{worker.log()[-4000:]}")
        if self.empty:
            redis.Redis.from_url(self.broker).flushdb()
