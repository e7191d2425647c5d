"""Jobs defined in code (registry.schedule) written to the database."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from scheduler_app import triggers
from scheduler_app.models import Job
from scheduler_app.registry import code_jobs
from scheduler_app.services.base import _now
from scheduler_app.services.jobs import job_create, job_update

logger = logging.getLogger(__name__)


# Code-defined jobs ----------------------------------------------------------------------


@transaction.atomic
def code_jobs_sync(*, definitions: dict | None = None, now: datetime | None = None) -> dict[str, int]:
    """Write the schedules defined in code (registry.schedule) to the database.

    New ones are created; changed ones follow the code (the paused flag stays the user's);
    code-defined jobs that vanished from the code are paused and flagged, never deleted. A
    definition the services refuse (a cron that never fires, a timeout above the maximum) is
    logged and, for a job already stored, written to its import_error while its last valid
    definition keeps running: one bad definition never stops the scheduler taking the lead.
    """
    definitions = code_jobs if definitions is None else definitions
    now = _now(now)
    counts = {"created": 0, "updated": 0, "orphaned": 0, "invalid": 0}
    existing = {job.name: job for job in Job.objects.filter(code_defined=True).prefetch_related("triggers")}
    for name, definition in definitions.items():
        fields = {
            "task": definition.task,
            "timezone": definition.timezone,
            "timeout": definition.timeout,
            "max_retries": definition.max_retries,
            "catch_up": definition.catch_up,
            "lost_policy": definition.lost_policy,
            "description": definition.description,
            "args": definition.args,
            "kwargs": definition.kwargs,
        }
        job = existing.pop(name, None)
        try:
            with transaction.atomic():
                if job is None:
                    job_create(name=name, triggers=[definition.trigger], code_defined=True, now=now, **fields)
                    counts["created"] += 1
                elif _code_job_differs(job, fields, definition.trigger):
                    job_update(job=job, triggers=[definition.trigger], allow_code_defined=True, now=now, **fields)
                    Job.objects.filter(pk=job.pk).update(import_error="")
                    counts["updated"] += 1
        except (ValidationError, triggers.ScheduleError) as exc:
            counts["invalid"] += 1
            reason = " ".join(ValidationError(exc.message_dict if hasattr(exc, "message_dict") else str(exc)).messages)
            logger.error("code-defined job %s is not valid and was not saved: %s", name, reason)
            if job is not None:
                Job.objects.filter(pk=job.pk).update(
                    import_error=f"The definition in code is not valid ({reason}); the last valid one is kept."
                )
    for job in existing.values():
        if "no longer defined" not in job.import_error:
            Job.objects.filter(pk=job.pk).update(
                paused=True, import_error="This job is no longer defined in code; it is paused.", updated_at=now
            )
            counts["orphaned"] += 1
    return counts


def _code_job_differs(job: Job, fields: dict[str, Any], trigger: dict) -> bool:
    if any(getattr(job, key) != value for key, value in fields.items()) or job.import_error:
        return True
    current = list(job.triggers.all())
    if len(current) != 1:
        return True
    row = current[0]
    if trigger["kind"] == "once":
        # A one-off from a delay is planned once; re-planning on every start would never fire it.
        if row.kind != "once" or trigger.get("delay_seconds") is not None:
            return row.kind != "once"
        # One at a fixed moment (`schedule.at("2026-12-25 00:00:00")`) follows the code when
        # the moment changes; it used to keep the first moment ever synced.
        return row.run_at != triggers.compile_trigger(trigger, job.zone, timezone.now())["run_at"]
    compiled = triggers.compile_trigger(trigger, job.zone, timezone.now())
    return any(getattr(row, key) != compiled[key] for key in ("kind", "cron_expression", "interval_seconds", "preset"))
