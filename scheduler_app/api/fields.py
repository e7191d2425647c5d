"""Input checks the model validators leave to the database, which would answer with a 500.

PostgreSQL refuses NUL characters in text and JSON, and lone UTF-16 surrogates cannot be
encoded at all; instants near year 9999 overflow the scheduler's 30-year search. These
checks turn each into a 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64
# The scheduler searches 30 years ahead from any instant; far beyond that it overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _bad_text(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def check_json_value(value, *, depth: int = 0) -> None:
    """Raise serializers.ValidationError if JSON holds NUL or surrogate characters, or nests too deeply."""
    if depth > MAX_JSON_DEPTH:
        raise serializers.ValidationError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        if _bad_text(value):
            raise serializers.ValidationError("Text may not contain NUL or unpaired surrogate characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json_value(key, depth=depth + 1)
            check_json_value(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth=depth + 1)


class SafeJSONField(serializers.JSONField):
    """A JSON field whose content PostgreSQL's jsonb will accept."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        check_json_value(value)
        return value


def check_instant(value: datetime | None, field: str | None = None) -> datetime | None:
    if value is None:
        return None
    if not EARLIEST <= value <= LATEST:
        message = "Pick an instant between 1970 and 2999."
        raise serializers.ValidationError({field: [message]} if field else message)
    return value


class BoundedDateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        return check_instant(super().to_internal_value(value))


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, but JSON nested too deeply for Python is a 400, not a RecursionError."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
