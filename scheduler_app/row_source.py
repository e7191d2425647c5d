"""Many rows as the source of one INSERT or UPDATE: one array per column on PostgreSQL.

psycopg parses every placeholder of a statement in Python: a 1,000-row INSERT's 16,000 of them
held the GIL for tens of milliseconds, beside worker threads starting runs. As arrays
(`unnest`), a statement has one placeholder per column whatever the number of rows; Django's
own bulk_create on PostgreSQL inserts this way too, relying as we do on RETURNING in input
order. Elsewhere (SQLite) the rows are a VALUES list.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models

# Field types psycopg sends as arrays as they are; others (JSON) keep the per-row statements.
_ARRAY_FIELDS = (
    models.ForeignKey
    | models.CharField
    | models.TextField
    | models.IntegerField
    | models.BooleanField
    | models.BinaryField
    | models.DateTimeField
    | models.DateField
    | models.FloatField
)


def as_arrays(fields: Sequence[models.Field]) -> bool:
    return connection.vendor == "postgresql" and all(isinstance(f, _ARRAY_FIELDS) for f in fields)


def _unnest(fields: Sequence[models.Field], rows: Sequence[Sequence]) -> tuple[str, list]:
    """`SELECT * FROM unnest(%s::type[], ...)` and its parameters: one array per column."""
    casts = ", ".join(f"%s::{f.cast_db_type(connection)}[]" for f in fields)
    return f"SELECT * FROM unnest({casts})", [list(column) for column in zip(*rows, strict=True)]


def row_source(fields: Sequence[models.Field], rows: Sequence[Sequence]) -> tuple[str, list]:
    """The rows (values already converted) as what an INSERT takes: arrays on PostgreSQL,
    `VALUES (%s, ...), ...` otherwise; answers the SQL and its parameters."""
    if as_arrays(fields):
        return _unnest(fields, rows)
    values = "VALUES " + ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    return values, [value for row in rows for value in row]
