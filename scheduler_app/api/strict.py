"""Unknown input is a 400 naming it, never dropped (DRF drops body keys and query parameters
it does not know, so `?job_name=x` listed every run and `metadata` on a job was lost).

- StrictFieldsMixin, mixed into every serializer that reads a body: a key that is not one of
  its fields is refused by name. Read-only fields are known (they are ignored, as documented),
  so a job read with GET can be sent back with PUT.
- check_query_params, run by every API view before its handler: a query parameter the
  endpoint does not read is refused by name. An endpoint reads `format`; the paginator's,
  search's and ordering's parameters where it pages, searches or orders; its filterset's
  filters; and the fields of its `query_serializer_class`.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters, serializers
from rest_framework.settings import api_settings


class StrictFieldsMixin:
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = [key for key in data if key not in self.fields and key != api_settings.URL_FORMAT_OVERRIDE]
            if unknown:
                writable = ", ".join(name for name, field in self.fields.items() if not field.read_only)
                message = gettext("Unknown field; the fields are: %(known)s.") % {"known": writable}
                raise serializers.ValidationError({str(key): [message] for key in unknown})
        return super().to_internal_value(data)


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    pass


def known_query_params(view) -> set[str]:
    """The query parameters `view` reads (see the module docstring)."""
    known = {api_settings.URL_FORMAT_OVERRIDE}
    backends = getattr(view, "filter_backends", ()) or ()
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        known |= {
            name
            for name in (
                getattr(paginator, "page_query_param", None),
                getattr(paginator, "cursor_query_param", None),
                getattr(paginator, "page_size_query_param", None),
            )
            if name
        }
    if getattr(view, "search_fields", None):
        known |= {backend.search_param for backend in backends if issubclass(backend, filters.SearchFilter)}
    known |= {backend.ordering_param for backend in backends if issubclass(backend, filters.OrderingFilter)}
    if any(issubclass(b, DjangoFilterBackend) for b in backends):
        filterset = getattr(view, "filterset_class", None)
        known |= set(filterset.base_filters) if filterset else set(getattr(view, "filterset_fields", None) or ())
    query_serializer = getattr(view, "query_serializer_class", None)
    if query_serializer is not None:
        known |= set(query_serializer().fields)
    return known


def unknown_query_params(view, request) -> dict[str, list[str]]:
    """{parameter: [why]} for each query parameter `view` does not read; empty when all are known."""
    known = known_query_params(view)
    unknown = [name for name in request.query_params if name not in known]
    if not unknown:
        return {}
    message = gettext("Unknown query parameter; this endpoint reads: %(known)s.") % {"known": ", ".join(sorted(known))}
    return {name: [message] for name in unknown}


class StrictQueryMixin:
    """Mixed into every API view: unknown query parameters are refused before the handler runs."""

    # The serializer that reads the endpoint's own query parameters (also an @action keyword).
    query_serializer_class = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        errors = unknown_query_params(self, request)
        if errors:
            raise self.unknown_input(errors)

    def unknown_input(self, errors: dict) -> Exception:
        return serializers.ValidationError(errors)
