"""`manage.py runscheduler`: fire every job on time, exactly once, and record every run.

Run one per machine, or several against one database: one leads, the others stand by and
take over within the lease (TEMPORA['LEASE_SECONDS']) if it dies.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from django.core.management.base import BaseCommand, CommandError

from scheduler_app.checks import TAG
from scheduler_app.engine.loop import Engine

logger = logging.getLogger("scheduler_app.engine")


class Command(BaseCommand):
    help = (
        "Run the Tempora scheduler until SIGTERM or SIGINT: it fires every due job once and records each run. "
        "Several may run against one database: one leads, the others stand by and take over within the lease "
        "(TEMPORA['LEASE_SECONDS']). Tempora's system checks run first; a bad setting stops it with their message."
    )
    # Only Tempora's checks: all of them would import every URL module (the API, the console),
    # seconds of start-up a scheduler does not need. `manage.py check` still runs them all.
    requires_system_checks = [TAG]

    def add_arguments(self, parser):
        parser.add_argument(
            "--drain",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT, wait this long for running jobs before marking them lost (default 30).",
        )
        parser.add_argument(
            "--max-workers",
            type=int,
            default=None,
            metavar="N",
            help="Threads running jobs (default: the runtime setting, else TEMPORA['MAX_WORKERS']).",
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=0.5,
            metavar="SECONDS",
            help=(
                "How often the loop looks for changed jobs, waiting runs and cancels when no notification "
                "wakes it (PostgreSQL notifies at once; default 0.5, at most 60)."
            ),
        )

    def handle(self, *args, drain: float, max_workers: int | None, poll: float, **options):
        if drain < 0:
            raise CommandError("--drain must be 0 or more seconds.", returncode=2)
        if max_workers is not None and max_workers < 1:
            raise CommandError("--max-workers must be at least 1.", returncode=2)
        if not 0.01 <= poll <= 60:
            raise CommandError("--poll must be between 0.01 and 60 seconds.", returncode=2)
        engine = Engine(max_workers=max_workers, drain_seconds=drain, poll_seconds=poll)

        def on_signal(signum, frame):
            engine.stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        left = engine.run()
        if left:
            # Threads running jobs cannot be interrupted; their rows are already marked
            # lost, so leave without waiting for them.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
