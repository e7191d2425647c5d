"""tempora.process_data: summarise, deduplicate or validate records from a list or a file.

Records stream through one at a time, so a large CSV or JSON-lines file never sits in memory
whole (deduplicate keeps a 16-byte digest per distinct record).

Fenced: a file is a name relative to TEMPORA_DATA_DIR that follows no link (paths.py), and
every way of not reading it (missing, a link, a directory, a FIFO) gives one message, so a
job cannot tell whether a path outside the directory exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext

from scheduler_app.builtin import Refused, conf, paths

logger = logging.getLogger(__name__)

OPERATIONS = ("summary", "deduplicate", "validate")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# validate reports the positions of at most this many invalid records.
INVALID_SAMPLE = 100


def check(
    records: list | None = None,
    source: str | None = None,
    operation: str = "summary",
    field: str | None = None,
) -> tuple[str, ...] | None:
    """The arguments' checks (at save and at run); the source file's name split into parts, if any."""
    if operation not in OPERATIONS:
        raise ValueError(
            gettext("operation: %(operation)r is not one of %(choices)s.")
            % {"operation": operation, "choices": ", ".join(OPERATIONS)}
        )
    if (records is None) == (source is None):
        raise ValueError(
            gettext(
                "Give either records (a list) or source (a .csv or .jsonl file in the data directory), "
                "not both or neither."
            )
        )
    if operation == "validate" and not field:
        raise ValueError(gettext("field: validate needs the field every record must have."))
    if records is not None:
        if not isinstance(records, (list, tuple)):
            raise ValueError(
                gettext("records: expected a list of objects or numbers, not %(type)s.")
                % {"type": type(records).__name__}
            )
        return None
    if not isinstance(source, str) or Path(source).suffix.lower() not in CSV_SUFFIXES + JSONL_SUFFIXES:
        raise ValueError(gettext("source: %(source)r must end in .csv, .jsonl or .ndjson.") % {"source": source})
    return paths.relative_parts(source, "source", gettext("the data directory"))


def validate(arguments: dict) -> None:
    """@task(validate=...): the checks a job's arguments get when it is saved."""
    check(**arguments)


def process(
    records: list | None = None,
    source: str | None = None,
    operation: str = "summary",
    field: str | None = None,
) -> dict:
    parts = check(records, source, operation, field)
    rows = read(source, parts) if parts is not None else iter(records)
    origin = str(source) if source is not None else "records"

    started = time.perf_counter()
    result = _OPERATIONS[operation](rows, field)
    elapsed = time.perf_counter() - started

    count = result["count"]
    result.update(
        operation=operation,
        source=origin,
        duration_ms=round(elapsed * 1000, 3),
        records_per_second=round(count / elapsed, 1) if elapsed > 0 else None,
    )
    logger.info("%s of %d record(s) from %s in %.1f ms", operation, count, origin, elapsed * 1000)
    return result


def read(source: str, parts: tuple[str, ...]) -> Iterator[Any]:
    """Records from a CSV file (a dict per row, keyed by the header) or a JSON-lines file in the data directory."""
    base = conf.data_dir()
    if base is None:
        raise Refused(gettext("source: reading files needs a data directory (TEMPORA_DATA_DIR)."))
    try:
        fd = paths.open_file(base, parts)
    except OSError:
        # One message whatever the reason: a link out must not tell whether its target exists.
        raise Refused(
            gettext("source: %(source)r is not a readable file in the data directory.") % {"source": source}
        ) from None
    if Path(source).suffix.lower() in CSV_SUFFIXES:
        # utf-8-sig: spreadsheets often write a byte-order mark before the header.
        return _read_csv(open(fd, newline="", encoding="utf-8-sig"))
    return _read_jsonl(open(fd, encoding="utf-8"), source)


def _read_csv(file: IO[str]) -> Iterator[dict]:
    with file:
        yield from csv.DictReader(file)


def _read_jsonl(file: IO[str], source: str) -> Iterator[Any]:
    with file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    gettext("source: %(source)s line %(line)d is not JSON: %(error)s.")
                    % {"source": source, "line": number, "error": exc.msg}
                ) from None


def number(value: Any) -> int | float | None:
    """The value as a finite number (`3`, `"2.5"`, `" 7 "`), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


def _field(record: Any, field: str, position: int) -> Any:
    if not isinstance(record, dict):
        raise ValueError(
            f"record {position} is {type(record).__name__}, not an object with fields; "
            "leave field empty to work on plain values."
        )
    return record.get(field)


def _summary(rows: Iterable[Any], field: str | None) -> dict:
    count = numeric = 0
    total: int | float = 0
    low = high = None
    for count, record in enumerate(rows, start=1):
        value = number(record if field is None else _field(record, field, count))
        if value is None:
            continue
        numeric += 1
        total += value
        low = value if low is None or value < low else low
        high = value if high is None or value > high else high
    result: dict[str, Any] = {"count": count}
    if field is None and not numeric:
        return result  # objects with no field named: there is nothing to add up
    if field is not None and count and not numeric:
        raise ValueError(f"field: {field!r} has no numeric value in any of the {count} record(s).")
    result.update(
        field=field,
        numeric_count=numeric,
        non_numeric_count=count - numeric,
        min=low,
        max=high,
        sum=total,
        mean=total / numeric if numeric else None,
    )
    return result


def _key(value: Any) -> bytes:
    # sort_keys: {"a": 1, "b": 2} and {"b": 2, "a": 1} are the same record.
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _deduplicate(rows: Iterable[Any], field: str | None) -> dict:
    seen: set[bytes] = set()
    count = 0
    for count, record in enumerate(rows, start=1):
        seen.add(_key(record if field is None else _field(record, field, count)))
    return {
        "count": count,
        "field": field,
        "count_before": count,
        "count_after": len(seen),
        "duplicates": count - len(seen),
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _validate(rows: Iterable[Any], field: str) -> dict:
    count = invalid = 0
    positions: list[int] = []
    for count, record in enumerate(rows, start=1):
        if not isinstance(record, dict) or _missing(record.get(field)):
            invalid += 1
            if len(positions) < INVALID_SAMPLE:
                positions.append(count)
    if invalid:
        logger.warning("%d of %d record(s) lack %r (first at record %d)", invalid, count, field, positions[0])
    return {
        "count": count,
        "field": field,
        "valid": count - invalid,
        "invalid": invalid,
        "invalid_records": positions,  # 1-based positions, at most INVALID_SAMPLE of them
    }


_OPERATIONS: dict[str, Callable[[Iterable[Any], Any], dict]] = {
    "summary": _summary,
    "deduplicate": _deduplicate,
    "validate": _validate,
}
