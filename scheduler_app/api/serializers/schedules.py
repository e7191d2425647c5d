"""Checking schedules before saving them: cron validation, presets, and previews."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app.api.fields import BoundedDateTimeField
from scheduler_app.api.serializers.jobs import NextRunSerializer
from scheduler_app.api.serializers.triggers import TriggerSerializer
from scheduler_app.api.strict import StrictSerializer
from scheduler_app.models import MAX_TRIGGERS

MAX_PREVIEW = 100


class CronValidateRequestSerializer(StrictSerializer):
    expression = serializers.CharField(max_length=200, help_text="e.g. '0 9 * * MON-FRI'", trim_whitespace=False)
    timezone = serializers.CharField(max_length=64, default="UTC", help_text="An IANA zone, e.g. 'Europe/Berlin'.")
    count = serializers.IntegerField(default=5, min_value=1, max_value=MAX_PREVIEW, help_text="How many next runs.")


class CronValidateResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    expression = serializers.CharField()
    timezone = serializers.CharField()
    field = serializers.CharField(
        allow_null=True, help_text="When invalid: which input is wrong (cron_expression or timezone)."
    )
    error = serializers.CharField(allow_null=True, help_text="When invalid: why.")
    description = serializers.CharField(allow_null=True, help_text="The expression in words.")
    fixed_time = serializers.BooleanField(
        allow_null=True, help_text="Minute and hour are both fixed: DST gaps and repeats fire once (cronie's rule)."
    )
    next_runs = NextRunSerializer(many=True)


class CronPresetSerializer(serializers.Serializer):
    name = serializers.CharField()
    expression = serializers.CharField()
    description = serializers.CharField()


class PreviewRequestSerializer(StrictSerializer):
    """Any trigger specs (the shapes a job's `triggers` take) → their description and next runs."""

    triggers = TriggerSerializer(many=True, min_length=1, max_length=MAX_TRIGGERS)
    timezone = serializers.CharField(max_length=64, default="UTC", help_text="An IANA zone, e.g. 'Europe/Berlin'.")
    count = serializers.IntegerField(default=10, min_value=1, max_value=MAX_PREVIEW)
    after = BoundedDateTimeField(required=False, help_text="Show runs after this instant (default: now).")
    start_at = BoundedDateTimeField(required=False, allow_null=True, help_text="The job's window start, if any.")
    end_at = BoundedDateTimeField(required=False, allow_null=True, help_text="The job's window end, if any.")


class PreviewTriggerSerializer(serializers.Serializer):
    kind = serializers.CharField()
    cron_expression = serializers.CharField(allow_blank=True)
    preset = serializers.CharField(allow_blank=True)
    description = serializers.CharField()


class PreviewResponseSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    description = serializers.CharField(help_text="Every trigger in words, joined by '; '.")
    triggers = PreviewTriggerSerializer(many=True)
    next_runs = NextRunSerializer(many=True)


class TaskParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["positional", "keyword", "var_positional", "var_keyword"])
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True)
    annotation = serializers.CharField(allow_blank=True)


class TaskSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Use it as a job's `task`, e.g. 'tempora.sample_job'.")
    description = serializers.CharField(allow_blank=True)
    parameters = TaskParameterSerializer(many=True)


class GroupSerializer(serializers.Serializer):
    name = serializers.CharField()
    jobs = serializers.IntegerField()
    active = serializers.IntegerField()
    paused = serializers.IntegerField()
    runs = serializers.IntegerField(help_text="Runs of its jobs so far.")
    failures = serializers.IntegerField(help_text="Failed runs of its jobs so far.")
    next_run_at = serializers.DateTimeField(allow_null=True)


class GroupChangeSerializer(serializers.Serializer):
    group = serializers.CharField()
    paused = serializers.IntegerField(required=False, help_text="Jobs paused now.")
    resumed = serializers.IntegerField(required=False, help_text="Jobs resumed now.")
    cancelled = serializers.IntegerField(required=False, help_text="Jobs deleted (their history stays).")
