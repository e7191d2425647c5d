"""FastScheduler's REST endpoints, answered by Tempora's serializers and services.

Same paths (under /scheduler/api/), request bodies, response bodies and status codes as
FastScheduler's documentation; authentication and visibility are Tempora's: every call
needs a token or a session, and another user's job is "Job not found".
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Max, Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status as http
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from scheduler_app import services, statistics, tallies, validators
from scheduler_app.api.compat import schedule
from scheduler_app.api.compat import serializers as shapes
from scheduler_app.api.errors import validation_errors
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.jobs import JobSerializer
from scheduler_app.api.views.base import ApiView
from scheduler_app.models import Execution, Job
from scheduler_app.registry import registry

TAGS = ["fastscheduler"]
MAX_PER_JOB = 1000  # /status names the busiest jobs, not every job ever run
JOB_ID = OpenApiParameter("job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. job_12")
GROUP = OpenApiParameter("group", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. data_sync")
ERRORS = {400: shapes.DetailSerializer, 404: shapes.ErrorSerializer}
# Tempora's names for what FastScheduler's callers wrote, so an error names their field.
FIELD_NAMES = {"task": "func_name", "name": "job_name", "paused": "enabled", "triggers": "schedule_config"}
TRIGGER_FIELDS = {
    "interval_seconds": "interval",
    "cron_expression": "expression",
    "at": "time",
    "delay_seconds": "delay",
}


class BadRequest(APIException):
    status_code = http.HTTP_400_BAD_REQUEST


class JobNotFound(APIException):
    status_code = http.HTTP_404_NOT_FOUND

    def __init__(self, job_id: str):
        super().__init__({"error": "Job not found", "job_id": job_id})


def _messages(errors, prefix: str = "") -> list[tuple[str, str]]:
    """Nested serializer errors as (field, message) pairs in FastScheduler's field names."""
    pairs: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            key = str(key)
            if key.isdigit():  # the index of the (only) trigger
                name = prefix
            elif prefix == "schedule_config":
                name = f"schedule_config.{TRIGGER_FIELDS.get(key, key)}"
            elif prefix:
                name = f"{prefix}.{key}"
            else:
                name = FIELD_NAMES.get(key, key)
            pairs.extend(_messages(value, name))
    elif isinstance(errors, list):
        for item in errors:
            pairs.extend(_messages(item, prefix))
    else:
        pairs.append((prefix, str(errors)))
    return pairs


def bad_request(errors) -> BadRequest:
    pairs = _messages(errors)
    detail = "; ".join(
        f"{field}: {message}" if field and field != "non_field_errors" else message for field, message in pairs
    )
    fields: dict[str, list[str]] = {}
    for field, message in pairs:
        fields.setdefault(field or "non_field_errors", []).append(message)
    return BadRequest({"detail": detail or "Invalid request.", "errors": fields})


def _valid(serializer_class, data):
    form = serializer_class(data=data)
    if not form.is_valid():
        raise bad_request(form.errors)
    return form.validated_data


def _jobs(request):
    return Job.objects.visible_to(request.user)


def _job(request, job_id: str) -> Job:
    pk = schedule.parse_job_id(job_id)
    job = _jobs(request).filter(pk=pk).prefetch_related("triggers__calendar").first() if pk is not None else None
    if job is None:
        raise JobNotFound(job_id)
    return job


def _listing(jobs) -> list[dict]:
    """FastScheduler's job list: it drops a job that will never run again (a one-off that ran),
    and its clients read every `next_run` as a time. Such jobs are still found by their id."""
    jobs = list(jobs.prefetch_related("triggers__calendar").order_by("next_run_at", "id"))
    Job.count_runs_used(jobs)
    jobs = sorted(
        (job for job in jobs if schedule.next_run(job) is not None), key=lambda job: (schedule.next_run(job), job.pk)
    )
    ids = [job.pk for job in jobs]
    active = (
        Execution.objects.filter(job_id__in=ids, status__in=Execution.ACTIVE)
        .values("job_id")
        .annotate(attempt=Max("attempt"), running=Count("id", filter=Q(status=Execution.Status.RUNNING)))
    )
    by_job = {row["job_id"]: row for row in active}
    result = []
    for job in jobs:
        row = by_job.get(job.pk, {"attempt": 1, "running": 0})
        result.append(schedule.job_data(job, running=bool(row["running"]), retry_count=row["attempt"] - 1))
    return result


def _task_name(module: str, func: str) -> str:
    for candidate in (f"{module}.{func}" if module else func, func):
        if candidate in registry:
            return candidate
    raise BadRequest({"detail": f"Failed to create job. Make sure function {module}.{func} is registered."})


