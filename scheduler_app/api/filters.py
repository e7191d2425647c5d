"""The API's search and ordering filters (their parameters named here, not by the host's
REST_FRAMEWORK); its FilterSets are scheduler_app/filtersets.py, shared with the console."""

from __future__ import annotations

from rest_framework import filters
from rest_framework.exceptions import ValidationError


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
