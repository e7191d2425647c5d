from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

admin.site.site_url = "/"

urlpatterns = [
    # Pages without an icon link (the admin, the API docs) make browsers ask for /favicon.ico.
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Tempora, as any host mounts it: the console, /api/, /scheduler/api/ and /metrics.
    path("", include("scheduler_app.urls")),
]