def _free_name(base: str) -> str:
    taken = set(Job.objects.filter(name__startswith=base).values_list("name", flat=True))
    if base not in taken:
        return base
    return next(f"{base} ({n})" for n in range(2, len(taken) + 3) if f"{base} ({n})" not in taken)


def _group_jobs(request, group: str):
    try:
        validators.validate_group(group)
    except DjangoValidationError:
        return Job.objects.none()  # no job can be in a group with that name
    return _jobs(request).in_group(group)


class CompatView(ApiView):
    """A FastScheduler endpoint: unknown query parameters are refused in FastScheduler's shape."""

    def unknown_input(self, errors: dict) -> Exception:
        return bad_request(errors)


def _save(serializer: JobSerializer) -> Job:
    if not serializer.is_valid():
        raise bad_request(serializer.errors)
    try:
        return serializer.save()
    except services.ServiceError:
        raise  # a 409, as in the REST API
    except DjangoValidationError as exc:  # the service checks the triggers and the arguments
        raise bad_request(validation_errors(exc)) from None


class JobsView(CompatView):
    query_serializer_class = shapes.JobsQuerySerializer

    @extend_schema(
        tags=TAGS,
        summary="List all jobs",
        operation_id="fastscheduler_jobs_list",
        description="Jobs that will run again, soonest first, as FastScheduler lists them: a job that never "
        "will (a one-off that ran, an ended window, no schedule) is left out; GET /jobs/{job_id} still answers it.",
        parameters=[OpenApiParameter("group", OpenApiTypes.STR, description="Only jobs in this group.")],
        responses={200: shapes.JobsSerializer, 400: shapes.DetailSerializer},
    )
    def get(self, request):
        query = _valid(shapes.JobsQuerySerializer, request.query_params)
        jobs = _group_jobs(request, query["group"]) if "group" in query else _jobs(request)
        return Response({"jobs": _listing(jobs)})

    @extend_schema(
        tags=TAGS,
        summary="Create a new job",
        operation_id="fastscheduler_jobs_create",
        request=shapes.CompatJobCreateSerializer,
        responses={201: shapes.CreatedSerializer, 400: shapes.DetailSerializer},
    )
    def post(self, request):
        data = _valid(shapes.CompatJobCreateSerializer, request.data)
        zone = data.get("timezone") or settings.TIME_ZONE
        try:
            trigger = schedule.trigger_for(data["schedule_type"], data["schedule_config"])
            schedule.check_once_ahead(trigger, zone, timezone.now())
        except schedule.CompatError as exc:
            raise BadRequest({"detail": exc.detail}) from None
        task = _task_name(data["func_module"], data["func_name"])
        fields = {
            "name": data.get("job_name") or _free_name(data["func_name"]),
            "task": task,
            "group": data["group"],
            "max_retries": data["max_retries"],
            "paused": not data["enabled"],
            "triggers": [trigger],
            "args": data.get("args", []),
            "kwargs": data.get("kwargs", {}),
            "timezone": zone,
        }
        if data.get("timeout") is not None:
            fields["timeout"] = math.ceil(data["timeout"])
        job = _save(JobSerializer(data=fields, context={"request": request}))
        body = {"success": True, "message": "Job created successfully", "job_id": schedule.job_id(job.pk)}
        return Response(body, status=http.HTTP_201_CREATED)


