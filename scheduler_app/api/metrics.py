"""/metrics: Prometheus text format (exposition format 0.0.4).

Users with view_schedulernode, or a scraper whose address is on METRICS_ALLOWED_IPS. Counts come from the run
tallies and the rows active now, histograms from the last hour's rows (index execution_finished_at), in a fixed
number of aggregate queries; execution counts are gauges because old tallies are pruned.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from scheduler_app import services, statistics, tallies
from scheduler_app.api.permissions import MayViewNodesOrAllowedAddress
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.views.base import ApiView
from scheduler_app.models import Execution, Job, SchedulerNode

RECENT = timedelta(hours=1)


class PrometheusRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode("utf-8")
        # Errors (401/403) as plain text too, so a scraper logs something readable.
        detail = data.get("detail", data) if isinstance(data, dict) else data
        return f"# {detail}\n".encode()


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{key}="{_label(val)}"' for key, val in labels.items())
            number = str(value) if isinstance(value, int) else repr(float(value))
            self.lines.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")

    def histogram(self, name: str, help_text: str, data: dict) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for bound, count in data["buckets"]:
            self.lines.append(f'{name}_bucket{{le="{bound:g}"}} {count}')
        self.lines.append(f'{name}_bucket{{le="+Inf"}} {data["count"]}')
        self.lines.append(f"{name}_sum {data['sum']:.6f}")
        self.lines.append(f"{name}_count {data['count']}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics() -> str:
    now = timezone.now()
    out = _Lines()
    with statistics.snapshot():
        counts = statistics.Tallied.everyone(now=now).figures().by_status
    counts.update(Execution.objects.active_counts())
    out.metric(
        "tempora_executions",
        "gauge",
        f"Executions by status: active ones now, finished ones over the last {tallies.KEEP_DAYS} days (the tallies).",
        [({"status": status}, n) for status, n in counts.items()],
    )
    recent = Execution.objects.filter(finished_at__gte=now - RECENT)
    recent_counts = statistics.status_counts(recent)
    out.metric(
        "tempora_executions_last_hour",
        "gauge",
        "Executions that finished in the last hour, by status.",
        [({"status": status}, n) for status, n in recent_counts.items()],
    )
    out.metric(
        "tempora_dead_letters",
        "gauge",
        "Unacknowledged dead letters (failed with no retries left).",
        [({}, Execution.objects.dead_letters().count())],
    )
    jobs = Job.objects.aggregate(
        n_active=Count("id", filter=Q(paused=False)), n_paused=Count("id", filter=Q(paused=True))
    )
    out.metric("tempora_jobs", "gauge", "Jobs by state.", [({"state": key[2:]}, n) for key, n in jobs.items()])
    ended = recent.filter(statistics.ENDED, started_at__isnull=False)
    out.histogram(
        "tempora_run_duration_seconds",
        "Run durations of runs that ended in the last hour.",
        statistics.histogram(ended, "finished_at", "started_at"),
    )
    out.histogram(
        "tempora_run_lag_seconds",
        "How late runs that ended in the last hour started (started_at - scheduled_for).",
        statistics.histogram(ended.filter(reason__in=Execution.SCHEDULED_REASONS), "started_at", "scheduled_for"),
    )
    liveness = services.scheduler_liveness()
    alive = liveness.alive
    out.metric(
        "tempora_scheduler_up",
        "gauge",
        "1 while a scheduler holds a valid leader lease.",
        [({}, 1 if liveness.up else 0)],
    )
    out.metric(
        "tempora_scheduler_paused",
        "gauge",
        "1 while the global pause is on.",
        [({}, 1 if liveness.state.paused else 0)],
    )
    out.metric(
        "tempora_scheduler_leader",
        "gauge",
        "1 for the node holding the leader lease.",
        [({"node": liveness.leader.name}, 1)] if liveness.up else [],
    )
    out.metric(
        "tempora_scheduler_heartbeat_age_seconds",
        "gauge",
        "Seconds since each live node's last heartbeat.",
        [
            ({"node": node.name, "role": node.role}, round((now - node.last_beat_at).total_seconds(), 3))
            for node in alive
        ],
    )
    out.metric(
        "tempora_scheduler_nodes",
        "gauge",
        "Live scheduler processes by role.",
        [({"role": role}, sum(1 for node in alive if node.role == role)) for role in SchedulerNode.Role.values],
    )
    return out.text()


class PlainTextOnly(BaseContentNegotiation):
    """Scrapers send all sorts of Accept headers; the answer is always the text format."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsView(ApiView):
    permission_classes = [MayViewNodesOrAllowedAddress]
    renderer_classes = [PrometheusRenderer]
    content_negotiation_class = PlainTextOnly

    @extend_schema(
        tags=["monitoring"],
        summary="Prometheus metrics",
        description="Runs by status, lag, durations, jobs by state, the leader. Users with the view_schedulernode permission, or an address on METRICS_ALLOWED_IPS.",
        responses={
            (200, "text/plain"): OpenApiResponse(response=OpenApiTypes.STR, description="Prometheus text format 0.0.4")
        },
    )
    def get(self, request):
        return Response(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
