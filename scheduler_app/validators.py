"""Field validators shared by the models, the forms, the API and the services.

Each raises Django's ValidationError with a message a user can act on. Schedule
validation itself lives in triggers.py; these adapt it to Django.
"""

from __future__ import annotations

import json
import re
from datetime import date

from django.core import validators as django_validators
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from scheduler_app import triggers
from scheduler_app.conf import tempora_settings
from scheduler_app.registry import registry

_TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
_GROUP = re.compile(r"^[\w.-]{1,100}$")
# Exactly YYYY-MM-DD: date.fromisoformat also takes "20261225" and "2026-W52-5" (Python 3.11+),
# which would store one day under several spellings and defeat the calendar's de-duplication.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_TAGS = 20
MAX_JSON_BYTES = 65_536


def field_bounds(model, name: str) -> dict[str, int]:
    """The model field's bounds as form and serializer keywords: `{"min_value": 1, "max_value": 10}`.

    The model's validators are the one definition; forms and serializers that are not built
    from the model (ModelForm, ModelSerializer) take their bounds from here.
    """
    bounds: dict[str, int] = {}
    for validator in model._meta.get_field(name).validators:
        if isinstance(validator, django_validators.MinValueValidator):
            bounds["min_value"] = max(validator.limit_value, bounds.get("min_value", validator.limit_value))
        elif isinstance(validator, django_validators.MaxValueValidator):
            bounds["max_value"] = min(validator.limit_value, bounds.get("max_value", validator.limit_value))
    return bounds


def validate_timezone_name(value: str) -> None:
    try:
        triggers.validate_timezone(value)
    except triggers.ScheduleError as exc:
        raise ValidationError(exc.message, code="invalid_timezone") from None


def validate_task_name(value: str) -> None:
    if value not in registry:
        known = ", ".join(sorted(registry.names())[:10])
        raise ValidationError(
            gettext("%(task)s is not a registered task. Known tasks include: %(known)s.")
            % {"task": repr(value), "known": known},
            code="unknown_task",
        )


def _check_json_size(value: object, what: str) -> None:
    try:
        size = len(json.dumps(value))
    except (TypeError, ValueError):
        raise ValidationError(gettext("%(what)s must be JSON.") % {"what": what}, code="invalid_json") from None
    if size > MAX_JSON_BYTES:
        raise ValidationError(
            gettext("%(what)s is %(size)d bytes of JSON; the limit is %(limit)d.")
            % {"what": what, "size": size, "limit": MAX_JSON_BYTES},
            code="too_large",
        )


def validate_timeout(value: int) -> None:
    """A job's own time limit: 1 second up to SCHEDULER_MAX_TIMEOUT (read when validating,
    so the bound is the deployment's; empty means the default, SCHEDULER_DEFAULT_TIMEOUT)."""
    if value < 1:
        raise ValidationError(
            gettext("The timeout must be at least 1 second, or empty for the default."), code="timeout_too_small"
        )
    if value > tempora_settings.MAX_TIMEOUT:
        raise ValidationError(
            gettext("The timeout is at most %(max)d seconds (SCHEDULER_MAX_TIMEOUT).")
            % {"max": tempora_settings.MAX_TIMEOUT},
            code="timeout_too_large",
        )


def validate_args(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError(gettext('Args must be a JSON list, e.g. ["hello", 3].'), code="invalid_args")
    _check_json_size(value, gettext("Args"))


def validate_kwargs(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            gettext('Kwargs must be a JSON object, e.g. {"message": "hello"}.'), code="invalid_kwargs"
        )
    _check_json_size(value, gettext("Kwargs"))


def validate_tags(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValidationError(
            gettext('Tags must be a JSON list of strings, e.g. ["etl", "nightly"].'), code="invalid_tags"
        )
    if len(value) > MAX_TAGS:
        raise ValidationError(gettext("At most %(count)d tags.") % {"count": MAX_TAGS}, code="invalid_tags")
    for tag in value:
        # fullmatch, not match: "$" also matches before a trailing newline, so match let "etl\n" in.
        if not _TAG.fullmatch(tag):
            raise ValidationError(
                gettext("Tag %(tag)s: use lowercase letters, digits, '-', '_' or '.', at most 50 characters.")
                % {"tag": repr(tag)},
                code="invalid_tags",
            )


def validate_group(value: str) -> None:
    # fullmatch, not match: "$" also matches before a trailing newline, so match let "etl\n" in.
    if not _GROUP.fullmatch(value or ""):
        raise ValidationError(gettext("A group is 1-100 letters, digits, '_', '-' or '.'."), code="invalid_group")


def validate_date_list(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError(gettext('Dates must be a JSON list, e.g. ["2026-12-25"].'), code="invalid_dates")
    for item in value:
        try:
            if not isinstance(item, str) or not _ISO_DATE.fullmatch(item):
                raise ValueError(item)
            date.fromisoformat(item)
        except (TypeError, ValueError):
            raise ValidationError(
                gettext("%(value)s is not a date as YYYY-MM-DD.") % {"value": repr(item)}, code="invalid_dates"
            ) from None


def normalise_tags(value: list[str]) -> list[str]:
    """Lowercased, stripped, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for tag in value:
        seen.setdefault(tag.strip().lower(), None)
    return [tag for tag in seen if tag]
