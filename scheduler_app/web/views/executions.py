"""Run history across jobs, one run's page, and retrying or cancelling a run."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scheduler_app import services
from scheduler_app.models import Execution
from scheduler_app.web import base


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def filtered_executions(request: HttpRequest):
    rows = base.visible_executions(request).select_related("job")
    params = request.GET
    zone = base.viewer_zone(request)
    if params.get("status") in Execution.Status.values:
        rows = rows.filter(status=params["status"])
    if params.get("reason") in Execution.Reason.values:
        rows = rows.filter(reason=params["reason"])
    if params.get("job", "").isdigit():
        rows = rows.filter(job_id=int(params["job"]))
    if params.get("group"):
        rows = rows.filter(job__group=params["group"])
    if params.get("dead") == "1":
        rows = rows.filter(dead_letter=True)
    # Dates are the viewer's local days.
    start, end = _day(params.get("from", "")), _day(params.get("to", ""))
    if start:
        rows = rows.filter(scheduled_for__gte=datetime.combine(start, time(), zone))
    if end:
        rows = rows.filter(scheduled_for__lt=datetime.combine(end + timedelta(days=1), time(), zone))
    if params.get("q"):
        q = params["q"].strip()
        rows = rows.filter(Q(error__icontains=q) | Q(output__icontains=q) | Q(job_name__icontains=q)
                           | Q(traceback__icontains=q))
    return rows.order_by("-scheduled_for", "-id")


@base.console_view
def execution_list(request: HttpRequest):
    jobs = base.visible_jobs(request)
    context = {
        "now": timezone.now(),
        "page": base.paginate(request, filtered_executions(request), per_page=50),
        "filters": request.GET,
        "statuses": Execution.Status.choices,
        "reasons": Execution.Reason.choices,
        "jobs": jobs.only("id", "name").order_by("name")[:500],
        "groups": jobs.order_by("group").values_list("group", flat=True).distinct(),
    }
    return base.render_page(request, "executions/list.html", context, fragments=["executions-table"])


@base.console_view
def execution_detail(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    attempts = (
        base.visible_executions(request).filter(job_id=execution.job_id, scheduled_for=execution.scheduled_for)
        .exclude(pk=execution.pk).order_by("attempt") if execution.job_id else []
    )
    context = {"now": timezone.now(), "execution": execution, "attempts": attempts,
               "job_zone": execution.job.zone if execution.job else None, "viewer_zone": base.viewer_zone(request)}
    return base.render_page(request, "executions/detail.html", context, fragments=["execution-summary"])


@require_POST
@base.console_view
def execution_retry(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    next_url = base.safe_next(request, reverse("console:execution", args=[pk]))
    try:
        retry = services.execution_retry(execution=execution, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(request, _("Retry requested for %(name)s (attempt %(attempt)d).") % {
        "name": execution.job_name, "attempt": retry.attempt}, next_url=next_url)


@require_POST
@base.console_view
def execution_cancel(request: HttpRequest, pk: int):
    execution = base.get_execution(request, pk)
    next_url = base.safe_next(request, reverse("console:execution", args=[pk]))
    if request.POST.get("confirm") != "yes":
        return base.render_page(request, "executions/confirm_cancel.html", {"execution": execution, "next": next_url})
    try:
        execution = services.execution_cancel(execution=execution, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    if execution.cancel_pending:
        message = _("Cancel requested for %(name)s: it stops within seconds, or when a call it is blocked in returns.")
        return base.done(request, message % {"name": execution.job_name}, next_url=next_url, level="info")
    return base.done(request, _("Cancelled %(name)s before it started.") % {"name": execution.job_name},
                     next_url=next_url)
