"""Exclusion calendars, saved through the calendar services."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from scheduler_app import permissions, services
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
        return super().get_queryset(request).visible_to(request.user).annotate(trigger_count=Count("triggers"))

    # Rights as permissions.py gives them: own and shared calendars to see, own ones to change.
    def has_module_permission(self, request):
        return permissions.signed_in(request.user)

    def has_view_permission(self, request, obj=None):
        return permissions.signed_in(request.user)  # the queryset holds only visible ones

    def has_add_permission(self, request):
        return permissions.signed_in(request.user)

    def has_change_permission(self, request, obj=None):
        return (
            permissions.signed_in(request.user) if obj is None else permissions.may_change_calendar(request.user, obj)
        )

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return permissions.signed_in(request.user)
        return permissions.may_change_calendar(request.user, obj, delete=True)

    def get_autocomplete_fields(self, request):
        return self.autocomplete_fields if permissions.may_own_calendar(request.user, None) else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Shared calendars (no owner) and other users' need the permission (services say so too).
        if db_field.name == "owner" and not permissions.may_own_calendar(request.user, None):
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

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
                saved = services.calendar_update(calendar=obj, actor=request.user, **fields)
            else:
                saved = services.calendar_create(actor=request.user, **fields)
        except (ValidationError, permissions.Forbidden) as exc:
            raise ServiceRefused(exc) from exc
        adopt(obj, saved)

    def delete_model(self, request, obj):
        # A calendar in use is PROTECTed: the admin refuses before it gets here.
        services.calendar_delete(calendar=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for calendar in queryset:
                services.calendar_delete(calendar=calendar, actor=request.user)
