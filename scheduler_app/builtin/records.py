"""tempora.process_data: summarise, deduplicate or validate records from a list or a file.

Records stream through one at a time, so a large CSV or JSON-lines file never sits in memory
whole (deduplicate keeps a 16-byte digest per distinct record).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OPERATIONS = ("summary", "deduplicate", "validate")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# validate reports the positions of at most this many invalid records.
INVALID_SAMPLE = 100


def process(
    records: list | None = None, source: str | os.PathLike | None = None, operation: str = "summary",
    field: str | None = None,
) -> dict:
    if operation not in OPERATIONS:
        raise ValueError(f"operation: {operation!r} is not one of {', '.join(OPERATIONS)}.")
    if (records is None) == (source is None):
        raise ValueError(
            "Give either records (a list) or source (a path to a .csv or .jsonl file), not both or neither."
        )
    if operation == "validate" and not field:
        raise ValueError("field: validate needs the field every record must have.")
    if records is not None and not isinstance(records, (list, tuple)):
        raise ValueError(f"records: expected a list of objects or numbers, not {type(records).__name__}.")
    rows = read(source) if source is not None else iter(records)
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


def read(source: str | os.PathLike) -> Iterator[Any]:
    """Records from a CSV file (a dict per row, keyed by the header) or a JSON-lines file."""
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + JSONL_SUFFIXES:
        raise ValueError(f"source: {str(source)!r} must end in .csv, .jsonl or .ndjson.")
    if not path.is_file():
        raise FileNotFoundError(f"source: {str(source)!r} does not exist or is not a file.")
    return _read_csv(path) if suffix in CSV_SUFFIXES else _read_jsonl(path)


def _read_csv(path: Path) -> Iterator[dict]:
    # utf-8-sig: spreadsheets often write a byte-order mark before the header.
    with open(path, newline="", encoding="utf-8-sig") as file:
        yield from csv.DictReader(file)


def _read_jsonl(path: Path) -> Iterator[Any]:
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"source: {path} line {number} is not JSON: {exc.msg}.") from None


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
        field=field, numeric_count=numeric, non_numeric_count=count - numeric,
        min=low, max=high, sum=total, mean=total / numeric if numeric else None,
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
        "count": count, "field": field, "count_before": count, "count_after": len(seen),
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
        "count": count, "field": field, "valid": count - invalid, "invalid": invalid,
        "invalid_records": positions,  # 1-based positions, at most INVALID_SAMPLE of them
    }


_OPERATIONS: dict[str, Callable[[Iterable[Any], Any], dict]] = {
    "summary": _summary,
    "deduplicate": _deduplicate,
    "validate": _validate,
}
