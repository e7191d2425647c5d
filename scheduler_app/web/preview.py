"""The live preview beside the job form: each trigger in words and the next runs.

Everything comes from triggers.py through unsaved model rows (Trigger.spec(), Job.window),
so the preview, `nextruns` and the scheduler compute fire times along one code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduler_app import triggers
from scheduler_app.models import SCHEDULE_FAILURES, Job, Trigger


@dataclass
class Preview:
    zone: ZoneInfo
    viewer_zone: ZoneInfo
    descriptions: list[tuple[int, str]] = field(default_factory=list)  # (trigger number, words)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (trigger number, message)
    runs: list[datetime] = field(default_factory=list)
    zone_error: str = ""

    @property
    def same_zone(self) -> bool:
        return self.zone.key == self.viewer_zone.key


def build(
    *, job_form, trigger_forms: list, job_pk: int | None, now: datetime, viewer_zone: ZoneInfo, count: int = 5
) -> Preview:
    """Preview what a (possibly invalid) job form would do; errors are reported, never raised."""
    data = job_form.cleaned_data if hasattr(job_form, "cleaned_data") else {}
    zone_name = (job_form.data.get(job_form.add_prefix("timezone")) or "UTC").strip()
    try:
        zone = triggers.validate_timezone(zone_name)
        zone_error = ""
    except triggers.ScheduleError as exc:
        zone, zone_error = ZoneInfo("UTC"), exc.message
    job = Job(
        pk=job_pk,
        timezone=zone.key,
        start_at=data.get("start_at"),
        end_at=data.get("end_at"),
        max_runs=data.get("max_runs"),
    )
    result = Preview(zone=zone, viewer_zone=viewer_zone, zone_error=zone_error)
    specs = []
    for number, form in enumerate(trigger_forms, start=1):
        form.zone = zone
        if not hasattr(form, "cleaned_data"):
            continue
        try:
            fields = form.compiled()
        except triggers.ScheduleError as exc:
            result.errors.append((number, exc.message))
            continue
        except (KeyError, TypeError, ValueError):
            continue  # the form's own errors say what is missing
        row = Trigger(job=job, created_at=now, **fields)
        spec = row.spec()
        specs.append(spec)
        result.descriptions.append((number, triggers.describe(spec, zone)))
    if specs:
        try:
            window = job.window if job.start_at is None or job.end_at is None or job.end_at > job.start_at else None
            if window is not None:
                result.runs = triggers.next_runs(specs, zone, now, count, window)
        except SCHEDULE_FAILURES as exc:
            result.errors.append((0, str(exc)))
    return result
