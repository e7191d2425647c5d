"""Exclusion calendars: local dates on which linked triggers do not fire."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app import services
from scheduler_app.api.strict import StrictModelSerializer
from scheduler_app.models import Calendar

MAX_DATES = 3660


class CalendarSerializer(StrictModelSerializer):
    """An exclusion calendar. Saved through services.calendar_create / calendar_update, which
    also re-plan the jobs that use it."""

    excluded_dates = serializers.ListField(
        child=serializers.DateField(), required=False, max_length=MAX_DATES,
        help_text='Local dates to skip, e.g. ["2026-12-25", "2026-12-26"].',
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="The owner; null for a shared calendar."
    )
    used_by = serializers.SerializerMethodField(help_text="How many triggers use this calendar.")

    class Meta:
        model = Calendar
        fields = [
            "id", "name", "description", "excluded_dates", "business_days_only", "owner", "used_by",
            "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"description": {"max_length": 10_000}}

    def get_used_by(self, calendar) -> int:
        count = getattr(calendar, "trigger_count", None)
        return calendar.triggers.count() if count is None else count

    def validate_excluded_dates(self, value) -> list[str]:
        return [day.isoformat() for day in value]

    def create(self, validated_data: dict) -> Calendar:
        request = self.context.get("request")
        # Staff create shared calendars (no owner) everyone can link; other users their own.
        if request is not None and not request.user.is_staff:
            validated_data["owner"] = request.user
        return services.calendar_create(**validated_data)

    def update(self, calendar: Calendar, validated_data: dict) -> Calendar:
        return services.calendar_update(calendar=calendar, **validated_data)
