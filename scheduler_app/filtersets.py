"""The list filters of the API and the console (django-filter FilterSets): one definition of each.

Each filter validates its value, so a malformed one is a 400 naming the parameter, never a
database error.
"""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField, MultipleChoiceField

from scheduler_app.models import Execution, Job

# Search reads text columns no index serves (error, output, ...), so it looks only among the newest
# SEARCH_WINDOW runs that match the other filters: a search costs the same at any history size.
# The console's page and the API's docs say so.
SEARCH_WINDOW = 10_000


def newest_runs(runs, count: int | None = None) -> tuple[models.QuerySet, bool]:
    """The newest `count` (SEARCH_WINDOW) of `runs` by scheduled_for then id, still a QuerySet to
    filter further; and whether that left older runs out (False: there were no more than that).

    The edge is found by walking an index in the lists' order (execution_recent, or
    execution_status_recent / execution_job_history under those filters) `count` rows deep.
    """
    count = count or SEARCH_WINDOW
    edge = list(runs.order_by("-scheduled_for", "-id").values_list("scheduled_for", "id")[count - 1 : count])
    if not edge:
        return runs, False
    at, pk = edge[0]
    # The range on scheduled_for alone lets the database start from the index; the OR only drops ties.
    return runs.filter(Q(scheduled_for__gt=at) | Q(id__gte=pk), scheduled_for__gte=at), True


TRIGGER_KINDS = [
    ("cron", "cron (presets included)"),
    ("interval", "interval"),
    ("once", "once"),
    ("daily", "daily preset"),
    ("weekly", "weekly preset"),
    ("hourly", "hourly preset"),
]


