"""/api/stats/: totals, success rate, duration percentiles, runs per hour and per job.

Read from the run tallies (statistics.Tallied) in a fixed number of queries whatever the
history, over the runs the user may see.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from scheduler_app import statistics, tallies, triggers
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.views.base import ApiView
from scheduler_app.models import Execution, Job


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        default=7,
        min_value=1,
        max_value=tallies.KEEP_DAYS,
        help_text=(
            "The window for totals and durations: this many days back from the start of the current UTC hour "
            "(default 7). Per-job figures cover the whole UTC days from the window's first."
        ),
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
    count = serializers.IntegerField(help_text="Runs that ended with a start and an end.")
    mean = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True, help_text="Estimated within 10 % (a histogram of durations).")
    p90 = serializers.FloatField(allow_null=True, help_text="Estimated within 10 %.")
    p95 = serializers.FloatField(allow_null=True, help_text="Estimated within 10 %.")
    p99 = serializers.FloatField(allow_null=True, help_text="Estimated within 10 %.")


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
    since = serializers.DateTimeField(help_text="The window's start: a whole UTC hour, `days` before the current one.")
    until = serializers.DateTimeField()
    up_to_date = serializers.BooleanField(
        help_text=(
            "False while a backlog of finished runs waits to be counted into the statistics (after an upgrade, "
            "or while no scheduler runs): the figures then leave out its oldest runs."
        )
    )
    totals = TotalsSerializer()
    success_rate = serializers.FloatField(
        allow_null=True, help_text="succeeded / (succeeded + failed), 0-1; null without runs."
    )
    duration_seconds = DurationsSerializer()
    runs_per_hour = HourSerializer(many=True, help_text="The last 24 hours, oldest first.")
    per_job_since = serializers.DateField(help_text="The first UTC day per_job covers.")
    per_job = JobStatsSerializer(many=True)


@extend_schema(tags=["monitoring"])
class StatsView(ApiView):
    query_serializer_class = StatsQuerySerializer

    @extend_schema(summary="Run statistics", parameters=[StatsQuerySerializer], responses=StatsSerializer)
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        days = query.validated_data["days"]
        since = triggers.utc_hour(now) - timedelta(days=days)
        figures = statistics.Tallied(request.user, now=now)
        with statistics.snapshot():
            window = figures.figures(since)
            runs_per_hour = figures.runs_per_hour()
            per_job = figures.per_job(since.date(), limit=query.validated_data["limit"])
        by_status = window.by_status
        succeeded = by_status[Execution.Status.SUCCEEDED]
        failed = sum(by_status[s] for s in Execution.FAILURES)
        visible = Execution.objects.listed_for(request.user)
        current = visible.active_counts()
        jobs = Job.objects.visible_to(request.user)
        return Response(
            {
                "since": since,
                "until": now,
                "up_to_date": figures.up_to_date,
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
                "duration_seconds": statistics.duration_summary(window),
                "runs_per_hour": runs_per_hour,
                "per_job_since": since.date(),
                "per_job": per_job,
            }
        )
