"""A host that mounts only Tempora's REST API, at a place of its own choosing."""

from django.urls import include, path

urlpatterns = [path("internal/scheduler/", include("scheduler_app.urls.api"))]
