"""A host that mounts all of Tempora under ops/, beside its own admin and pages."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

urlpatterns = [
    path("", lambda request: HttpResponse("the host's own home page"), name="home"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ops/", include("scheduler_app.urls")),
]
