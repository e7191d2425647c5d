"""The API's routes: /api/ (Tempora), /scheduler/api/ (FastScheduler-compatible), /metrics.

Every route takes its trailing slash or leaves it: `POST /api/groups/etl/pause` and
`POST /api/groups/etl/pause/` are the same call (a redirect would lose a POST body).
"""

from django.urls import include, re_path
from rest_framework.routers import Route, SimpleRouter

from scheduler_app.api import schema  # noqa: F401  (registers the token scheme with drf-spectacular)
from scheduler_app.api.compat import views as compat
from scheduler_app.api.metrics import MetricsView
from scheduler_app.api.views.calendars import CalendarViewSet
from scheduler_app.api.views.docs import RedocView, SchemaView, SwaggerView
from scheduler_app.api.views.executions import DeadLetterViewSet, ExecutionViewSet
from scheduler_app.api.views.groups import GroupViewSet
from scheduler_app.api.views.health import HealthView
from scheduler_app.api.views.jobs import JobExecutionViewSet, JobViewSet
from scheduler_app.api.views.scheduler import SchedulerStatusView, SchedulerViewSet
from scheduler_app.api.views.schedules import CronPresetsView, CronValidateView, SchedulePreviewView
from scheduler_app.api.views.stats import StatsView
from scheduler_app.api.views.tasks import TaskViewSet
from scheduler_app.api.views.tokens import TokenViewSet

OPTIONAL_SLASH = "/?"


class Router(SimpleRouter):
    """DRF's router, plus DELETE on a list route for viewsets with a `clear` method."""

    routes = [
        Route(
            url=route.url, mapping={**route.mapping, "delete": "clear"}, name=route.name,
            detail=route.detail, initkwargs=route.initkwargs,
        )
        if isinstance(route, Route) and route.name == "{basename}-list"
        else route
        for route in SimpleRouter.routes
    ]

    def __init__(self):
        super().__init__()
        self.trailing_slash = OPTIONAL_SLASH


def route(pattern: str, view, name: str):
    return re_path(rf"^{pattern}{OPTIONAL_SLASH}$", view.as_view(), name=name)


router = Router()
router.register("jobs", JobViewSet, basename="job")
router.register(r"jobs/(?P<job_pk>[0-9]+)/executions", JobExecutionViewSet, basename="job-executions")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("dead-letters", DeadLetterViewSet, basename="dead-letter")
router.register("groups", GroupViewSet, basename="group")
router.register("calendars", CalendarViewSet, basename="calendar")
router.register("tasks", TaskViewSet, basename="task")
router.register("scheduler", SchedulerViewSet, basename="scheduler")
router.register("tokens", TokenViewSet, basename="token")

api = [
    route("cron/validate", CronValidateView, "cron-validate"),
    route("cron/presets", CronPresetsView, "cron-presets"),
    route("schedules/preview", SchedulePreviewView, "schedule-preview"),
    route("scheduler", SchedulerStatusView, "scheduler"),
    route("stats", StatsView, "stats"),
    route("health", HealthView, "health"),
    route("schema", SchemaView, "schema"),
    re_path(r"^docs/?$", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^redoc/?$", RedocView.as_view(url_name="api:schema"), name="redoc"),
    *router.urls,
]

JOB = r"jobs/(?P<job_id>[^/]+)"
GROUP = r"groups/(?P<group>[^/]+)"
fastscheduler = [
    route("status", compat.StatusView, "status"),
    route("jobs", compat.JobsView, "jobs"),
    route(JOB, compat.JobView, "job"),
    *(route(f"{JOB}/{verb}", view, f"job-{verb}") for verb, view in compat.VERB_VIEWS.items()),
    route("history", compat.HistoryView, "history"),
    route("dead-letters", compat.DeadLettersView, "dead-letters"),
    route("groups", compat.GroupsView, "groups"),
    route(f"{GROUP}/jobs", compat.GroupJobsView, "group-jobs"),
    route(f"{GROUP}/pause", compat.GroupPauseView, "group-pause"),
    route(f"{GROUP}/resume", compat.GroupResumeView, "group-resume"),
    route(GROUP, compat.GroupView, "group"),
]

urlpatterns = [
    re_path(r"^api/", include((api, "api"))),
    re_path(r"^scheduler/api/", include((fastscheduler, "fastscheduler"))),
    route("metrics", MetricsView, "metrics"),
]
