"""/api/schema/, /api/docs/ (Swagger UI) and /api/redoc/ (ReDoc), served offline from the sidecar.

They need a login like every other endpoint; a browser that is not signed in is sent to the
login page and back, rather than shown a bare 401. Their pages (templates/api/) are
drf-spectacular's with the inline start-up code under the request's Content-Security-Policy
nonce, and without ReDoc's Google Fonts links: nothing is fetched from elsewhere.

drf-spectacular's settings for them are ours (api/schema.py, SPECTACULAR), applied per request
by tempora_schema(): the host's SPECTACULAR_SETTINGS describe the host's own API.
"""

from __future__ import annotations

from csp.constants import SELF
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from scheduler_app.api.errors import BodyLimitMixin, exception_handler
from scheduler_app.api.schema import SPECTACULAR, extend_schema, tempora_schema
from scheduler_app.api.views.base import AUTHENTICATION, SpectacularSchema
from scheduler_app.signin import redirect_to_sign_in


class _Ours:
    authentication_classes = AUTHENTICATION
    schema = SpectacularSchema()
    title = SPECTACULAR["TITLE"]

    def get_exception_handler(self):
        return exception_handler


class SchemaView(BodyLimitMixin, _Ours, SpectacularAPIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(exclude=True)  # the schema does not describe itself
    def get(self, request, *args, **kwargs):
        with tempora_schema():
            return super().get(request, *args, **kwargs)


class _SignInFirst(_Ours):
    permission_classes = []

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_sign_in(request.get_full_path())
        with tempora_schema():
            return super().get(request, *args, **kwargs)


class SwaggerView(_SignInFirst, SpectacularSwaggerView):
    template_name = "scheduler_app/api/swagger_ui.html"


# What ReDoc's bundle needs beyond the site's policy. It writes one <style> (perfect-scrollbar's
# CSS) as it loads, before Redoc.init can hand it the nonce: allowed by its hash, and by the hash
# of the empty element it first inserts. Its search index runs in a worker made from a blob: URL.
# A new drf-spectacular-sidecar may change the CSS: the browser test then names the new hash.
REDOC_POLICY = {
    "style-src": [
        "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    ],
    "worker-src": [SELF, "blob:"],
}


class RedocView(_SignInFirst, SpectacularRedocView):
    template_name = "scheduler_app/api/redoc.html"

    @csp_update(REDOC_POLICY)
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
