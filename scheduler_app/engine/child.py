"""The body of a job's child process (see runner.ChildRun).

Imported by the forkserver before any fork, so Django is set up once, with no database
connection open, and every child starts ready.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()


def run_child(sender, task: str, args: list, kwargs: dict, limit: int, module: str = "") -> None:
    # A session of its own: on timeout the parent kills the whole group, grandchildren included.
    os.setsid()
    from scheduler_app.engine.runner import call_task

    payload = call_task(task, args, kwargs, limit, module)
    try:
        sender.send(payload)
    finally:
        sender.close()
        from django.db import connections

        connections.close_all()
