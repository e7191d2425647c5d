"""FastScheduler's request and response bodies, for validation and for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app import validators
from scheduler_app.api.fields import SafeJSONField
from scheduler_app.api.strict import StrictSerializer
from scheduler_app.models import Job

RETRIES = validators.field_bounds(Job, "max_retries")


class CompatJobCreateSerializer(StrictSerializer):
    func_name = serializers.CharField(
        max_length=200, help_text="Function name (registered as a task under func_module.func_name)."
    )
    func_module = serializers.CharField(
        max_length=200, allow_blank=True, help_text='Function module, e.g. "dev.test_app".'
    )
    job_name = serializers.CharField(
        max_length=200, required=False, allow_null=True, help_text="Human-friendly job name (unique)."
    )
    schedule_type = serializers.CharField(max_length=20, help_text="interval, daily, weekly, hourly, cron or once.")
    schedule_config = SafeJSONField(help_text='e.g. {"interval": 30, "unit": "seconds"} or {"time": "02:00"}.')
    max_retries = serializers.IntegerField(default=3, **RETRIES)
    timeout = serializers.FloatField(
        required=False, allow_null=True, min_value=0.001, max_value=30 * 86_400, help_text="Seconds (rounded up)."
    )
    timezone = serializers.CharField(max_length=64, required=False, allow_null=True, help_text='e.g. "Asia/Shanghai".')
    enabled = serializers.BooleanField(default=True)
    args = SafeJSONField(required=False, help_text="Function arguments (a list).")
    kwargs = SafeJSONField(required=False, help_text="Function keyword arguments (an object).")
    group = serializers.CharField(max_length=100, default="default")


class CompatJobUpdateSerializer(StrictSerializer):
    """All optional; null means unchanged, as in FastScheduler."""

    schedule_config = SafeJSONField(required=False, allow_null=True)
    max_retries = serializers.IntegerField(required=False, allow_null=True, **RETRIES)
    timeout = serializers.FloatField(required=False, allow_null=True, min_value=0.001, max_value=30 * 86_400)
    timezone = serializers.CharField(max_length=64, required=False, allow_null=True)
    enabled = serializers.BooleanField(required=False, allow_null=True)
    schedule_type = serializers.CharField(
        max_length=20, required=False, allow_null=True, help_text="An extension: change the schedule's type."
    )


class MessageSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class CreatedSerializer(MessageSerializer):
    job_id = serializers.CharField()


class RunSerializer(MessageSerializer):
    execution_id = serializers.IntegerField(help_text="An extension: the Tempora execution that was queued.")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    job_id = serializers.CharField()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class CompatJobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    func_name = serializers.CharField()
    func_module = serializers.CharField(allow_blank=True)
    job_name = serializers.CharField()
    group = serializers.CharField()
    status = serializers.CharField(help_text="scheduled, running, paused, completed or failed.")
    schedule = serializers.CharField()
    next_run = serializers.CharField(allow_null=True, help_text="YYYY-MM-DD HH:MM:SS, server time.")
    next_run_in = serializers.FloatField(allow_null=True)
    run_count = serializers.IntegerField()
    retry_count = serializers.IntegerField()
    paused = serializers.BooleanField()
    last_run = serializers.CharField(allow_null=True)


class CompatJobDetailSerializer(CompatJobSerializer):
    timeout = serializers.FloatField(allow_null=True)
    schedule_type = serializers.CharField(allow_null=True)
    schedule_config = serializers.DictField()
    max_retries = serializers.IntegerField()
    timezone = serializers.CharField()
    enabled = serializers.BooleanField()
    args = serializers.ListField()
    kwargs = serializers.DictField()


class JobsSerializer(serializers.Serializer):
    jobs = CompatJobSerializer(many=True)


class GroupJobsSerializer(JobsSerializer):
    group = serializers.CharField()


class JobEnvelopeSerializer(serializers.Serializer):
    job = CompatJobDetailSerializer()


class HistoryEntrySerializer(serializers.Serializer):
    job_id = serializers.CharField(allow_null=True)
    func_name = serializers.CharField()
    status = serializers.CharField()
    timestamp = serializers.FloatField()
    error = serializers.CharField(allow_null=True)
    run_count = serializers.IntegerField()
    retry_count = serializers.IntegerField()
    execution_time = serializers.FloatField(allow_null=True)
    timestamp_readable = serializers.CharField()
    execution_id = serializers.IntegerField()


class HistorySerializer(serializers.Serializer):
    history = HistoryEntrySerializer(many=True)


class DeadLettersSerializer(serializers.Serializer):
    dead_letters = HistoryEntrySerializer(many=True)
    total = serializers.IntegerField()


class ClearedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    cleared = serializers.IntegerField()


class GroupsSerializer(serializers.Serializer):
    groups = serializers.ListField(child=serializers.CharField())


class GroupPausedSerializer(MessageSerializer):
    paused = serializers.IntegerField()


class GroupResumedSerializer(MessageSerializer):
    resumed = serializers.IntegerField()


class GroupCancelledSerializer(MessageSerializer):
    cancelled = serializers.IntegerField()


class JobStatisticsSerializer(serializers.Serializer):
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    total_runs = serializers.IntegerField()


class StatisticsSerializer(serializers.Serializer):
    total_runs = serializers.IntegerField()
    total_failures = serializers.IntegerField()
    total_retries = serializers.IntegerField()
    start_time = serializers.FloatField(allow_null=True)
    uptime_seconds = serializers.FloatField(required=False)
    uptime_readable = serializers.CharField(required=False)
    per_job = serializers.DictField(child=JobStatisticsSerializer())
    active_jobs = serializers.IntegerField()


class StatusSerializer(serializers.Serializer):
    running = serializers.BooleanField()
    statistics = StatisticsSerializer()


class JobsQuerySerializer(serializers.Serializer):
    group = serializers.CharField(required=False, max_length=100)


class LimitQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=10_000)


class HistoryQuerySerializer(LimitQuerySerializer):
    func_name = serializers.CharField(required=False, max_length=200)
