"""The API's routes: /api/ (Tempora), /scheduler/api/ (FastScheduler-compatible), /metrics."""

urlpatterns: list = []
