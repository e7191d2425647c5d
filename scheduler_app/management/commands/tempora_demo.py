"""`manage.py tempora_demo`: the demo's first-run setup (`make run`), an `admin` superuser and
a few demo jobs. A host project never needs it: it creates an account with full rights.

Safe to run on every start: it only creates what is missing.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from scheduler_app import services
from scheduler_app.models import Job

DEMO_JOBS = [
    {
        "name": "demo-heartbeat",
        "description": "Says hello every minute: watch its executions appear.",
        "task": "tempora.sample_job",
        "kwargs": {"message": "Tempora is running"},
        "triggers": [{"kind": "interval", "interval_seconds": 60}],
        "tags": ["demo"],
    },
    {
        "name": "demo-morning-summary",
        "description": "Summarises a few records every weekday at 09:00 in London.",
        "task": "tempora.process_data",
        "kwargs": {"records": [{"amount": 12}, {"amount": 30}, {"amount": 7}], "field": "amount"},
        "timezone": "Europe/London",
        "triggers": [{"kind": "weekly", "days": [0, 1, 2, 3, 4], "at": "09:00"}],
        "tags": ["demo", "report"],
        "group": "reports",
    },
    {
        "name": "demo-nightly-backup",
        "description": "Backs up the database at 02:30 every night (paused: resume it to try).",
        "task": "tempora.backup_database",
        "triggers": [{"kind": "cron", "cron_expression": "30 2 * * *"}],
        "max_retries": 2,
        "paused": True,
        "tags": ["demo", "maintenance"],
        "group": "maintenance",
    },
]


class Command(BaseCommand):
    help = (
        "For the demo only: create the 'admin' superuser (password from TEMPORA_ADMIN_PASSWORD, else generated "
        "and shown once) and the demo jobs, on first run. Idempotent. Not for a host project."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="Do not create the demo jobs.")

    @transaction.atomic  # the account and the demo jobs appear together, or not at all
    def handle(self, *args, no_demo: bool, **options):
        user_model = get_user_model()
        admin = user_model.objects.filter(username="admin").first()
        if admin is None:
            given = os.environ.get("TEMPORA_ADMIN_PASSWORD")
            if given is not None and not given.strip():
                # Set but empty is a mistake, not "generate one": the password would be one nobody saw.
                raise CommandError(
                    "TEMPORA_ADMIN_PASSWORD is set but empty: give the admin's password, or unset it to have "
                    "one generated and shown once."
                )
            password = given or secrets.token_urlsafe(12)
            admin = user_model.objects.create_superuser("admin", "admin@localhost", password)
            if given is not None:
                self.stdout.write("Created the 'admin' account with the password from TEMPORA_ADMIN_PASSWORD.")
            else:
                # Printed once: it is not stored anywhere in clear.
                self.stdout.write(self.style.WARNING(f"Created the 'admin' account. Password (shown once): {password}"))
            if not no_demo and not Job.objects.exists():
                self._load_demo(admin)

    def _load_demo(self, owner) -> None:
        for definition in DEMO_JOBS:
            services.job_create(owner=owner, **definition)
        self.stdout.write(f"Loaded {len(DEMO_JOBS)} demo jobs.")
