"""The console's list filters: the API's FilterSets (api/filters.py), with the parameters only
the console has (search, its status and sort, local days). A value a page cannot use, or a query
parameter it does not read, is an error shown on the page (and no rows), never every row as if
unfiltered."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.filtersets import ExecutionFilter, JobFilter, newest_runs
from scheduler_app.models import Execution, Job
from scheduler_app.web import keyset

JOB_SORTS = ("name", "group", "next_run_at", "last_run_at", "priority", "task")
# What the jobs list's status filter takes besides the states of Job.schedule_state.
JOB_FLAGS = {
    "failing": (_("Failing"), Q(last_status__in=list(Execution.FAILURES))),
    "broken": (_("Task missing"), ~Q(import_error="")),
}
JOB_STATUSES = [*Job.State.choices, *((name, label) for name, (label, _q) in JOB_FLAGS.items())]


class ConsoleFilters:
    """Mixed into the console's FilterSets: what is wrong with the query, in words."""

    # Parameters a page reads that are not filters (paging, the ticked rows).
    other_params: tuple[str, ...] = ("page",)

    def problems(self) -> list[str]:
        """Empty when the filters can be applied."""
        fields = self.form.fields
        found = [
            f"{fields[name].label}: {message}" if name in fields else str(message)
            for name, messages in self.form.errors.items()
            for message in messages
        ]
        for name in sorted(set(self.data) - set(fields) - set(self.other_params)):
            found.append(gettext("%(name)s is not a filter of this page.") % {"name": repr(name)})
        return found


class JobListFilter(ConsoleFilters, JobFilter):
    """The jobs list: the API's group, tag and task; its own search, status (a state or a flag) and sort."""

    other_params = ("page", "ids")

    q = django_filters.CharFilter(label=_("Search"), method="filter_q")
    status = django_filters.ChoiceFilter(label=_("Status"), choices=JOB_STATUSES, method="filter_console_status")
    sort = django_filters.ChoiceFilter(
        label=_("Sort"),
        method="filter_nothing",
        choices=[*((name, name) for name in JOB_SORTS), *((f"-{name}", f"-{name}") for name in JOB_SORTS)],
    )
    # The API's filters the console does not offer.
    state = trigger_kind = owner = code_defined = None

    class Meta:
        model = Job
        fields: list[str] = []

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value) | Q(task__icontains=value))

    def filter_console_status(self, queryset, name, value):
        return queryset.filter(JOB_FLAGS[value][1]) if value in JOB_FLAGS else queryset.in_state(value)

    def filter_nothing(self, queryset, name, value):
        return queryset  # the sort is applied last, in filter_queryset

    def filter_queryset(self, queryset):
        sort = self.form.cleaned_data.get("sort") or "name"
        field = sort.lstrip("-")
        # Jobs without a next (or last) run go last either way.
        order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
        return super().filter_queryset(queryset).order_by(order, "name")


class ExecutionListFilter(ConsoleFilters, ExecutionFilter):
    """The executions list: the API's job, status, reason and group, its job name (any part, any
    case) under the console's name; its own search, dead letters, and `from`/`to` as the viewer's days."""

    q = django_filters.CharFilter(label=_("Search"), method="filter_q")
    job_name = ExecutionFilter.declared_filters["job_name_contains"]
    dead = django_filters.ChoiceFilter(label=_("Dead letters"), choices=[("1", "1")], method="filter_dead")
    # The API's filters the console does not offer.
    job_name_contains = task = scheduled_after = scheduled_before = finished_after = finished_before = None
    dead_letter = None
    other_params = keyset.PARAMS

    class Meta:
        model = Execution
        fields: list[str] = []

    def __init__(self, data=None, *args, zone=None, **kwargs):
        self.zone = zone
        # After a search: whether it left older runs out (the page says which runs it searched).
        self.search_bounded: bool | None = None
        super().__init__(data, *args, **kwargs)

    def filter_q(self, queryset, name, value):
        return queryset  # applied last, in filter_queryset: the window is of the runs the other filters chose

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        value = self.form.cleaned_data.get("q")
        if not value:
            return queryset
        queryset, self.search_bounded = newest_runs(queryset)
        return queryset.filter(
            Q(error__icontains=value)
            | Q(output__icontains=value)
            | Q(job_name__icontains=value)
            | Q(traceback__icontains=value)
        )

    def filter_dead(self, queryset, name, value):
        return queryset.filter(dead_letter=True)

    def filter_from(self, queryset, name, value):
        return queryset.filter(scheduled_for__gte=datetime.combine(value, time(), self.zone))

    def filter_to(self, queryset, name, value):
        # Raises OverflowError for 9999-12-31, which has no next day (the view says so).
        return queryset.filter(scheduled_for__lt=datetime.combine(value + timedelta(days=1), time(), self.zone))


# The HTML inputs are "from" and "to", reserved words in Python: no class attribute can name them.
ExecutionListFilter.base_filters["from"] = django_filters.DateFilter(label=_("From"), method="filter_from")
ExecutionListFilter.base_filters["to"] = django_filters.DateFilter(label=_("To"), method="filter_to")


class HistoryFilter(ConsoleFilters, ExecutionFilter):
    """A job page's history: the API's status filter."""

    job = job_name = job_name_contains = reason = group = task = None
    scheduled_after = scheduled_before = finished_after = finished_before = dead_letter = None
    other_params = keyset.PARAMS

    class Meta:
        model = Execution
        fields: list[str] = []
