"""The REST API (namespace `tempora-api`), mounted at api/ by scheduler_app.urls."""

from django.urls import re_path

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
from scheduler_app.urls.routing import Router, route

app_name = "tempora-api"

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

urlpatterns = [
    route("cron/validate", CronValidateView, "cron-validate"),
    route("cron/presets", CronPresetsView, "cron-presets"),
    route("schedules/preview", SchedulePreviewView, "schedule-preview"),
    route("scheduler", SchedulerStatusView, "scheduler"),
    route("stats", StatsView, "stats"),
    route("health", HealthView, "health"),
    route("schema", SchemaView, "schema"),
    re_path(r"^docs/?$", SwaggerView.as_view(url_name="tempora-api:schema"), name="docs"),
    re_path(r"^redoc/?$", RedocView.as_view(url_name="tempora-api:schema"), name="redoc"),
    *router.urls,
]
