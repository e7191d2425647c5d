"""Batched INSERTs, UPDATEs and SELECTs for the scheduler's hot path.

The ORM builds one query object per `filter().update()` (about a millisecond each) and
converts every datetime through several layers (about 20 µs each on SQLite): at a thousand
runs a second that alone would fill the second. Here a statement is prepared once and run
with `executemany` (UPDATE) or as one multi-row INSERT ... RETURNING (both SQLite 3.35+
and PostgreSQL), and values are converted once per column by a converter chosen per field.
The SELECTs (`select_by_ids`, `select`) skip the ORM's query building and converters where
the scheduler reads hundreds or thousands of rows at a time.

On PostgreSQL the rows travel as one array per column (scheduler_app/row_source.py says why).

Lock order: every multi-row UPDATE here runs its rows sorted by the WHERE key (the primary
key first), and `select_by_ids(for_update=True)` locks in primary-key order. The writer,
recovery and the pass all lock executions before jobs, so with each table taken in id
order no two of them can wait on each other in a cycle (PostgreSQL reported deadlocks
when the writer took jobs in the order runs finished and the pass in the order they came due).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models
from django.db.models import Model

from scheduler_app.row_source import as_arrays, row_source

INSERT_CHUNK = 500


def _sqlite_datetime(value: datetime | None) -> str | None:
    # Exactly Django's SQLite storage format: naive UTC, str(), microseconds when non-zero.
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ")


def _from_sqlite_datetime(value: datetime | None) -> datetime | None:
    # The driver already parsed the column (Django registers a converter for its declared
    # type); Django's converter chain would only make it aware, through several layers.
    return None if value is None else value.replace(tzinfo=UTC)


def _converter(field: models.Field) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite":
        return _sqlite_datetime
    if isinstance(field, models.DateTimeField):
        return _same  # psycopg adapts aware datetimes natively
    if isinstance(
        field,
        models.ForeignKey
        | models.CharField
        | models.TextField
        | models.IntegerField
        | models.BooleanField
        | models.BinaryField,
    ):
        return _same  # both drivers take these Python values as they are
    return lambda value: field.get_db_prep_save(value, connection)


def _same(value: Any) -> Any:
    return value


def _fields(model: type[Model], names: Sequence[str]) -> list[models.Field]:
    meta = model._meta
    return [meta.pk if name == "pk" else meta.get_field(name) for name in names]


def update_many(
    model: type[Model], fields: Sequence[str], rows: Iterable[Sequence], *, where: Sequence[str] = ("pk",)
) -> None:
    """`UPDATE table SET f1=%s, ... WHERE w1=%s AND ...` for each row (values for fields, then where)."""
    _update(model, _fields(model, fields), _fields(model, where), rows, added=0)


def add_to_counters(model: type[Model], rows: Iterable[Sequence], *, add: Sequence[str], set_: Sequence[str]) -> None:
    """`UPDATE table SET a = a + %s, ..., s = %s, ... WHERE pk = %s` for each row (adds, sets, pk)."""
    _update(model, [*_fields(model, add), *_fields(model, set_)], [model._meta.pk], rows, added=len(add))


def _update(model, set_fields, where_fields, rows, *, added: int) -> None:
    """The UPDATE of each row; the first `added` set fields are added to, the others set."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [*set_fields, *where_fields]
    converters = [_converter(f) for f in columns]
    keyed = sorted(rows, key=lambda row: tuple(row[len(set_fields) :]))  # the lock order (see above)
    params = [[convert(value) for convert, value in zip(converters, row, strict=True)] for row in keyed]
    if not params:
        return

    def assign(index: int, field: models.Field, value: str) -> str:
        column = quote(field.column)
        return f"{column} = {table}.{column} + {value}" if index < added else f"{column} = {value}"

    if as_arrays(columns):
        # A join locks rows in the plan's order, not ours: lock them in key order first.
        if where_fields[0] == model._meta.pk:
            select_by_ids(model, ("pk",), [row[len(set_fields)] for row in params], for_update=True)
        names = [f"c{index}" for index in range(len(columns))]
        source, arrays = row_source(columns, params)
        assignments = ", ".join(assign(i, f, f"v.{names[i]}") for i, f in enumerate(set_fields))
        matches = " AND ".join(
            f"{table}.{quote(f.column)} = v.{name}"
            for f, name in zip(where_fields, names[len(set_fields) :], strict=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM ({source}) AS v({', '.join(names)}) WHERE {matches}", arrays
            )
        return
    assignments = ", ".join(assign(i, f, "%s") for i, f in enumerate(set_fields))
    matches = " AND ".join(f"{quote(f.column)} = %s" for f in where_fields)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {matches}", params)


def insert_many(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence]) -> list[int]:
    """Insert rows (values in `fields` order) and answer their new primary keys, in order."""
    columns = _fields(model, fields)
    converters = [_converter(f) for f in columns]
    quote = connection.ops.quote_name
    head = "INSERT INTO {} ({}) ".format(quote(model._meta.db_table), ", ".join(quote(f.column) for f in columns))
    returning = f" RETURNING {quote(model._meta.pk.column)}"
    ids: list[int] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, columns):
            params = [[convert(value) for convert, value in zip(converters, row, strict=True)] for row in chunk]
            source, flat = row_source(columns, params)
            cursor.execute(head + source + returning, flat)
            # Rows come back in input order, as Django's own bulk_create relies on.
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _chunks(rows: Sequence[Sequence], columns: Sequence[models.Field]):
    """The rows in statements: all at once as arrays, INSERT_CHUNK rows a statement otherwise
    (SQLite's limit on placeholders)."""
    size = len(rows) if as_arrays(columns) else INSERT_CHUNK
    for start in range(0, len(rows), max(size, 1)):
        yield rows[start : start + size]


