"""/api/stats/: totals, success rate, duration percentiles, runs per hour and per job.

Computed by the database in a fixed number of queries (api/statistics.py), over the runs
the user may see.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from scheduler_app import statistics
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.views.base import ApiView
from scheduler_app.models import Execution, Job


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        default=7,
        min_value=1,
        max_value=3650,
        help_text="The window for totals, durations and per-job figures (default 7).",
    )
    limit = serializers.IntegerField(
        default=100, min_value=1, max_value=1000, help_text="At most this many jobs in per_job (busiest first)."
    )


class TotalsSerializer(serializers.Serializer):
    runs = serializers.IntegerField(help_text="Runs that ended (succeeded or failed) in the window.")
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="failed, timed_out and lost.")
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="Every status, in the window.")
    running = serializers.IntegerField(help_text="Running now.")
    waiting = serializers.IntegerField(help_text="Recorded and not started yet, now.")
    dead_letters = serializers.IntegerField(help_text="Unacknowledged dead letters, now.")
    jobs = serializers.IntegerField()
    active_jobs = serializers.IntegerField()


class DurationsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class HourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField(help_text="The start of the UTC hour.")
    runs = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()


class JobStatsSerializer(serializers.Serializer):
    job = serializers.IntegerField(allow_null=True, help_text="The job's id; null once it was deleted.")
    job_name = serializers.CharField()
    runs = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    mean_duration_seconds = serializers.FloatField(allow_null=True)
    last_finished_at = serializers.DateTimeField(allow_null=True)


class StatsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    totals = TotalsSerializer()
    success_rate = serializers.FloatField(
        allow_null=True, help_text="succeeded / (succeeded + failed), 0-1; null without runs."
    )
    duration_seconds = DurationsSerializer()
    runs_per_hour = HourSerializer(many=True, help_text="The last 24 hours, oldest first.")
    per_job = JobStatsSerializer(many=True)


@extend_schema(tags=["monitoring"])
class StatsView(ApiView):
    query_serializer_class = StatsQuerySerializer

    @extend_schema(summary="Run statistics", parameters=[StatsQuerySerializer], responses=StatsSerializer)
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        since = now - timedelta(days=query.validated_data["days"])
        visible = Execution.objects.visible_to(request.user)
        window = visible.filter(finished_at__gte=since)
        by_status = statistics.status_counts(window)
        succeeded = by_status[Execution.Status.SUCCEEDED]
        failed = sum(by_status[s] for s in Execution.FAILURES)
        current = statistics.status_counts(visible.filter(status__in=Execution.ACTIVE))
        jobs = Job.objects.visible_to(request.user)
        return Response(
            {
                "since": since,
                "until": now,
                "totals": {
                    "runs": succeeded + failed,
                    "succeeded": succeeded,
                    "failed": failed,
                    "by_status": by_status,
                    "running": current[Execution.Status.RUNNING],
                    "waiting": current[Execution.Status.SCHEDULED] + current[Execution.Status.QUEUED],
                    "dead_letters": visible.dead_letters().count(),
                    "jobs": jobs.count(),
                    "active_jobs": jobs.active().count(),
                },
                "success_rate": statistics.success_rate(succeeded, failed),
                "duration_seconds": statistics.duration_summary(window.filter(statistics.ENDED)),
                "runs_per_hour": statistics.runs_per_hour(visible, now=now),
                "per_job": statistics.per_job(window.filter(statistics.ENDED), limit=query.validated_data["limit"]),
            }
        )
