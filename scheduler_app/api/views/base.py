"""Base classes every API view uses: the body-size check first, then DRF as configured."""

from __future__ import annotations

from rest_framework import mixins, viewsets
from rest_framework.views import APIView

from scheduler_app.api.errors import BodyLimitMixin


class ApiView(BodyLimitMixin, APIView):
    pass


class ViewSet(BodyLimitMixin, viewsets.ViewSet):
    pass


class GenericViewSet(BodyLimitMixin, viewsets.GenericViewSet):
    pass


class ReadOnlyModelViewSet(BodyLimitMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ModelViewSet(BodyLimitMixin, viewsets.ModelViewSet):
    pass


__all__ = ["ApiView", "GenericViewSet", "ModelViewSet", "ReadOnlyModelViewSet", "ViewSet", "mixins"]
