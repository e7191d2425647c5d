"""/api/groups/: jobs by group, with counts; pause, resume or cancel a whole group.

A group exists for a user while they can see a job in it: a group holding only other
users' jobs is a 404, like any other object of theirs.
"""

from __future__ import annotations

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from scheduler_app import services
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.schedules import GroupChangeSerializer, GroupSerializer
from scheduler_app.api.views.base import ViewSet
from scheduler_app.models import Job

NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The group's name, e.g. 'etl'.")


def _summaries(jobs):
    return (
        jobs.order_by()
        .values("group")
        .annotate(
            jobs_count=Count("id"),
            active=Count("id", filter=Q(paused=False)),
            paused_count=Count("id", filter=Q(paused=True)),
            runs=Coalesce(Sum("run_count"), 0),
            failures=Coalesce(Sum("failure_count"), 0),
            next_run=Min("next_run_at", filter=Q(paused=False)),
        )
        .order_by("group")
    )


def _shape(row) -> dict:
    return {
        "name": row["group"],
        "jobs": row["jobs_count"],
        "active": row["active"],
        "paused": row["paused_count"],
        "runs": row["runs"],
        "failures": row["failures"],
        "next_run_at": row["next_run"],
    }


@extend_schema(tags=["groups"])
class GroupViewSet(ViewSet):
    lookup_field = "name"
    lookup_value_regex = r"[\w.-]{1,100}"

    def _jobs(self, name: str | None = None):
        jobs = Job.objects.visible_to(self.request.user)
        if name is None:
            return jobs
        jobs = jobs.in_group(name)
        if not jobs.exists():
            raise NotFound(f"No group {name!r} among your jobs.")
        return jobs

    @extend_schema(summary="List groups with their counts", responses=GroupSerializer(many=True))
    def list(self, request):
        return Response([_shape(row) for row in _summaries(self._jobs())])

    @extend_schema(summary="One group with its counts", parameters=[NAME], responses=GroupSerializer)
    def retrieve(self, request, name=None):
        return Response(_shape(_summaries(self._jobs(name)).get()))

    @extend_schema(
        summary="Pause every job in a group", parameters=[NAME], request=None, responses=GroupChangeSerializer
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, name=None):
        count = services.group_pause(group=name, jobs=self._jobs(name), actor=request.user)
        return Response({"group": name, "paused": count})

    @extend_schema(
        summary="Resume every paused job in a group", parameters=[NAME], request=None, responses=GroupChangeSerializer
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, name=None):
        count = services.group_resume(group=name, jobs=self._jobs(name), actor=request.user)
        return Response({"group": name, "resumed": count})

    @extend_schema(
        summary="Cancel a group",
        description="Deletes every job in the group you can see and answers how many; their history stays.",
        parameters=[NAME],
        responses=GroupChangeSerializer,
    )
    def destroy(self, request, name=None):
        count = services.group_cancel(group=name, jobs=self._jobs(name), actor=request.user)
        return Response({"group": name, "cancelled": count})
