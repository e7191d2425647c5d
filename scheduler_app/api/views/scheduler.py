"""/api/scheduler/: the scheduler's status, its global pause, shutdown and runtime settings (staff only).

The web never talks to runscheduler: these endpoints write the SchedulerState row through
the services, and every scheduler process reads it within about a second.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from scheduler_app import permissions, services
from scheduler_app.api.permissions import MayViewNodes
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.scheduler import SchedulerConfigSerializer, SchedulerStatusSerializer
from scheduler_app.api.views.base import ApiView, ViewSet
from scheduler_app.conf import tempora_settings
from scheduler_app.models import Execution, Job, SchedulerNode, SchedulerState
from scheduler_app.services import RUNTIME_SETTINGS

# Nodes that stopped longer ago than this drop out of the status (every process start adds one).
NODE_MEMORY = timedelta(days=1)


def lease_seconds() -> int:
    return tempora_settings.LEASE_SECONDS


def runtime_config(state: SchedulerState) -> dict[str, int]:
    return {key: services.scheduler_setting(key, state) for key in RUNTIME_SETTINGS}


def status_data(now: datetime | None = None, *, details: bool = True) -> dict:
    """The scheduler's state; `details` (node names, hosts, PIDs, settings) only for those allowed."""
    now = now or timezone.now()
    liveness = services.scheduler_liveness()
    state, leader = liveness.state, liveness.leader
    nodes = list(SchedulerNode.objects.filter(last_beat_at__gte=now - NODE_MEMORY).order_by("-last_beat_at")[:50])
    alive = {node.pk for node in liveness.alive}
    # Aggregate names must not be field names ("paused"): Django would read Q(paused=...) as the aggregate.
    jobs = Job.objects.aggregate(
        n_total=Count("id"),
        n_active=Count("id", filter=Q(paused=False)),
        n_paused=Count("id", filter=Q(paused=True)),
    )
    executions = Execution.objects.aggregate(
        running=Count("id", filter=Q(status=Execution.Status.RUNNING)),
        waiting=Count("id", filter=Q(status__in=Execution.PENDING)),
    )
    label = {"down": "stopped"}.get(liveness.status, liveness.status)
    data = {
        "state": label,
        "running": label == "running",
        "paused": state.paused,
        "paused_at": state.paused_at,
        "shutdown_requested_at": state.shutdown_requested_at,
        "jobs": {"total": jobs["n_total"], "active": jobs["n_active"], "paused": jobs["n_paused"]},
        "running_executions": executions["running"],
        "waiting_executions": executions["waiting"],
        "next_wakeup": SchedulerState.next_wakeup(),
    }
    if not details:
        return data
    return {
        **data,
        "leader": leader.name if leader else None,
        "lease_expires_at": state.lease_expires_at,
        "nodes": [
            {
                "name": node.name,
                "hostname": node.hostname,
                "pid": node.pid,
                "role": node.role,
                "state": node.state,
                "started_at": node.started_at,
                "last_beat_at": node.last_beat_at,
                "heartbeat_age_seconds": round((now - node.last_beat_at).total_seconds(), 3),
                "alive": node.pk in alive,
            }
            for node in nodes
        ],
        "uptime_seconds": round((now - leader.started_at).total_seconds(), 3) if leader else None,
        "config": runtime_config(state),
    }


def _status(request) -> dict:
    return status_data(details=permissions.may_view_nodes(request.user))


@extend_schema(tags=["scheduler"])
class SchedulerStatusView(ApiView):
    @extend_schema(
        summary="Scheduler status",
        description="Running or paused, counts, next wake-up; with the view_schedulernode permission also the "
        "nodes with heartbeat age and role, the leader, uptime and the runtime settings.",
        responses=SchedulerStatusSerializer,
    )
    def get(self, request):
        return Response(_status(request))


@extend_schema(tags=["scheduler"])
class SchedulerViewSet(ViewSet):
    """Pause, resume, shutdown and settings: the services refuse them without control_scheduler (403)."""

    def get_permissions(self):
        if self.request.method == "GET":
            return [*super().get_permissions(), MayViewNodes()]
        return super().get_permissions()

    @extend_schema(
        summary="Pause the scheduler",
        description="Nothing fires until resumed; runs already started finish.",
        request=None,
        responses=SchedulerStatusSerializer,
    )
    @action(detail=False, methods=["post"])
    def pause(self, request):
        services.scheduler_pause(actor=request.user)
        return Response(_status(request))

    @extend_schema(summary="Resume the scheduler", request=None, responses=SchedulerStatusSerializer)
    @action(detail=False, methods=["post"])
    def resume(self, request):
        services.scheduler_resume(actor=request.user)
        return Response(_status(request))

    @extend_schema(
        summary="Ask the scheduler processes to stop",
        description="Each runscheduler process drains its running jobs and exits within about a second of noticing.",
        request=None,
        responses={202: SchedulerStatusSerializer},
    )
    @action(detail=False, methods=["post"])
    def shutdown(self, request):
        services.scheduler_shutdown_request(actor=request.user)
        return Response(_status(request), status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], summary="Runtime settings in effect", responses=SchedulerConfigSerializer)
    @extend_schema(
        methods=["PUT", "PATCH"],
        summary="Change runtime settings",
        description="Give any subset; each overrides its TEMPORA setting (MAX_WORKERS, ...).",
        request=SchedulerConfigSerializer,
        responses=SchedulerConfigSerializer,
    )
    @action(detail=False, methods=["get", "put", "patch"])
    def config(self, request):
        if request.method != "GET":
            form = SchedulerConfigSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            services.scheduler_config_update(values=dict(form.validated_data), actor=request.user)
        return Response(runtime_config(SchedulerState.load()))
