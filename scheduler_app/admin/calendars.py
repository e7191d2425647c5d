"""Exclusion calendars, saved through the calendar services."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from scheduler_app import services
from scheduler_app.admin.bases import (
    ServiceRefused,
    ServiceSavingAdmin,
    adopt,
)
from scheduler_app.models import Calendar


@admin.register(Calendar)
class CalendarAdmin(ServiceSavingAdmin):
    list_display = ("name", "business_days_only", "excluded_count", "used_by", "updated_at")
    search_fields = ("name", "description")
    list_filter = ("business_days_only",)
    autocomplete_fields = ("owner",)
    fields = ("name", "description", "excluded_dates", "business_days_only", "owner")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(trigger_count=Count("triggers"))

    @admin.display(description="Excluded dates")
    def excluded_count(self, calendar: Calendar) -> int:
        return len(calendar.excluded_dates)

    @admin.display(description="Triggers using it", ordering="trigger_count")
    def used_by(self, calendar: Calendar) -> int:
        return calendar.trigger_count

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in self.fields if name in form.cleaned_data}
        try:
            if change:
                saved = services.calendar_update(calendar=obj, **fields)
            else:
                saved = services.calendar_create(**fields)
        except ValidationError as exc:
            raise ServiceRefused(exc) from exc
        adopt(obj, saved)

    def delete_model(self, request, obj):
        # A calendar in use is PROTECTed: the admin refuses before it gets here.
        services.calendar_delete(calendar=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for calendar in queryset:
                services.calendar_delete(calendar=calendar)
