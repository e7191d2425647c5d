"""/api/jobs/: jobs, their verbs, and one job's history."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from scheduler_app import services, triggers
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.executions import ExecutionSerializer
from scheduler_app.api.serializers.jobs import (
    JobDuplicateSerializer,
    JobSerializer,
    NextRunsSerializer,
    RunAcceptedSerializer,
    RunNowSerializer,
)
from scheduler_app.api.views.base import GenericViewSet, ModelViewSet, mixins
from scheduler_app.api.views.executions import LIST_DEFERRED, HistoryList
from scheduler_app.filtersets import ExecutionFilter, JobFilter
from scheduler_app.models import Execution, Job

MAX_NEXT_RUNS = 100


class NextRunsQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(default=10, min_value=1, max_value=MAX_NEXT_RUNS)


@extend_schema_view(
    list=extend_schema(
        summary="List jobs",
        description="Your jobs (every job with the view_job permission). Filter, search in name and description, order, paginate.",
    ),
    create=extend_schema(
        summary="Create a job", description="With nested `triggers` (see the Trigger schema for every shape)."
    ),
    retrieve=extend_schema(summary="A job with its triggers, schedule, next run, last five results and counters"),
    update=extend_schema(
        summary="Replace a job's fields", description="`triggers`, when given, replaces all triggers."
    ),
    partial_update=extend_schema(summary="Change some of a job's fields"),
    destroy=extend_schema(summary="Delete a job", description="Its history stays; runs not yet started are cancelled."),
)
@extend_schema(tags=["jobs"])
class JobViewSet(ModelViewSet):
    serializer_class = JobSerializer
    filterset_class = JobFilter
    search_fields = ["name", "description"]
    ordering_fields = [
        "name",
        "priority",
        "next_run_at",
        "last_run_at",
        "created_at",
        "updated_at",
        "run_count",
        "failure_count",
    ]
    ordering = ["name"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        jobs = Job.objects.visible_to(self.request.user).select_related("owner")
        if self.action in ("list", "retrieve", "update", "partial_update"):
            jobs = jobs.prefetch_related("triggers__calendar").with_recent_results()
        return jobs

    def perform_update(self, serializer):
        serializer.save()
        # Re-read with the prefetches the answer needs (the save replaced the triggers).
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_destroy(self, job: Job) -> None:
        services.job_delete(job=job, actor=self.request.user)

    def _changed(self, job: Job) -> Response:
        return Response(JobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(summary="Pause a job", request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        job = services.job_pause(job=self.get_object(), actor=request.user)
        return self._changed(job)

    @extend_schema(
        summary="Resume a paused job",
        description="It plans from now: runs missed while paused are not caught up.",
        request=None,
        responses=JobSerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        job = services.job_resume(job=self.get_object(), actor=request.user)
        return self._changed(job)

    @extend_schema(summary="Enable a job (the same as resume)", request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        return self.resume(request, pk)

    @extend_schema(summary="Disable a job (the same as pause)", request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        return self.pause(request, pk)

    @extend_schema(
        summary="Run a job now",
        description=(
            "Records a manual run and answers its Execution id at once; the scheduler starts it within about a "
            "second. `args` and `kwargs`, when given, are this run's arguments instead of the job's (each replaces "
            "the job's whole); they must fit the task's signature (400 naming the field). The run records them."
        ),
        request=RunNowSerializer,
        responses={202: RunAcceptedSerializer},
    )
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        job = self.get_object()
        form = RunNowSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        execution = services.job_run_now(job=job, actor=request.user, **form.validated_data)
        # reverse() spells the routes' optional slash as none; the API's canonical form has one.
        url = reverse("tempora-api:execution-detail", args=[execution.pk]) + "/"
        body = {"execution_id": execution.pk, "status": execution.status, "url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Copy a job",
        description="The copy gets its triggers and starts paused, so it never doubles the original's runs.",
        request=JobDuplicateSerializer,
        responses={201: JobSerializer},
    )
    @action(detail=True, methods=["post"])
    def duplicate(self, request, pk=None):
        job = self.get_object()
        form = JobDuplicateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        copy = services.job_duplicate(job=job, name=form.validated_data.get("name"), actor=request.user)
        return Response(JobSerializer(copy, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The next runs of a job",
        parameters=[
            OpenApiParameter("count", OpenApiTypes.INT, description=f"How many (1-{MAX_NEXT_RUNS}, default 10).")
        ],
        responses=NextRunsSerializer,
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="next-runs",
        filter_backends=[],
        pagination_class=None,
        query_serializer_class=NextRunsQuerySerializer,
    )
    def next_runs(self, request, pk=None):
        job = self.get_object()
        query = NextRunsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        now = timezone.now()
        runs, error = job.next_runs_or_error(after=now, count=query.validated_data["count"])
        return Response(
            {
                "timezone": job.timezone,
                "schedule": job.schedule_description(),
                "state": job.schedule_state(now=now).value,
                "error": error,
                "next_runs": [{"at": at, "local": triggers.format_local(at, job.zone)} for at in runs],
            }
        )


@extend_schema(tags=["jobs"])
@extend_schema_view(
    list=extend_schema(
        summary="One job's history",
        description="Its executions, newest first; the same filters, paging and search as /api/executions/.",
        parameters=[OpenApiParameter("job_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The job's id.")],
    )
)
class JobExecutionViewSet(HistoryList, mixins.ListModelMixin, GenericViewSet):
    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Execution.objects.none()
        job = get_object_or_404(Job.objects.visible_to(self.request.user), pk=self.kwargs["job_pk"])
        return Execution.objects.filter(job=job).select_related("requested_by").defer(*LIST_DEFERRED)
