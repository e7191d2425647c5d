"""/api/health/: 200 when the database answers and a scheduler leads (services.scheduler_liveness),
else 503 with the reason.

For load balancers and monitors: any signed-in user, or an address on METRICS_ALLOWED_IPS.
"""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from scheduler_app import services
from scheduler_app.api.permissions import IsAuthenticatedOrAllowedAddress
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.views.base import ApiView
from scheduler_app.api.views.scheduler import lease_seconds
from scheduler_app.models import SchedulerNode


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    database = serializers.CharField(help_text="ok or unavailable")
    scheduler = serializers.CharField(help_text="ok, unavailable (no node holds a valid leader lease) or unknown")
    alive_nodes = serializers.IntegerField(allow_null=True)
    last_heartbeat_age_seconds = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why it is unavailable.")


def _unavailable(reason: str, **fields) -> Response:
    body = {
        "status": "unavailable",
        "database": "ok",
        "scheduler": "unknown",
        "alive_nodes": None,
        "last_heartbeat_age_seconds": None,
        "reason": reason,
        **fields,
    }
    return Response(body, status=503)


@extend_schema(tags=["monitoring"])
class HealthView(ApiView):
    permission_classes = [IsAuthenticatedOrAllowedAddress]

    @extend_schema(summary="Health check", responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        now = timezone.now()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            liveness = services.scheduler_liveness()
            newest = SchedulerNode.objects.order_by("-last_beat_at").values_list("last_beat_at", flat=True).first()
        except DatabaseError:
            return _unavailable("The database does not answer.", database="unavailable")
        age = round((now - newest).total_seconds(), 3) if newest else None
        alive = len(liveness.alive)
        if not liveness.up:
            if newest is None:
                reason = "No scheduler has ever started: run `manage.py runscheduler`."
            elif not alive:
                reason = f"No scheduler heartbeat in the last {lease_seconds()}s (the newest is {age}s old)."
            else:
                reason = f"No scheduler holds the leader lease ({alive} live node(s) stand by or drain)."
            return _unavailable(reason, scheduler="unavailable", alive_nodes=alive, last_heartbeat_age_seconds=age)
        return Response(
            {
                "status": "ok",
                "database": "ok",
                "scheduler": "ok",
                "alive_nodes": alive,
                "last_heartbeat_age_seconds": age,
                "reason": None,
            }
        )

    def handle_exception(self, exc):
        # Authentication reads the database too: if it is down, say so as a health answer.
        if isinstance(exc, DatabaseError):
            return _unavailable("The database does not answer.", database="unavailable")
        return super().handle_exception(exc)
