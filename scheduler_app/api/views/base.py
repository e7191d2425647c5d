"""Base classes every API view uses: the body-size check first, then DRF as configured, then
the refusal of query parameters the endpoint does not read (api/strict.py)."""

from __future__ import annotations

from rest_framework import mixins, viewsets
from rest_framework.views import APIView

from scheduler_app.api.errors import BodyLimitMixin
from scheduler_app.api.strict import StrictQueryMixin


class ApiView(BodyLimitMixin, StrictQueryMixin, APIView):
    pass


class ViewSet(BodyLimitMixin, StrictQueryMixin, viewsets.ViewSet):
    pass


class GenericViewSet(BodyLimitMixin, StrictQueryMixin, viewsets.GenericViewSet):
    pass


class ReadOnlyModelViewSet(BodyLimitMixin, StrictQueryMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ModelViewSet(BodyLimitMixin, StrictQueryMixin, viewsets.ModelViewSet):
    pass


__all__ = ["ApiView", "GenericViewSet", "ModelViewSet", "ReadOnlyModelViewSet", "ViewSet", "mixins"]