class IntegerFilter(django_filters.NumberFilter):
    """A whole number in the range of a database id (SQLite raises OverflowError beyond it)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class AnyOfField(MultipleChoiceField):
    """One or more choices; an empty value (`?status=`, a select left at "all") is no filter."""

    def clean(self, value):
        return super().clean([item for item in value or () if item != ""])


class AnyOfFilter(django_filters.MultipleChoiceFilter):
    """One or more choices of a column of the row itself: no join repeats a row, so no DISTINCT
    (django-filter's default), which PostgreSQL answers by sorting every matching row."""

    field_class = AnyOfField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, handed to the database in UTC.

    Year 9999 with a negative offset cannot be converted at all, and PostgreSQL refuses
    offsets beyond ±15:59 that Python accepts (+23:22): both would be a 500.
    """

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None:
            try:
                result = result.astimezone(UTC)
            except (OverflowError, ValueError):
                raise forms.ValidationError("Enter an instant between years 1 and 9998.", code="invalid") from None
        return result


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class JobFilter(django_filters.FilterSet):
    # The console's jobs list uses these filters too (web/filters.py, subclasses adding its own parameters): the labels are its words.
    group = django_filters.CharFilter(field_name="group", label=_("Group"), help_text="Jobs in this group.")
    tag = django_filters.CharFilter(method="filter_tag", label=_("Tag"), help_text="Jobs with this tag.")
    status = django_filters.ChoiceFilter(
        choices=[("active", "active"), ("paused", "paused")], method="filter_status", help_text="active or paused."
    )
    state = django_filters.ChoiceFilter(
        choices=Job.State.choices,
        method="filter_state",
        help_text="Jobs in this state (see the job's `state`), e.g. finished.",
    )
    task = django_filters.CharFilter(
        field_name="task", label=_("Task"), help_text="Jobs running this task, e.g. tempora.sample_job."
    )
    trigger_kind = django_filters.ChoiceFilter(
        choices=TRIGGER_KINDS, method="filter_trigger_kind", help_text="Jobs with a trigger of this kind."
    )
    owner = django_filters.CharFilter(field_name="owner__username", help_text="The owner's username.")
    code_defined = django_filters.BooleanFilter(
        help_text="Jobs defined in code (true) or through an interface (false)."
    )

    class Meta:
        model = Job
        fields = ["group", "tag", "status", "state", "task", "trigger_kind", "owner", "code_defined"]

    def filter_tag(self, queryset, name, value):
        return queryset.with_tag(value)

    def filter_status(self, queryset, name, value):
        return queryset.filter(paused=(value == "paused"))

    def filter_state(self, queryset, name, value):
        return queryset.in_state(value)

    def filter_trigger_kind(self, queryset, name, value):
        if value in ("daily", "weekly", "hourly"):
            matching = Job.objects.filter(triggers__preset=value)
        else:
            matching = Job.objects.filter(triggers__kind=value)
        # A subquery rather than a join: a job with two matching triggers is listed once.
        return queryset.filter(pk__in=matching.values("pk"))


class ExecutionFilter(django_filters.FilterSet):
    # The console's executions list uses these filters too (web/filters.py, subclasses adding its own parameters): the labels are its words.
    job = IntegerFilter(field_name="job_id", label=_("Job"), min_value=1, help_text="Runs of this job (its id).")
    job_name = django_filters.CharFilter(
        field_name="job_name", help_text="Runs of the job with exactly this name (the name it had when it ran)."
    )
    job_name_contains = django_filters.CharFilter(
        field_name="job_name",
        lookup_expr="icontains",
        label=_("Job name"),
        help_text="Runs of jobs whose name contains this, any case.",
    )
    status = AnyOfFilter(
        choices=Execution.Status.choices,
        label=_("Status"),
        help_text="One or more statuses: ?status=failed&status=timed_out",
    )
    reason = django_filters.ChoiceFilter(
        choices=Execution.Reason.choices, label=_("Reason"), help_text="Why the run happened."
    )
    group = django_filters.CharFilter(
        method="filter_job_field", field_name="group", label=_("Group"), help_text="Runs of jobs in this group."
    )
    task = django_filters.CharFilter(
        method="filter_job_field", field_name="task", help_text="Runs of jobs running this task."
    )
    scheduled_after = InstantFilter(
        field_name="scheduled_for",
        lookup_expr="gte",
        help_text="A date range, with scheduled_before: runs with scheduled_for >= this instant (ISO 8601, e.g. 2026-03-01T00:00:00Z).",
    )
    scheduled_before = InstantFilter(
        field_name="scheduled_for", lookup_expr="lt", help_text="Runs with scheduled_for < this instant (ISO 8601)."
    )
    finished_after = InstantFilter(
        field_name="finished_at", lookup_expr="gte", help_text="finished_at >= this instant."
    )
    finished_before = InstantFilter(field_name="finished_at", lookup_expr="lt", help_text="finished_at < this instant.")
    dead_letter = django_filters.BooleanFilter(help_text="Failed with no retries left.")

    class Meta:
        model = Execution
        fields = [
            "job",
            "job_name",
            "job_name_contains",
            "status",
            "reason",
            "group",
            "task",
            "scheduled_after",
            "scheduled_before",
            "finished_after",
            "finished_before",
            "dead_letter",
        ]

    def filter_job_field(self, queryset, name, value):
        # "Its job has ...", as EXISTS on the job's primary key rather than a join: a join lets
        # SQLite start from the matching jobs and sort all their runs; this keeps the list on its
        # ordering index (tests/test_query_plans.py).
        return queryset.filter(Exists(Job.objects.filter(pk=OuterRef("job_id"), **{name: value})))


class DeadLetterFilter(ExecutionFilter):
    acknowledged = django_filters.BooleanFilter(
        method="filter_acknowledged",
        help_text="true: only acknowledged ones; false: only new ones. Without it: new ones only.",
    )

    class Meta(ExecutionFilter.Meta):
        fields = [*ExecutionFilter.Meta.fields, "acknowledged"]

    def filter_acknowledged(self, queryset, name, value):
        return queryset.filter(acknowledged_at__isnull=not value)
