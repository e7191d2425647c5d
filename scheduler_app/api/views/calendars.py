"""/api/calendars/: exclusion calendars (holidays, business days), full CRUD through the services."""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import extend_schema_view

from scheduler_app import services
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.calendars import CalendarSerializer
from scheduler_app.api.views.base import ModelViewSet
from scheduler_app.models import Calendar


@extend_schema(tags=["calendars"])
@extend_schema_view(
    list=extend_schema(
        summary="List calendars", description="Yours and the shared ones (all with the view_calendar permission)."
    ),
    create=extend_schema(
        summary="Create a calendar", description="Yours; a shared one (no owner) needs the add_calendar permission."
    ),
    retrieve=extend_schema(summary="One calendar"),
    update=extend_schema(summary="Replace a calendar", description="Jobs using it re-plan at once."),
    partial_update=extend_schema(summary="Change a calendar"),
    destroy=extend_schema(summary="Delete a calendar", description="409 while a trigger uses it."),
)
class CalendarViewSet(ModelViewSet):
    serializer_class = CalendarSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    filterset_fields = ["business_days_only"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        return (
            Calendar.objects.visible_to(self.request.user)
            .select_related("owner")
            .annotate(trigger_count=Count("triggers"))
        )

    def perform_destroy(self, calendar: Calendar) -> None:
        services.calendar_delete(calendar=calendar, actor=self.request.user)
