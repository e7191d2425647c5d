"""One job: its definition, triggers in words, next runs, history, durations; and its actions."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scheduler_app import services
from scheduler_app.api import throttling
from scheduler_app.models import Execution
from scheduler_app.web import base, keyset, stats
from scheduler_app.web.filters import HistoryFilter
from scheduler_app.web.forms import RunNowForm
from scheduler_app.web.views.executions import LIST_DEFERRED


@base.console_view
def job_detail(request: HttpRequest, pk: int):
    job = base.get_job(request, pk)
    now = timezone.now()
    # Read from the index execution_job_history a page at a time (web/keyset.py); the rows show
    # neither the output nor the traceback.
    history = job.executions.defer(*LIST_DEFERRED)
    filters = HistoryFilter(request.GET, queryset=history, request=request)
    problems = filters.problems()
    page, problems = keyset.page_or_problems(request, filters.qs, per_page=20, problems=problems)
    status = "" if problems else request.GET.get("status", "")  # the select shows one
    bars, longest = stats.durations(job.executions.all())
    rate, decided = stats.success_rate(job.executions.all())
    trigger_rows = list(job.triggers.select_related("calendar"))
    next_runs, schedule_error = job.next_runs_or_error(after=now, count=10)
    context = {
        "now": now,
        "job": job,
        "task_info": base.task_view(job.task),
        "trigger_rows": [(trigger, trigger.describe()) for trigger in trigger_rows],
        "state": job.current_state,
        "next_runs": next_runs,
        "schedule_error": schedule_error,
        "viewer_zone": base.viewer_zone(request),
        "page": page,
        "status": status,
        "problems": problems,
        "statuses": Execution.Status.choices,
        "duration_bars": bars,
        "duration_top": timedelta(seconds=longest),
        "success_rate": rate,
        "decided": decided,
        "running": job.executions.filter(status__in=list(Execution.ACTIVE)).count(),
        "run_form": RunNowForm(),
    }
    return base.render_page(
        request,
        "scheduler_app/jobs/detail.html",
        context,
        fragments=["job-summary", "job-history", "job-next-runs"],
        status=400 if problems else 200,
    )


def _job_action(request: HttpRequest, pk: int, action, message: str):
    job = base.get_job(request, pk)
    next_url = base.safe_next(request, reverse("tempora:job", args=[job.pk]))
    try:
        action(job)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(request, message % {"name": job.name}, next_url=next_url)


@require_POST
@base.console_view
def job_run(request: HttpRequest, pk: int):
    """Run now; with `args`/`kwargs` (the job page's small form), with these arguments instead of the job's."""
    form = RunNowForm(request.POST)
    if not form.is_valid():
        job = base.get_job(request, pk)
        return base.refused(
            request, form.errors_text(), next_url=base.safe_next(request, reverse("tempora:job", args=[job.pk]))
        )
    given = {name: value for name, value in form.cleaned_data.items() if value is not None}
    return _job_action(
        request,
        pk,
        lambda job: services.job_run_now(job=job, actor=request.user, **given),
        _("Run requested for %(name)s; the scheduler starts it within a second or so."),
    )


@require_POST
@base.console_view
def job_pause(request: HttpRequest, pk: int):
    return _job_action(request, pk, lambda job: services.job_pause(job=job, actor=request.user), _("Paused %(name)s."))


@require_POST
@base.console_view
def job_resume(request: HttpRequest, pk: int):
    return _job_action(
        request, pk, lambda job: services.job_resume(job=job, actor=request.user), _("Resumed %(name)s.")
    )


@base.console_view
def job_delete(request: HttpRequest, pk: int):
    """GET: the confirmation page (for use without JS). POST with confirm=yes: delete."""
    job = base.get_job(request, pk)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        return base.render_page(request, "scheduler_app/jobs/confirm_delete.html", {"job": job})
    name = job.name
    try:
        services.job_delete(job=job, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=reverse("tempora:job", args=[pk]))
    return base.done(
        request,
        _("Deleted %(name)s; its history is kept.") % {"name": name},
        next_url=reverse("tempora:jobs"),
        redirect=True,
    )


@require_POST
@base.console_view
def job_duplicate(request: HttpRequest, pk: int):
    job = base.get_job(request, pk)
    wait = throttling.write_wait(request)  # a copy is a create: the same rate as the API's
    if wait is not None:
        return base.throttled(request, wait, back_url=reverse("tempora:job", args=[pk]))
    try:
        copy = services.job_duplicate(job=job, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=reverse("tempora:job", args=[pk]))
    return base.done(
        request,
        _("Copied %(name)s as %(copy)s (paused until you resume it).") % {"name": job.name, "copy": copy.name},
        next_url=reverse("tempora:job-edit", args=[copy.pk]),
        redirect=True,
    )
