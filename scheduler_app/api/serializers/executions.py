"""Executions (one run attempt each) and dead letters (failed runs with no retries left)."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app.models import Execution


class ExecutionSerializer(serializers.ModelSerializer):
    """One run attempt. Lists leave out the bulky result, output and traceback."""

    duration_seconds = serializers.SerializerMethodField(help_text="finished_at - started_at, once it finished.")
    lag_seconds = serializers.SerializerMethodField(help_text="How late it started: started_at - scheduled_for.")
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who asked for a manual run or retry."
    )
    cancel_pending = serializers.BooleanField(
        read_only=True, help_text="Cancel requested: its scheduler or worker has not stopped it yet."
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "job",
            "job_name",
            "trigger",
            "status",
            "reason",
            "attempt",
            "args",
            "kwargs",
            "scheduled_for",
            "run_after",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "lag_seconds",
            "worker",
            "task_id",
            "error",
            "dead_letter",
            "acknowledged_at",
            "cancel_requested_at",
            "cancel_pending",
            "requested_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, obj) -> float | None:
        return obj.duration.total_seconds() if obj.duration is not None else None

    def get_lag_seconds(self, obj) -> float | None:
        return obj.lag.total_seconds() if obj.lag is not None else None


class ExecutionDetailSerializer(ExecutionSerializer):
    """One run attempt with what it returned, printed and raised."""

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "result", "output", "traceback"]
        read_only_fields = fields


class ClearedSerializer(serializers.Serializer):
    cleared = serializers.IntegerField(help_text="How many dead letters were acknowledged.")
