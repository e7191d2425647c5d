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
    ordering_param = "ordering"


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