def insert_ignore_many(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence]) -> None:
    """`INSERT ... VALUES (...), (...) ... ON CONFLICT DO NOTHING`, INSERT_CHUNK rows a statement
    (SQLite and PostgreSQL both speak it): the full sync's 100,000 store rows at start-up."""
    _insert_on_conflict(model, fields, rows, "ON CONFLICT DO NOTHING")


def upsert_many(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence], *, update: Sequence[str]) -> None:
    """Insert rows (the primary key first), or where the key exists set the `update` columns to
    the new values (`ON CONFLICT (pk) DO UPDATE`, both databases): the sync's changed store rows."""
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = excluded.{quote(f.column)}" for f in _fields(model, update))
    keyed = sorted(rows, key=lambda row: row[0])  # the lock order: by primary key, the first field
    clause = f"ON CONFLICT ({quote(model._meta.pk.column)}) DO UPDATE SET {assignments}"
    _insert_on_conflict(model, fields, keyed, clause)


def _insert_on_conflict(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence], clause: str) -> None:
    columns = _fields(model, fields)
    converters = [_converter(f) for f in columns]
    quote = connection.ops.quote_name
    head = "INSERT INTO {} ({}) ".format(quote(model._meta.db_table), ", ".join(quote(f.column) for f in columns))
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, columns):
            params = [[convert(value) for convert, value in zip(converters, row, strict=True)] for row in chunk]
            source, flat = row_source(columns, params)
            cursor.execute(head + source + " " + clause, flat)


def select_by_ids(model: type[Model], fields: Sequence[str], ids: Sequence[int], *, for_update: bool = False) -> list:
    """`SELECT fields FROM table WHERE pk IN (...)` [FOR UPDATE], in chunks; plain columns only.

    The writer's question after every batch: the ORM spent longer building the IN list of
    a few hundred ids than the database spent answering it. Rows are locked in id order
    (PostgreSQL's LockRows runs above the sort), chunk after chunk of sorted ids. On
    PostgreSQL the ids are one array, `= ANY(%s)`, in one statement.
    """
    columns = _fields(model, fields)
    quote = connection.ops.quote_name
    pk = quote(model._meta.pk.column)
    head = "SELECT {} FROM {} WHERE {} ".format(
        ", ".join(quote(f.column) for f in columns), quote(model._meta.db_table), pk
    )
    tail = ""
    if for_update and connection.features.has_select_for_update:
        ids, tail = sorted(set(ids)), f" ORDER BY {pk} FOR UPDATE"
    rows: list = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if ids:
                cursor.execute(f"{head}= ANY(%s::{model._meta.pk.cast_db_type(connection)}[]){tail}", [list(ids)])
                rows.extend(cursor.fetchall())
            return rows
        for start in range(0, len(ids), INSERT_CHUNK):
            chunk = ids[start : start + INSERT_CHUNK]
            cursor.execute(head + "IN (" + ", ".join(["%s"] * len(chunk)) + ")" + tail, list(chunk))
            rows.extend(cursor.fetchall())
    return rows


def select(queryset, fields: Sequence[str]) -> list:
    """`queryset.values_list(*fields, named=True)` without the ORM's per-value converters.

    For the full sync's 100,000 rows: Django converts each SQLite datetime through several
    layers; only DateTimeFields need converting here, once per value, and nothing else
    (psycopg already answers aware datetimes). Other field types come back as the driver
    gives them, so keep `fields` to plain columns (ints, text, booleans, datetimes).
    """
    values = queryset.values_list(*fields)
    sql, params = values.query.sql_with_params()
    row_type = namedtuple("Row", fields)
    model_fields = _fields(queryset.model, fields)
    dated = [
        index
        for index, field in enumerate(model_fields)
        if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite"
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not dated:
        return [row_type._make(row) for row in rows]
    converted = []
    for row in rows:
        row = list(row)
        for index in dated:
            row[index] = _from_sqlite_datetime(row[index])
        converted.append(row_type._make(row))
    return converted
