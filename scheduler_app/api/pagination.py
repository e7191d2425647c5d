"""The API's paging.

Pagination: page numbers, `?page=2&page_size=100` (50 a page unless asked, at most 500), for
the lists that stay small (jobs, calendars, tokens, ...).

HistoryPagination: a cursor, for the run histories, which grow to millions of rows: each page
is read from an index in the list's order starting after the previous page's last row, so a
page costs the same at any depth and nothing counts the table. `next` and `previous` are links
(null at either end); there is no `count`.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class HistoryPagination(CursorPagination):
    """`?cursor=...` from a page's `next` or `previous` link, `?page_size=` as on every list.

    The view's `ordering` (or the `ordering` parameter) gives the order; the row id breaks ties
    in the same direction, so the order is total and each cursor names one place in an index.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor: use the next or previous link of a page."

    def get_ordering(self, request, queryset, view):
        ordering = tuple(super().get_ordering(request, queryset, view))
        if ordering and ordering[0].lstrip("-") != "id" and not any(f.lstrip("-") == "id" for f in ordering):
            ordering = (*ordering, "-id" if ordering[0].startswith("-") else "id")
        return ordering

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF's answer to a bad cursor; it is the client's input, so a 400 naming it
            raise self._invalid_cursor() from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, OverflowError):
            # A cursor that decodes but holds no valid place (edited by hand): the database refuses it.
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise self._invalid_cursor() from None

    def _invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
