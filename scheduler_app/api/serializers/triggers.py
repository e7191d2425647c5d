"""Triggers as the API reads and writes them: the input shapes of triggers.compile_trigger.

A job's `triggers` list is written whole (it replaces the job's triggers) and each item is
validated by the same code that computes fire times, so what the API accepts is exactly
what the scheduler can run.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduler_app import triggers, validators
from scheduler_app.api.fields import check_instant
from scheduler_app.api.strict import StrictSerializer
from scheduler_app.models import Calendar, Job, Trigger

INTERVAL = validators.field_bounds(Trigger, "interval_seconds")

TRIGGER_HELP = """One trigger; a job fires at the union of its triggers. Shapes by `kind`:
- `{"kind": "cron", "cron_expression": "0 9 * * MON-FRI"}` (Vixie cron: 0 and 7 are Sunday; an optional sixth field for seconds goes first)
- `{"kind": "interval", "interval_seconds": 300}` (fixed elapsed seconds; ignores DST)
- `{"kind": "once", "run_at": "2026-12-25T00:00:00Z"}` (a time without offset is local to the job's zone)
- `{"kind": "once", "delay_seconds": 60}`
- `{"kind": "daily", "at": "09:00"}`
- `{"kind": "weekly", "days": [0, 4], "at": "10:00"}` (0 = Monday … 6 = Sunday)
- `{"kind": "hourly", "minute": 30}` (or `"at": ":30"`)
Every shape also takes `jitter_seconds` and `calendar` (an exclusion calendar's id). Presets are stored as cron and keep their name in `preset`."""


@extend_schema_field(OpenApiTypes.DATETIME)
class RunAtField(serializers.Field):
    """An instant for a one-off run. Input: ISO 8601; without an offset it is local to the job."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip():
            raise serializers.ValidationError("Enter a date and time like '2026-12-25T00:00:00Z'.")
        text = data.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise serializers.ValidationError(f"{text!r} is not a date and time like '2026-12-25T00:00:00Z'.") from None
        probe = parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))
        try:
            check_instant(probe)
        except OverflowError:
            raise serializers.ValidationError("Pick an instant between 1970 and 2999.") from None
        return text

    def to_representation(self, value):
        return triggers.format_utc(value) if value else None


@extend_schema_field(OpenApiTypes.INT)
class CalendarField(serializers.PrimaryKeyRelatedField):
    """An exclusion calendar the user can see (their own or a shared one)."""

    def get_queryset(self):
        request = self.context.get("request")
        return Calendar.objects.visible_to(request.user) if request else Calendar.objects.all()


class TriggerSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(
        choices=["cron", "interval", "once", "daily", "weekly", "hourly"],
        help_text="cron, interval or once; or a preset (daily, weekly, hourly) stored as cron. Reads show the stored kind.",
    )
    cron_expression = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="For kind cron, e.g. '0 9 * * MON-FRI'."
    )
    interval_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        **INTERVAL,
        help_text="For kind interval: seconds between runs, above 0, e.g. 300.",
    )
    run_at = RunAtField(
        required=False,
        allow_null=True,
        help_text="For kind once: when to run, e.g. '2026-12-25T00:00:00Z' (no offset: the job's local time).",
    )
    delay_seconds = serializers.IntegerField(
        write_only=True,
        required=False,
        **INTERVAL,
        help_text="For kind once: run this many seconds from now instead of at run_at.",
    )
    at = serializers.CharField(
        write_only=True,
        required=False,
        max_length=5,
        help_text="For daily and weekly: the local time as HH:MM, e.g. '09:00'. For hourly: ':MM', e.g. ':30'.",
    )
    days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        write_only=True,
        required=False,
        min_length=1,
        max_length=7,
        help_text="For weekly: weekdays, 0 = Monday … 6 = Sunday, e.g. [0, 4].",
    )
    minute = serializers.IntegerField(
        write_only=True, required=False, min_value=0, max_value=59, help_text="For hourly: the minute past the hour."
    )
    preset = serializers.ChoiceField(
        choices=["", "daily", "weekly", "hourly"],
        required=False,
        allow_blank=True,
        help_text="How a cron trigger was entered (daily, weekly, hourly), kept for its description.",
    )
    jitter_seconds = serializers.IntegerField(
        required=False,
        default=0,
        **validators.field_bounds(Trigger, "jitter_seconds"),
        help_text="Delay each run by a stable pseudo-random 0..N seconds, e.g. 30.",
    )
    calendar = CalendarField(
        required=False, allow_null=True, help_text="An exclusion calendar's id: no run on its dates."
    )
    description = serializers.SerializerMethodField(help_text="The trigger in words, e.g. 'Every day at 09:00 (UTC)'.")

    def get_description(self, obj) -> str:
        return obj.describe() if isinstance(obj, Trigger) else ""


TriggerSerializer.__doc__ = TRIGGER_HELP


def compile_definitions(definitions: list[dict], zone: ZoneInfo, now: datetime) -> list[dict]:
    """For a preview (nothing is saved, so no service checks them): trigger definitions compiled
    by triggers.compile_trigger. Errors are keyed as the job services key theirs
    (`triggers.1.cron_expression`), so the API answers them in the same nested shape."""
    errors: dict[str, list] = {}
    compiled: list[dict] = []
    for index, data in enumerate(definitions):
        try:
            fields = triggers.compile_trigger(data, zone, now)
            check_instant(fields["run_at"], "run_at")
            compiled.append(fields)
        except triggers.ScheduleError as exc:
            errors[f"triggers.{index}.{exc.field}"] = [exc.message]
        except serializers.ValidationError as exc:
            errors.update({f"triggers.{index}.{key}": value for key, value in exc.detail.items()})
        except OverflowError:
            errors[f"triggers.{index}.run_at"] = ["Pick an instant between 1970 and 2999."]
    if errors:
        raise ValidationError(errors)
    return compiled


def specs_for_preview(
    definitions: list[dict], compiled: list[dict], *, now: datetime, start_at=None
) -> list[triggers.TriggerSpec]:
    """TriggerSpecs for triggers that are not saved yet, from unsaved rows as the console's
    preview builds them: intervals count from start_at, else as if saved now."""
    job = Job(start_at=start_at)
    columns = ("kind", "cron_expression", "interval_seconds", "run_at", "preset", "jitter_seconds")
    return [
        Trigger(
            job=job, created_at=now, calendar=data.get("calendar"), **{name: fields[name] for name in columns}
        ).spec()
        for data, fields in zip(definitions, compiled, strict=True)
    ]
