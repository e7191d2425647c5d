"""The console's list filters as forms: a value a page cannot use, or a query parameter it does
not read, is an error shown on the page (and no rows), never every row as if unfiltered."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.models import Execution, Job

JOB_SORTS = ("name", "group", "next_run_at", "last_run_at", "priority", "task")
# What the jobs list's status filter takes besides the states of Job.schedule_state.
JOB_FLAGS = {
    "failing": (_("Failing"), Q(last_status__in=list(Execution.FAILURES))),
    "broken": (_("Task missing"), ~Q(import_error="")),
}
JOB_STATUSES = [*Job.State.choices, *((name, label) for name, (label, _q) in JOB_FLAGS.items())]


class FilterForm(forms.Form):
    # Parameters a page reads that are not filters (paging, the ticked rows).
    other_params: tuple[str, ...] = ("page",)

    def problems(self) -> list[str]:
        """What is wrong with the query, in words; empty when the filters can be applied."""
        found = [
            f"{self.fields[name].label}: {message}" if name in self.fields else str(message)
            for name, messages in self.errors.items() for message in messages
        ]
        for name in sorted(set(self.data) - set(self.fields) - set(self.other_params)):
            found.append(gettext("%(name)s is not a filter of this page.") % {"name": repr(name)})
        return found


class JobFilterForm(FilterForm):
    other_params = ("page", "ids")

    q = forms.CharField(label=_("Search"), required=False)
    group = forms.CharField(label=_("Group"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", ""), *JOB_STATUSES])
    task = forms.CharField(label=_("Task"), required=False)
    tag = forms.CharField(label=_("Tag"), required=False)
    sort = forms.ChoiceField(
        label=_("Sort"), required=False,
        choices=[("", ""), *((name, name) for name in JOB_SORTS), *((f"-{name}", f"-{name}") for name in JOB_SORTS)],
    )


class ExecutionFilterForm(FilterForm):
    q = forms.CharField(label=_("Search"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", ""), *Execution.Status.choices])
    reason = forms.ChoiceField(label=_("Reason"), required=False, choices=[("", ""), *Execution.Reason.choices])
    job = forms.IntegerField(label=_("Job"), required=False, min_value=1, max_value=2**63 - 1)
    job_name = forms.CharField(label=_("Job name"), required=False, help_text=_("Part of the job's name, any case."))
    group = forms.CharField(label=_("Group"), required=False)
    dead = forms.ChoiceField(label=_("Dead letters"), required=False, choices=[("", ""), ("1", "1")])
    # The HTML inputs are "from" and "to" (reserved words in Python): see __init__.
    from_day = forms.DateField(label=_("From"), required=False)
    to_day = forms.DateField(label=_("To"), required=False)

    def __init__(self, data=None, **kwargs):
        if data is not None:
            data = data.copy()
            for html, field in (("from", "from_day"), ("to", "to_day")):
                if html in data:
                    data[field] = data.pop(html)[-1]
        super().__init__(data, **kwargs)


class HistoryFilterForm(FilterForm):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", ""), *Execution.Status.choices])
