"""The scheduler's state as the API reports it, and its runtime settings."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app.api.strict import StrictSerializer
from scheduler_app.services import RUNTIME_SETTINGS

SETTING_HELP = {
    "max_workers": "Threads running jobs in each scheduler process (applies when it next starts).",
    "misfire_grace_time": "Default seconds a run may start late before it counts as missed.",
    "history_per_job": "Executions kept per job.",
    "history_days": "Days of execution history kept.",
}


class NodeSerializer(serializers.Serializer):
    name = serializers.CharField()
    hostname = serializers.CharField()
    pid = serializers.IntegerField()
    role = serializers.CharField(help_text="leader or standby")
    state = serializers.CharField(help_text="starting, running, draining or stopped")
    started_at = serializers.DateTimeField()
    last_beat_at = serializers.DateTimeField()
    heartbeat_age_seconds = serializers.FloatField()
    alive = serializers.BooleanField(help_text="Its heartbeat is younger than the lease.")


class JobCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField()
    paused = serializers.IntegerField()


class SchedulerStatusSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["running", "paused", "stopped"],
        help_text="paused: the global pause is on; stopped: no scheduler process has a fresh heartbeat.",
    )
    running = serializers.BooleanField(help_text="A live scheduler is firing jobs (not paused).")
    paused = serializers.BooleanField()
    paused_at = serializers.DateTimeField(allow_null=True)
    shutdown_requested_at = serializers.DateTimeField(allow_null=True)
    jobs = JobCountsSerializer()
    running_executions = serializers.IntegerField()
    waiting_executions = serializers.IntegerField(help_text="Runs recorded but not started (run now, retries).")
    next_wakeup = serializers.DateTimeField(
        allow_null=True,
        help_text="The earliest run a scheduler will start: an active job's next run or a waiting run now or retry.",
    )
    # Only for users with scheduler_app.view_schedulernode: node names carry hosts and PIDs.
    leader = serializers.CharField(
        required=False, allow_null=True, help_text="The node holding the lease, if it is alive (view_schedulernode)."
    )
    lease_expires_at = serializers.DateTimeField(required=False, allow_null=True)
    nodes = NodeSerializer(many=True, required=False, help_text="Every recent scheduler process (view_schedulernode).")
    uptime_seconds = serializers.FloatField(
        required=False, allow_null=True, help_text="How long the leader has been running (view_schedulernode)."
    )
    config = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="The runtime settings in effect (view_schedulernode).",
    )


def _setting_field(key: str) -> serializers.IntegerField:
    _setting, low, high = RUNTIME_SETTINGS[key]
    return serializers.IntegerField(required=False, min_value=low, max_value=high, help_text=SETTING_HELP.get(key, ""))


class SchedulerConfigSerializer(StrictSerializer):
    """Runtime settings; each overrides its TEMPORA setting (MAX_WORKERS, ...). Give any subset to change it."""

    max_workers = _setting_field("max_workers")
    misfire_grace_time = _setting_field("misfire_grace_time")
    history_per_job = _setting_field("history_per_job")
    history_days = _setting_field("history_days")
