"""The admin's base classes: pages that save through the services (a refusal shows on its
fields), and read-only pages for rows only the scheduler writes."""

from __future__ import annotations

import functools

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from scheduler_app import permissions
from scheduler_app.permissions import JobAction
from scheduler_app.services.errors import ErrorPlaces

# Where a refused save leaves the service's errors for the second validation pass.
_SERVICE_ERRORS = "_tempora_service_errors"


def add_errors(form: forms.BaseForm, field: str, messages_: list[str]) -> None:
    if field in form.fields:
        form.add_error(field, messages_)
    elif field == NON_FIELD_ERRORS:
        form.add_error(None, messages_)
    else:
        form.add_error(None, [f"{field}: {message}" for message in messages_])


class ServiceRefused(Exception):
    """A service raised ValidationError (or Forbidden) while saving what the forms had accepted."""

    def __init__(self, error: ValidationError | permissions.Forbidden):
        super().__init__(str(error))
        forbidden = isinstance(error, permissions.Forbidden)
        self.places = ErrorPlaces(own={NON_FIELD_ERRORS: [error.message]}) if forbidden else ErrorPlaces.of(error)


class ServiceErrorsForm(forms.ModelForm):
    """A model form that also shows the errors a service raised on the previous attempt."""

    service_errors = ErrorPlaces()

    def clean(self):
        cleaned_data = super().clean()
        for field, messages_ in self.service_errors.own.items():  # the trigger formset shows its rows'
            add_errors(self, field, messages_)
        return cleaned_data


def with_service_errors(cls: type, request) -> type:
    errors = getattr(request, _SERVICE_ERRORS, None)
    return type(cls.__name__, (cls,), {"service_errors": errors}) if errors else cls


class ServiceSavingAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves call services; a service's ValidationError becomes form errors."""

    form = ServiceErrorsForm

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The atomic block around the save has rolled back. Validate the same POST again,
            # this time with the service's errors, so the page shows them by their fields.
            setattr(request, _SERVICE_ERRORS, refused.places)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_service_errors(super().get_form(request, obj, change, **kwargs), request)


def adopt(target, saved) -> None:
    """Copy a row a service saved onto the admin's own instance (the admin logs and redirects with it)."""
    for field in type(saved)._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the scheduler writes; people act on them through actions only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class JobRightsAdmin(admin.ModelAdmin):
    """Rights from scheduler_app/permissions.py, as the console and the API have them: a user
    sees and changes their own jobs (or their runs) and, with the permission, everyone's.
    The admin site itself still wants `is_staff` to let anyone in, as Django's does."""

    def job_of(self, obj):
        return obj

    def may(self, request, action: JobAction, obj) -> bool:
        return permissions.may(request.user, action, self.job_of(obj))

    def has_module_permission(self, request) -> bool:
        return permissions.signed_in(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None or self.may(request, JobAction.VIEW, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return permissions.signed_in(request.user) if obj is None else self.may(request, JobAction.CHANGE, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return permissions.signed_in(request.user) if obj is None else self.may(request, JobAction.DELETE, obj)

    # Actions are offered to everyone signed in; the service refuses the whole selection,
    # naming the jobs, when one of them is not the user's to act on.
    def has_operate_permission(self, request) -> bool:
        return permissions.signed_in(request.user)


def refusal_shown(action):
    """An admin action whose service refusal (permissions.Forbidden) becomes an error message."""

    @functools.wraps(action)
    def wrapper(self, request, queryset):
        try:
            return action(self, request, queryset)
        except permissions.Forbidden as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return None

    return wrapper
