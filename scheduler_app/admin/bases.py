"""The admin's base classes: pages that save through services.py (a refusal shows on its
fields), and read-only pages for rows only the scheduler writes."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

# Where a refused save leaves the service's errors for the second validation pass.
_SERVICE_ERRORS = "_tempora_service_errors"


def error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}


def add_errors(form: forms.BaseForm, field: str, messages_: list[str]) -> None:
    if field in form.fields:
        form.add_error(field, messages_)
    elif field == NON_FIELD_ERRORS:
        form.add_error(None, messages_)
    else:
        form.add_error(None, [f"{field}: {message}" for message in messages_])


class ServiceRefused(Exception):
    """A service raised ValidationError while saving what the forms had accepted."""

    def __init__(self, error: ValidationError):
        super().__init__(str(error))
        self.errors = error_dict(error)


class ServiceErrorsForm(forms.ModelForm):
    """A model form that also shows the errors a service raised on the previous attempt."""

    service_errors: dict[str, list[str]] = {}

    def clean(self):
        cleaned_data = super().clean()
        for field, messages_ in self.service_errors.items():
            if not field.startswith("triggers."):  # the trigger formset shows those
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
            setattr(request, _SERVICE_ERRORS, refused.errors)
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
