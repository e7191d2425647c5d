"""/api/schema/, /api/docs/ (Swagger UI) and /api/redoc/ (ReDoc), served offline from the sidecar.

They need a login like every other endpoint; a browser that is not signed in is sent to the
login page and back, rather than shown a bare 401. Their pages (templates/api/) are
drf-spectacular's with the inline start-up code under the request's Content-Security-Policy
nonce, and without ReDoc's Google Fonts links: nothing is fetched from elsewhere.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from csp.constants import SELF
from csp.decorators import csp_update
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from scheduler_app.api.errors import BodyLimitMixin


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
    template_name = "scheduler_app/api/swagger_ui.html"


# What ReDoc's bundle needs beyond the site's policy. It writes one <style> (perfect-scrollbar's
# CSS) as it loads, before Redoc.init can hand it the nonce: allowed by its hash, and by the hash
# of the empty element it first inserts. Its search index runs in a worker made from a blob: URL.
# A new drf-spectacular-sidecar may change the CSS: the browser test then names the new hash.
REDOC_POLICY = {
    "style-src": ["'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
                  "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"],
    "worker-src": [SELF, "blob:"],
}


class RedocView(_SignInFirst, SpectacularRedocView):
    permission_classes = []
    template_name = "scheduler_app/api/redoc.html"

    @csp_update(REDOC_POLICY)
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
