"""Newer / Older pages for the console's run histories (keyset paging).

A page is read from an index in the list's order (newest first by `field`, then id), starting
after the row its link names: `?older=<field value>_<id>` for the runs before that row,
`?newer=...` for the ones after it. A page costs the same at any depth, and nothing counts or
sorts the whole history, which grows to millions of rows (issue 11). Pages have no numbers
and there is no total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _

# The query parameters a history page reads for its place (besides its filters).
PARAMS = ("older", "newer")


class BadCursor(ValueError):
    """A Newer / Older link edited into something that names no place."""


@dataclass
class KeysetPage:
    rows: list
    newer_url: str | None  # None on the newest page
    older_url: str | None  # None on the oldest page
    newest_url: str | None  # back to the start, when this is not the newest page

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_other_pages(self) -> bool:
        return bool(self.newer_url or self.older_url)


def _token(row, field: str) -> str:
    return f"{getattr(row, field).isoformat()}_{row.pk}"


def _parse(token: str) -> tuple[datetime, int]:
    at, _sep, pk = token.rpartition("_")
    try:
        when, number = datetime.fromisoformat(at), int(pk)
    except ValueError:
        raise BadCursor(_("This page link is not valid; start again from the newest runs.")) from None
    if when.tzinfo is None or not 0 < number < 2**63:
        raise BadCursor(_("This page link is not valid; start again from the newest runs."))
    return when, number


def _url(request: HttpRequest, **place: str) -> str:
    params = request.GET.copy()
    for name in PARAMS:
        params.pop(name, None)
    params.update(place)
    return "?" + params.urlencode()


def keyset_page(request: HttpRequest, rows, *, per_page: int, field: str = "scheduled_for") -> KeysetPage:
    """One page of `rows` (a QuerySet, filtered) newest first by (`field`, id), from the place the
    request's `older` or `newer` parameter names. Raises BadCursor for a link that names none."""
    older, newer = request.GET.get("older"), request.GET.get("newer")
    chunk, has_newer, has_older = _read(rows, older=older, newer=newer, per_page=per_page, field=field)
    if newer and not has_newer:  # back at the top: the newest page, full, as its own link shows it
        older = newer = None
        chunk, has_newer, has_older = _read(rows, older=None, newer=None, per_page=per_page, field=field)
    return KeysetPage(
        rows=chunk,
        newer_url=_url(request, newer=_token(chunk[0], field)) if chunk and has_newer else None,
        older_url=_url(request, older=_token(chunk[-1], field)) if chunk and has_older else None,
        newest_url=_url(request) if older or newer else None,
    )


def _read(rows, *, older: str | None, newer: str | None, per_page: int, field: str) -> tuple[list, bool, bool]:
    """The page's rows newest first, whether newer ones exist, whether older ones do."""
    if older:
        at, pk = _parse(older)
        # The range on `field` alone lets the database start from the index; the OR only drops ties.
        chunk = rows.filter(Q(**{f"{field}__lt": at}) | Q(pk__lt=pk), **{f"{field}__lte": at})
        chunk = list(chunk.order_by(f"-{field}", "-pk")[: per_page + 1])
        return chunk[:per_page], True, len(chunk) > per_page
    if newer:
        at, pk = _parse(newer)
        chunk = rows.filter(Q(**{f"{field}__gt": at}) | Q(pk__gt=pk), **{f"{field}__gte": at})
        chunk = list(chunk.order_by(field, "pk")[: per_page + 1])
        return chunk[:per_page][::-1], len(chunk) > per_page, True
    chunk = list(rows.order_by(f"-{field}", "-pk")[: per_page + 1])
    return chunk[:per_page], False, len(chunk) > per_page


def empty_page() -> KeysetPage:
    return KeysetPage(rows=[], newer_url=None, older_url=None, newest_url=None)


def page_or_problems(
    request: HttpRequest, rows, *, per_page: int, field: str = "scheduled_for", problems: list[str] = ()
) -> tuple[KeysetPage, list[str]]:
    """The page, or no row and what is wrong: the filters' `problems`, or a bad link."""
    if problems:
        return empty_page(), list(problems)
    try:
        return keyset_page(request, rows, per_page=per_page, field=field), []
    except BadCursor as exc:
        return empty_page(), [str(exc)]
