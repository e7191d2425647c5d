"""Run history across jobs, one run's page, and retrying or cancelling a run."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scheduler_app import filtersets, services
from scheduler_app.models import Execution
from scheduler_app.web import base, keyset
from scheduler_app.web.filters import ExecutionListFilter

# What the console's run lists do not show (partials/execution_rows.html, dead_letters.html):
# left in the database.
LIST_DEFERRED = ("args", "kwargs", "result", "output", "traceback", "process_group", "heartbeat_at")


def filtered_executions(request: HttpRequest):
    """The visible runs the query asks for, what is wrong with the query (then no run), and,
    after a search, whether it left older runs out (None without a search)."""
    # No select_related: the rows show the job's name as it ran and link by job_id.
    # base.visible_executions' runs, in the form that keeps a page on its index (querysets.py).
    rows = Execution.objects.listed_for(request.user).defer(*LIST_DEFERRED)
    # Dates are the viewer's local days.
    filters = ExecutionListFilter(request.GET, queryset=rows, request=request, zone=base.viewer_zone(request))
    problems = filters.problems()
    if problems:
        return rows.none(), problems, None
    try:
        rows = filters.qs
    except OverflowError:  # 9999-12-31 has no next day
        return rows.none(), [_("The dates must be before 9999-12-31.")], None
    return rows, [], filters.search_bounded


@base.console_view
def execution_list(request: HttpRequest):
    jobs = base.visible_jobs(request)
    rows, problems, search_bounded = filtered_executions(request)
    page, problems = keyset.page_or_problems(request, rows, per_page=50, problems=problems)
    context = {
        "now": timezone.now(),
        "page": page,
        "problems": problems,
        "filters": request.GET,
        "search_bounded": search_bounded,
        "search_window": filtersets.SEARCH_WINDOW,
        "statuses": Execution.Status.choices,
        "reasons": Execution.Reason.choices,
        "jobs": jobs.only("id", "name").order_by("name")[:500],
        "groups": jobs.order_by("group").values_list("group", flat=True).distinct(),
    }
    return base.render_page(
        request,
        "scheduler_app/executions/list.html",
        context,
        fragments=["executions-table"],
        status=400 if problems else 200,
    )


@base.console_view
def execution_detail(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    attempts = (
        base.visible_executions(request)
        .filter(job_id=execution.job_id, scheduled_for=execution.scheduled_for)
        .exclude(pk=execution.pk)
        .order_by("attempt")
        if execution.job_id
        else []
    )
    context = {
        "now": timezone.now(),
        "execution": execution,
        "attempts": attempts,
        "job_zone": execution.job.zone if execution.job else None,
        "viewer_zone": base.viewer_zone(request),
    }
    return base.render_page(request, "scheduler_app/executions/detail.html", context, fragments=["execution-summary"])


@require_POST
@base.console_view
def execution_retry(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    next_url = base.safe_next(request, reverse("tempora:execution", args=[pk]))
    try:
        retry = services.execution_retry(execution=execution, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(
        request,
        _("Retry requested for %(name)s (attempt %(attempt)d).")
        % {"name": execution.job_name, "attempt": retry.attempt},
        next_url=next_url,
    )


@require_POST
@base.console_view
def execution_cancel(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    next_url = base.safe_next(request, reverse("tempora:execution", args=[pk]))
    if request.POST.get("confirm") != "yes":
        return base.render_page(
            request, "scheduler_app/executions/confirm_cancel.html", {"execution": execution, "next": next_url}
        )
    try:
        execution = services.execution_cancel(execution=execution, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    if execution.cancel_pending:
        message = _("Cancel requested for %(name)s: it stops within seconds, or when a call it is blocked in returns.")
        return base.done(request, message % {"name": execution.job_name}, next_url=next_url, level="info")
    return base.done(
        request, _("Cancelled %(name)s before it started.") % {"name": execution.job_name}, next_url=next_url
    )
