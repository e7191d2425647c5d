"""Everything Tempora serves, for one `include()` under any prefix the host chooses:

    path("ops/", include("scheduler_app.urls"))

mounts the console at ops/, the REST API at ops/api/, the FastScheduler-compatible API at
ops/scheduler/api/ and Prometheus' metrics at ops/metrics. Each part is also a module of its
own, for a host that wants only some, or each at its own place:

    path("scheduler/", include("scheduler_app.urls.console")),
    path("api/scheduler/", include("scheduler_app.urls.api")),

The namespaces (tempora, tempora-api, tempora-fastscheduler, tempora-metrics) come with the
modules, so links are reversed wherever the parts are mounted.
"""

from django.urls import include, path

urlpatterns = [
    path("api/", include("scheduler_app.urls.api")),
    path("scheduler/api/", include("scheduler_app.urls.fastscheduler")),
    path("", include("scheduler_app.urls.metrics")),
    path("", include("scheduler_app.urls.console")),
]
