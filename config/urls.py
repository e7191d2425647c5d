from django.contrib import admin
from django.urls import include, path

admin.site.site_url = "/"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # /api/, /scheduler/api/ (FastScheduler-compatible) and /metrics.
    path("", include("scheduler_app.api.urls")),
    # The console.
    path("", include("scheduler_app.web.urls")),
]
