"""The jobs table (filters, search, sorting, pages) and actions on a selection or a group."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from scheduler_app import services
from scheduler_app.models import Job
from scheduler_app.registry import registry
from scheduler_app.web import base
from scheduler_app.web.filters import JOB_STATUSES, JobListFilter

ACTIONS = ("run", "pause", "resume", "delete")


def filtered_jobs(request: HttpRequest):
    """The visible jobs the query asks for, and what is wrong with the query (then no job)."""
    jobs = base.visible_jobs(request)
    filters = JobListFilter(request.GET, queryset=jobs, request=request)
    problems = filters.problems()
    if problems:
        return jobs.none(), problems
    return filters.qs, []


@base.console_view
def job_list(request: HttpRequest):
    jobs, problems = filtered_jobs(request)
    jobs = jobs.prefetch_related("triggers__calendar").with_recent_results()
    page = base.paginate(request, jobs, per_page=25)
    Job.count_runs_used(page.object_list)  # each row's state, without a query per row
    for job in page.object_list:
        job.recent = list(reversed(job.recent_results))  # the marks read oldest first
    visible = base.visible_jobs(request)
    context = {
        "now": timezone.now(),
        "page": page,
        "groups": visible.order_by("group").values_list("group", flat=True).distinct(),
        "tasks": registry.names(),
        "statuses": JOB_STATUSES,
        "problems": problems,
        "filters": request.GET,
        "query": base.query_without(request, "page", "ids"),
        "checked": request.GET.getlist("ids"),
    }
    return base.render_page(
        request, "scheduler_app/jobs/list.html", context, fragments=["jobs-table"], status=400 if problems else 200
    )


def _apply(action: str, jobs, group: str, request: HttpRequest) -> int:
    visible, actor = base.visible_jobs(request), request.user
    if action == "pause":
        return (
            services.group_pause(group=group, jobs=visible, actor=actor)
            if group
            else services.jobs_pause(jobs=jobs, actor=actor)
        )
    if action == "resume":
        return (
            services.group_resume(group=group, jobs=visible, actor=actor)
            if group
            else services.jobs_resume(jobs=jobs, actor=actor)
        )
    if action == "delete" and group:
        return services.group_cancel(group=group, jobs=visible, actor=actor)
    if action == "run":
        return len(services.jobs_run_now(jobs=jobs, actor=actor))
    return services.jobs_delete(jobs=jobs, actor=actor)


MESSAGES = {
    "run": lambda n: ngettext("Run requested for %(n)d job.", "Run requested for %(n)d jobs.", n),
    "pause": lambda n: ngettext("Paused %(n)d job.", "Paused %(n)d jobs.", n),
    "resume": lambda n: ngettext("Resumed %(n)d job.", "Resumed %(n)d jobs.", n),
    "delete": lambda n: ngettext(
        "Deleted %(n)d job; its history is kept.", "Deleted %(n)d jobs; their history is kept.", n
    ),
}


@require_POST
@base.console_view
def bulk(request: HttpRequest):
    """Run, pause, resume or delete the ticked jobs, or every job of a group.

    Deleting asks first: with JS a dialog (app.js) adds `confirm=yes`; without JS this view
    answers a page listing what would be deleted, whose button posts `confirm=yes`.
    """
    next_url = base.safe_next(request, reverse("tempora:jobs"))
    action = request.POST.get("action", "")
    scope = request.POST.get("scope") or request.GET.get("scope")
    group = request.POST.get("group", "").strip() if scope == "group" else ""
    if action not in ACTIONS:
        return base.refused(request, _("Choose an action."), next_url=next_url)
    jobs = base.visible_jobs(request)
    if group:
        jobs = jobs.in_group(group)
    else:
        ids = [value for value in request.POST.getlist("ids") if value.isdigit()]
        jobs = jobs.filter(pk__in=ids)
    if not jobs.exists():
        return base.refused(request, _("No job selected."), next_url=next_url)
    if action == "delete" and request.POST.get("confirm") != "yes":
        return base.render_page(
            request,
            "scheduler_app/jobs/bulk_confirm.html",
            {
                "jobs": jobs,
                "group": group,
                "action": action,
                "next": next_url,
            },
        )
    try:
        count = _apply(action, jobs, group, request)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(request, MESSAGES[action](count) % {"n": count}, next_url=next_url)
