"""The API's search and ordering filters (their parameters named here, not by the host's
REST_FRAMEWORK); its FilterSets are scheduler_app/filtersets.py, shared with the console."""

from __future__ import annotations

from rest_framework import filters
from rest_framework.exceptions import ValidationError

from scheduler_app.filtersets import SEARCH_WINDOW, newest_runs


class SearchFilter(filters.SearchFilter):
    """DRF's search, with a malformed term answered as {"search": [...]} like any other parameter."""

    search_param = "search"

    def get_search_terms(self, request):
        try:
            return super().get_search_terms(request)
        except ValidationError as exc:
            raise ValidationError({self.search_param: exc.detail}) from None


class OrderingFilter(filters.OrderingFilter):
    """DRF's ordering, with a field the list cannot order by answered as a 400 naming `ordering`
    (DRF drops it and answers the default order, as if it had been honoured)."""

    ordering_param = "ordering"

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        unknown = [term for term in fields if term and term not in valid]
        if unknown:
            allowed = ", ".join(name for name, _label in self.get_valid_fields(queryset, view, {"request": request}))
            raise ValidationError({self.ordering_param: [f"Cannot order by {', '.join(unknown)}; one of: {allowed}."]})
        return valid


class HistorySearchFilter(SearchFilter):
    """Search in a run history: among the newest SEARCH_WINDOW runs that match the other filters
    (which ran before it), so a search never reads the whole history to fill a page."""

    search_description = (
        f"Text in the run's error or output, any case; looked for among the newest {SEARCH_WINDOW:,} runs "
        "that match the other filters."
    )

    def filter_queryset(self, request, queryset, view):
        if not self.get_search_terms(request):
            return queryset
        return super().filter_queryset(request, newest_runs(queryset)[0], view)
