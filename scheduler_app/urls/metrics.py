"""Prometheus' /metrics (namespace `tempora-metrics`), mounted where scrapers look for it."""

from scheduler_app.api.metrics import MetricsView
from scheduler_app.urls.routing import route

app_name = "tempora-metrics"

urlpatterns = [route("metrics", MetricsView, "metrics")]
