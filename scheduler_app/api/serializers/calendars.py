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
        child=serializers.DateField(),
        required=False,
        max_length=MAX_DATES,
        help_text='Local dates to skip, e.g. ["2026-12-25", "2026-12-26"].',
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="The owner; null for a shared calendar."
    )
    shared = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Create it shared (no owner, everyone may link it); needs the add_calendar permission.",
    )
    used_by = serializers.SerializerMethodField(help_text="How many triggers use this calendar.")

    class Meta:
        model = Calendar
        fields = [
            "id",
            "name",
            "description",
            "excluded_dates",
            "business_days_only",
            "owner",
            "shared",
            "used_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"description": {"max_length": 10_000}}

    def get_used_by(self, calendar) -> int:
        count = getattr(calendar, "trigger_count", None)
        return calendar.triggers.count() if count is None else count

    def validate_excluded_dates(self, value) -> list[str]:
        return [day.isoformat() for day in value]

    def create(self, validated_data: dict) -> Calendar:
        actor = self.context["request"].user
        if validated_data.pop("shared", False):
            validated_data["owner"] = None
        return services.calendar_create(actor=actor, **validated_data)

    def update(self, calendar: Calendar, validated_data: dict) -> Calendar:
        validated_data.pop("shared", None)  # chosen at creation; an update keeps the owner
        return services.calendar_update(calendar=calendar, actor=self.context["request"].user, **validated_data)
