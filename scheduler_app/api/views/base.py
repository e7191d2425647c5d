"""Base classes every API view uses: the body-size check first, then DRF with Tempora's own
policies, then the refusal of query parameters the endpoint does not read (api/strict.py).

The policies are set here, on the views, not in REST_FRAMEWORK: the API answers the same in
any host, whatever the host's REST_FRAMEWORK says for its own APIs.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.views import APIView

from scheduler_app.api.authentication import TokenAuthentication
from scheduler_app.api.errors import BodyLimitMixin, exception_handler
from scheduler_app.api.fields import SafeJSONParser
from scheduler_app.api.filters import OrderingFilter, SearchFilter
from scheduler_app.api.pagination import Pagination
from scheduler_app.api.schema import TemporaAutoSchema
from scheduler_app.api.strict import StrictQueryMixin
from scheduler_app.api.throttling import WriteThrottle

AUTHENTICATION = (TokenAuthentication, SessionAuthentication)


class SpectacularSchema(ViewInspector):
    """A fresh TemporaAutoSchema (drf-spectacular's) for each view, as DRF's DefaultSchema gives
    one of REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] (one shared instance would be rebound to each view)."""

    def __get__(self, instance, owner):
        result = super().__get__(instance, owner)
        if not isinstance(result, SpectacularSchema):
            return result  # one set on this view (the schema generator's per-action schema)
        inspector = TemporaAutoSchema()
        inspector.view = instance
        return inspector


class TemporaAPI:
    """What REST_FRAMEWORK would otherwise decide."""

    authentication_classes = AUTHENTICATION
    permission_classes = (IsAuthenticated,)
    # JSON in and out (Swagger UI at api/docs/ is the API's browser); deeply nested JSON is a 400.
    renderer_classes = (JSONRenderer,)
    parser_classes = (SafeJSONParser,)
    content_negotiation_class = DefaultContentNegotiation
    throttle_classes = (WriteThrottle,)
    versioning_class = None
    schema = SpectacularSchema()

    def get_exception_handler(self):
        # Service errors name their field (400), state conflicts are 409, big bodies 413.
        return exception_handler


class TemporaLists(TemporaAPI):
    """And for the generic views, which list model rows."""

    filter_backends = (DjangoFilterBackend, SearchFilter, OrderingFilter)
    pagination_class = Pagination


class ApiView(BodyLimitMixin, StrictQueryMixin, TemporaAPI, APIView):
    pass


class ViewSet(BodyLimitMixin, StrictQueryMixin, TemporaAPI, viewsets.ViewSet):
    pass


class GenericViewSet(BodyLimitMixin, StrictQueryMixin, TemporaLists, viewsets.GenericViewSet):
    pass


class ReadOnlyModelViewSet(BodyLimitMixin, StrictQueryMixin, TemporaLists, viewsets.ReadOnlyModelViewSet):
    pass


class ModelViewSet(BodyLimitMixin, StrictQueryMixin, TemporaLists, viewsets.ModelViewSet):
    pass


__all__ = [
    "AUTHENTICATION",
    "ApiView",
    "GenericViewSet",
    "ModelViewSet",
    "ReadOnlyModelViewSet",
    "TemporaAPI",
    "ViewSet",
    "mixins",
]
