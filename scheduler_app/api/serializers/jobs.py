"""Jobs as the API shows and accepts them: fields, nested writable triggers, and what the
scheduler knows about them (schedule in words, next run, last five results, counters).

Saving goes through services.job_create / job_update, the same calls the admin and the
console make; this module only checks the input's shape and shapes output (the service checks
the triggers, the arguments against the task's signature and the task's fences).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduler_app import permissions, services, validators
from scheduler_app.api.fields import BoundedDateTimeField, SafeJSONField
from scheduler_app.api.serializers.triggers import TriggerSerializer
from scheduler_app.api.strict import StrictModelSerializer, StrictSerializer
from scheduler_app.models import MAX_TRIGGERS, Execution, Job
from scheduler_app.querysets import recent_results


class RecentResultSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Execution
        fields = ["id", "status", "reason", "attempt", "scheduled_for", "started_at", "finished_at", "duration_seconds"]
        read_only_fields = fields

    def get_duration_seconds(self, obj) -> float | None:
        return obj.duration.total_seconds() if obj.duration is not None else None


class OwnerField(serializers.SlugRelatedField):
    """The owner's username. Users who may change everyone's jobs may give one to anyone; the
    others only name themselves (so the field tells them nothing about who else exists)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        users = get_user_model().objects.filter(is_active=True)
        if request is None or permissions.may_own(request.user, None):
            return users
        return users.filter(pk=request.user.pk)


class JobListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        jobs = list(data.all() if hasattr(data, "all") else data)
        Job.count_runs_used(jobs)  # each row's state, without a query per row
        return super().to_representation(jobs)


class JobSerializer(StrictModelSerializer):
    """A job: what to run (task, args, kwargs), when (triggers) and how (retries, overlap, window).

    `triggers`, when given, replaces every trigger of the job; omit it to keep them.
    """

    args = SafeJSONField(
        required=False,
        validators=[validators.validate_args],
        help_text='Positional arguments for the task, a JSON list, e.g. ["hello", 3].',
    )
    kwargs = SafeJSONField(
        required=False,
        validators=[validators.validate_kwargs],
        help_text='Keyword arguments for the task, a JSON object, e.g. {"message": "hi"}.',
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50),
        required=False,
        max_length=validators.MAX_TAGS,
        help_text='Lowercase labels, e.g. ["etl", "nightly"].',
    )
    owner = OwnerField(required=False, help_text="The owner's username; defaults to you.")
    start_at = BoundedDateTimeField(required=False, allow_null=True, help_text="No run before this instant.")
    end_at = BoundedDateTimeField(required=False, allow_null=True, help_text="No run after this instant.")
    triggers = TriggerSerializer(many=True, required=False, max_length=MAX_TRIGGERS)
    status = serializers.SerializerMethodField(help_text="active or paused.")
    state = serializers.SerializerMethodField(
        help_text="Where the job stands: scheduled, not_started (waits for start_at), paused, no_schedule "
        "(no trigger: runs only by hand), finished (max_runs used up, or its one-off times have passed), "
        "ended (end_at passed, or no run left before it), no_upcoming_run (none within the 30-year search), "
        "schedule_error (its fire times cannot be computed; see state_error).",
    )
    state_error = serializers.SerializerMethodField(help_text="Why the schedule cannot be computed; empty otherwise.")
    next_run_at = serializers.SerializerMethodField(
        help_text="When it runs next; null when it will not run (paused, finished, ended, no schedule...)."
    )
    schedule = serializers.SerializerMethodField(
        help_text="Every trigger in words, e.g. 'At 09:00, Monday through Friday (UTC)'."
    )
    last_results = serializers.SerializerMethodField(help_text="The last five finished runs, newest first.")

    class Meta:
        model = Job
        fields = [
            "id",
            *services.JOB_FIELDS,  # what a caller may set, as the services define it
            "status",
            "state",
            "state_error",
            "code_defined",
            "import_error",
            "triggers",
            "schedule",
            "next_run_at",
            "last_run_at",
            "last_status",
            "run_count",
            "failure_count",
            "last_results",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "code_defined",
            "import_error",
            "last_run_at",
            "last_status",
            "run_count",
            "failure_count",
            "created_at",
            "updated_at",
        ]
        list_serializer_class = JobListSerializer
        # Bounds and lengths come from the model's fields (their validators).

    # Output -----------------------------------------------------------------------------

    def get_status(self, job) -> str:
        return "paused" if job.paused else "active"

    @extend_schema_field(serializers.ChoiceField(choices=Job.State.choices))
    def get_state(self, job) -> str:
        return job.current_state.value

    def get_state_error(self, job) -> str:
        return job.current_state.error

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_next_run_at(self, job):
        upcoming = job.current_state.upcoming
        return serializers.DateTimeField().to_representation(upcoming) if upcoming else None

    def get_schedule(self, job) -> str:
        return job.schedule_description()

    def get_last_results(self, job) -> list[dict]:
        if not hasattr(job, "recent_results"):
            prefetch_related_objects([job], recent_results())
        return RecentResultSerializer(job.recent_results, many=True).data

    # Input ------------------------------------------------------------------------------

    def validate_tags(self, value: list[str]) -> list[str]:
        tags = validators.normalise_tags(value)
        validators.validate_tags(tags)
        return tags

    def create(self, validated_data: dict) -> Job:
        definitions = validated_data.pop("triggers", [])
        return services.job_create(triggers=definitions, actor=self.context["request"].user, **validated_data)

    def update(self, job: Job, validated_data: dict) -> Job:
        definitions = validated_data.pop("triggers", None)
        # Only what changes: a PUT that repeats a code-defined job's fields is not an edit.
        changed = {key: value for key, value in validated_data.items() if getattr(job, key) != value}
        return services.job_update(job=job, triggers=definitions, actor=self.context["request"].user, **changed)


class JobDuplicateSerializer(StrictSerializer):
    name = serializers.CharField(
        required=False, max_length=200, help_text="The copy's name; default '<name> (copy)'. The copy starts paused."
    )

    def validate_name(self, value: str) -> str:
        if Job.objects.filter(name=value).exists():
            raise serializers.ValidationError("A job with this name already exists.")
        return value


class RunNowSerializer(StrictSerializer):
    """A run's own arguments; each replaces the job's whole, for this run only. No body: the job's own."""

    args = SafeJSONField(required=False, help_text='Positional arguments for this run, a JSON list, e.g. ["hello", 3].')
    kwargs = SafeJSONField(
        required=False, help_text='Keyword arguments for this run, a JSON object, e.g. {"message": "hi"}.'
    )


class RunAcceptedSerializer(serializers.Serializer):
    execution_id = serializers.IntegerField(help_text="The run that was queued; follow it at /api/executions/{id}/.")
    status = serializers.CharField(help_text="The run's status now: 'scheduled' until the scheduler starts it.")
    url = serializers.CharField(help_text="Where to follow the run.")


class NextRunSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="The instant, UTC.")
    local = serializers.CharField(
        help_text="The same instant on the job's wall clock, e.g. '2026-03-08 03:00 EDT (America/New_York)'."
    )


class NextRunsSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    schedule = serializers.CharField()
    state = serializers.ChoiceField(choices=Job.State.choices, help_text="The job's state, as in the job.")
    error = serializers.CharField(help_text="Why the runs cannot be computed; empty otherwise.")
    next_runs = NextRunSerializer(many=True)
