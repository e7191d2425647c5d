"""/api/tasks/: the registered tasks a job can run, with their parameters."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from scheduler_app import permissions
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.schedules import TaskSerializer
from scheduler_app.api.views.base import ViewSet
from scheduler_app.registry import TaskInfo, registry


def _json_default(value):
    """A parameter's default as JSON, or its repr when it has no JSON form."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def task_data(info: TaskInfo) -> dict:
    return {
        "name": info.name,
        "description": info.description,
        "parameters": [
            {
                "name": p.name,
                "kind": p.kind,
                "required": p.required,
                "default": _json_default(p.default),
                "annotation": p.annotation,
            }
            for p in info.parameters
        ],
    }


@extend_schema(tags=["tasks"])
class TaskViewSet(ViewSet):
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"

    @extend_schema(
        summary="List the tasks you may schedule",
        description="Tasks that declare a permission you lack are left out.",
        responses=TaskSerializer(many=True),
    )
    def list(self, request):
        return Response([task_data(info) for info in permissions.tasks_for(request.user)])

    @extend_schema(
        summary="One registered task",
        parameters=[
            OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. tempora.sample_job")
        ],
        responses=TaskSerializer,
    )
    def retrieve(self, request, name=None):
        if name not in registry:
            raise NotFound(f"No task is registered as {name!r}.")
        return Response(task_data(registry.get(name)))
