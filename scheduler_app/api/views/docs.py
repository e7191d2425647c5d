"""/api/schema/, /api/docs/ (Swagger UI) and /api/redoc/ (ReDoc), served offline from the sidecar.

They need a login like every other endpoint; a browser that is not signed in is sent to the
login page and back, rather than shown a bare 401.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import TemplateHTMLRenderer

from scheduler_app.api.errors import BodyLimitMixin


_FONT_LINKS = re.compile(r"<link[^>]*fonts\.(?:googleapis|gstatic)\.com[^>]*>\s*")


class SchemaView(BodyLimitMixin, SpectacularAPIView):
    permission_classes = [IsAuthenticated]


class _SignInFirst:
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return super().get(request, *args, **kwargs)


class SwaggerView(_SignInFirst, SpectacularSwaggerView):
    permission_classes = []


class OfflineTemplateRenderer(TemplateHTMLRenderer):
    """drf-spectacular's ReDoc page links Google Fonts; offline, the page uses local fonts instead."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        html = super().render(data, accepted_media_type, renderer_context)
        return _FONT_LINKS.sub("", html)


class RedocView(_SignInFirst, SpectacularRedocView):
    permission_classes = []
    renderer_classes = [OfflineTemplateRenderer]
