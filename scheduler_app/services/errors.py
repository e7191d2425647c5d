"""A service's refusal in each interface's shape.

Services raise ValidationError keyed by field; an error of a row in a list the call was given
is keyed `<list>.<index>.<field>` (`triggers.1.cron_expression`: the second trigger's
expression). ErrorPlaces reads those keys once; the API nests them as DRF does for a nested
list, the console's and the admin's forms put them on the row forms' fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

_ROW_KEY = re.compile(r"^(?P<list>\w+)\.(?P<index>\d+)(?:\.(?P<field>.+))?$")


@dataclass
class ErrorPlaces:
    """Where each message of a service's ValidationError belongs."""

    # The object's own fields (NON_FIELD_ERRORS: the object as a whole).
    own: dict[str, list[str]] = field(default_factory=dict)
    # {"triggers": {1: {"cron_expression": [...]}}}; a row's field NON_FIELD_ERRORS: the row as a whole.
    rows: dict[str, dict[int, dict[str, list[str]]]] = field(default_factory=dict)

    @classmethod
    def of(cls, error: ValidationError) -> ErrorPlaces:
        places = cls()
        messages = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
        for key, texts in messages.items():
            match = _ROW_KEY.match(key)
            if match is None:
                places.own.setdefault(key, []).extend(texts)
                continue
            row = places.rows.setdefault(match["list"], {}).setdefault(int(match["index"]), {})
            row.setdefault(match["field"] or NON_FIELD_ERRORS, []).extend(texts)
        return places

    def drf(self, non_field_key: str) -> dict:
        """DRF's shape: {"name": [...], "triggers": {"1": {"cron_expression": [...]}}}."""
        result: dict = {}
        for key, texts in self.own.items():
            result.setdefault(non_field_key if key == NON_FIELD_ERRORS else key, []).extend(texts)
        for name, rows in self.rows.items():
            for index, fields in rows.items():
                for key, texts in fields.items():
                    key = non_field_key if key == NON_FIELD_ERRORS else key
                    if isinstance(result.setdefault(name, {}), dict):
                        result[name].setdefault(str(index), {}).setdefault(key, []).extend(texts)
                    else:  # the whole list has an error too: this one keeps its flat key
                        result.setdefault(f"{name}.{index}.{key}", []).extend(texts)
        return result

    def row_errors(self, name: str, count: int) -> tuple[dict[int, dict[str, list[str]]], list[str]]:
        """The errors of list `name`'s rows 0..count-1, and the messages that fit no row."""
        fitting, left = {}, []
        for index, fields in self.rows.get(name, {}).items():
            if index < count:
                fitting[index] = fields
            else:
                left.extend(text for texts in fields.values() for text in texts)
        return fitting, left