class JobView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="Get a specific job",
        operation_id="fastscheduler_job_get",
        parameters=[JOB_ID],
        responses={200: shapes.JobEnvelopeSerializer, 404: shapes.ErrorSerializer},
    )
    def get(self, request, job_id: str):
        job = _job(request, job_id)
        running = job.executions.filter(status=Execution.Status.RUNNING).exists()
        attempt = job.executions.filter(status__in=Execution.ACTIVE).aggregate(a=Max("attempt"))["a"] or 1
        return Response({"job": schedule.job_data(job, running=running, retry_count=attempt - 1, detail=True)})

    @extend_schema(
        tags=TAGS,
        summary="Update a job",
        operation_id="fastscheduler_job_update",
        description="Only the fields given change; null means unchanged.",
        parameters=[JOB_ID],
        request=shapes.CompatJobUpdateSerializer,
        responses={200: shapes.MessageSerializer, **ERRORS},
    )
    def put(self, request, job_id: str):
        job = _job(request, job_id)
        data = _valid(shapes.CompatJobUpdateSerializer, request.data)
        fields: dict = {}
        if data.get("max_retries") is not None:
            fields["max_retries"] = data["max_retries"]
        if data.get("timeout") is not None:
            fields["timeout"] = math.ceil(data["timeout"])
        if data.get("timezone") is not None:
            fields["timezone"] = data["timezone"]
        if data.get("enabled") is not None:
            fields["paused"] = not data["enabled"]
        if data.get("schedule_config") is not None or data.get("schedule_type"):
            try:
                trigger = schedule.merged_trigger(job, data.get("schedule_type"), data.get("schedule_config") or {})
                schedule.check_once_ahead(trigger, fields.get("timezone", job.timezone), timezone.now())
                fields["triggers"] = [trigger]
            except schedule.CompatError as exc:
                raise BadRequest({"detail": exc.detail}) from None
        _save(JobSerializer(job, data=fields, partial=True, context={"request": request}))
        return Response({"success": True, "message": f"Job {job_id} updated successfully"})

    @extend_schema(
        tags=TAGS,
        summary="Delete a job",
        operation_id="fastscheduler_job_delete",
        parameters=[JOB_ID],
        responses={200: shapes.MessageSerializer, 404: shapes.ErrorSerializer},
    )
    def delete(self, request, job_id: str):
        services.job_delete(job=_job(request, job_id), actor=request.user)
        return Response({"success": True, "message": f"Job {job_id} deleted successfully"})


class JobVerbView(CompatView):
    verb = ""
    done = ""

    def post(self, request, job_id: str):
        job = _job(request, job_id)
        extra = {}
        if self.verb in ("pause", "disable"):
            services.job_pause(job=job, actor=request.user)
        elif self.verb in ("resume", "enable"):
            services.job_resume(job=job, actor=request.user)
        elif self.verb == "run":
            extra["execution_id"] = services.job_run_now(job=job, actor=request.user).pk
        elif self.verb == "cancel":
            services.job_delete(job=job, actor=request.user)
        return Response({"success": True, "message": f"Job {job_id} {self.done}", **extra})


VERBS = {
    "pause": ("paused", "Pause a job", shapes.MessageSerializer),
    "resume": ("resumed", "Resume a paused job", shapes.MessageSerializer),
    "enable": ("enabled", "Enable a job (same as resume)", shapes.MessageSerializer),
    "disable": ("disabled", "Disable a job (same as pause)", shapes.MessageSerializer),
    "run": ("triggered", "Trigger immediate execution", shapes.RunSerializer),
    "cancel": ("cancelled", "Cancel and remove a job", shapes.MessageSerializer),
}


def _verb_view(verb: str) -> type[JobVerbView]:
    done, summary, answer = VERBS[verb]

    # A function of its own per verb: extend_schema annotates the function object it is given.
    def post(self, request, job_id: str):
        return JobVerbView.post(self, request, job_id)

    post = extend_schema(
        tags=TAGS,
        summary=summary,
        operation_id=f"fastscheduler_job_{verb}",
        parameters=[JOB_ID],
        request=None,
        responses={200: answer, 404: shapes.ErrorSerializer},
    )(post)
    return type(
        f"Job{verb.title()}View", (JobVerbView,), {"verb": verb, "done": done, "__doc__": summary, "post": post}
    )


VERB_VIEWS = {verb: _verb_view(verb) for verb in VERBS}


class StatusView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="Scheduler status and statistics",
        operation_id="fastscheduler_status",
        description="Statistics cover the jobs you can see.",
        responses=shapes.StatusSerializer,
    )
    def get(self, request):
        now = timezone.now()
        liveness = services.scheduler_liveness()
        running = liveness.status == "running"
        tallied = statistics.Tallied(request.user, now=now)
        with statistics.snapshot():
            figures = tallied.figures()
            per_job = tallied.per_job(now.date() - timedelta(days=tallies.KEEP_DAYS), limit=MAX_PER_JOB)
        failures = sum(figures.by_status[status] for status in Execution.FAILURES)
        runs = figures.by_status[Execution.Status.SUCCEEDED] + failures
        leader = liveness.leader
        figures_by_name: dict[str, dict[str, int]] = {}
        for row in per_job:
            named = figures_by_name.setdefault(row["job_name"], {"completed": 0, "failed": 0, "total_runs": 0})
            named["completed"] += row["succeeded"]
            named["failed"] += row["failed"]
            named["total_runs"] += row["runs"]
        answer = {
            "total_runs": runs,
            "total_failures": failures,
            "total_retries": figures.retries,
            "start_time": leader.started_at.timestamp() if leader else None,
            "per_job": figures_by_name,
            "active_jobs": _jobs(request).active().count(),
        }
        if leader:
            uptime = (now - leader.started_at).total_seconds()
            answer.update(uptime_seconds=uptime, uptime_readable=str(timedelta(seconds=int(uptime))))
        return Response({"running": running, "statistics": answer})


class HistoryView(CompatView):
    query_serializer_class = shapes.HistoryQuerySerializer

    @extend_schema(
        tags=TAGS,
        summary="Execution history",
        operation_id="fastscheduler_history",
        description="The last `limit` runs (default 50), oldest first.",
        parameters=[
            OpenApiParameter("func_name", OpenApiTypes.STR, description="Only runs of this function (or job name)."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="How many (1-10000, default 50)."),
        ],
        responses={200: shapes.HistorySerializer, 400: shapes.DetailSerializer},
    )
    def get(self, request):
        query = _valid(shapes.HistoryQuerySerializer, request.query_params)
        runs = Execution.objects.visible_to(request.user).select_related("job")
        if query.get("func_name"):
            name = query["func_name"]
            runs = runs.filter(Q(job__task=name) | Q(job__task__endswith=f".{name}") | Q(job_name=name))
        latest = list(runs.order_by("-scheduled_for", "-id")[: query.get("limit", 50)])
        return Response({"history": [schedule.history_data(run) for run in reversed(latest)]})


class DeadLettersView(CompatView):
    query_serializer_class = shapes.LimitQuerySerializer

    def _letters(self, request):
        return Execution.objects.visible_to(request.user).dead_letters()

    @extend_schema(
        tags=TAGS,
        summary="Dead letter queue (failed jobs)",
        operation_id="fastscheduler_dead_letters_list",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="How many (1-10000, default 100), newest first.")
        ],
        responses={200: shapes.DeadLettersSerializer, 400: shapes.DetailSerializer},
    )
    def get(self, request):
        query = _valid(shapes.LimitQuerySerializer, request.query_params)
        letters = self._letters(request).select_related("job")
        shown = letters.order_by("-finished_at", "-id")[: query.get("limit", 100)]
        return Response({"dead_letters": [schedule.history_data(run) for run in shown], "total": letters.count()})

    @extend_schema(
        tags=TAGS,
        summary="Clear the dead letter queue",
        operation_id="fastscheduler_dead_letters_clear",
        description="Acknowledges them; the runs stay in the history.",
        responses=shapes.ClearedSerializer,
    )
    def delete(self, request):
        cleared = services.dead_letter_acknowledge(executions=self._letters(request), actor=request.user)
        return Response({"success": True, "cleared": cleared})


class GroupsView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="List all job groups",
        operation_id="fastscheduler_groups_list",
        responses=shapes.GroupsSerializer,
    )
    def get(self, request):
        names = _jobs(request).order_by("group").values_list("group", flat=True).distinct()
        return Response({"groups": list(names)})


class GroupJobsView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="List all jobs in a group",
        operation_id="fastscheduler_group_jobs",
        parameters=[GROUP],
        responses=shapes.GroupJobsSerializer,
    )
    def get(self, request, group: str):
        return Response({"jobs": _listing(_group_jobs(request, group)), "group": group})


class GroupPauseView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="Pause all jobs in a group",
        operation_id="fastscheduler_group_pause",
        parameters=[GROUP],
        request=None,
        responses=shapes.GroupPausedSerializer,
    )
    def post(self, request, group: str):
        count = services.jobs_pause(jobs=_group_jobs(request, group), actor=request.user)
        return Response({"success": True, "paused": count, "message": f"Paused {count} job(s) in group: {group}"})


class GroupResumeView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="Resume all paused jobs in a group",
        operation_id="fastscheduler_group_resume",
        parameters=[GROUP],
        request=None,
        responses=shapes.GroupResumedSerializer,
    )
    def post(self, request, group: str):
        count = services.jobs_resume(jobs=_group_jobs(request, group), actor=request.user)
        return Response({"success": True, "resumed": count, "message": f"Resumed {count} job(s) in group: {group}"})


class GroupView(CompatView):
    @extend_schema(
        tags=TAGS,
        summary="Cancel all jobs in a group",
        operation_id="fastscheduler_group_cancel",
        parameters=[GROUP],
        responses=shapes.GroupCancelledSerializer,
    )
    def delete(self, request, group: str):
        jobs = _group_jobs(request, group)
        count = services.group_cancel(group=group, jobs=jobs, actor=request.user) if jobs.exists() else 0
        return Response({"success": True, "cancelled": count, "message": f"Cancelled {count} job(s) in group: {group}"})
