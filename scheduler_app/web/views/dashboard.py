"""The dashboard: counts, the scheduler's state, runs per hour, the next runs, the latest runs.

The page's live part is one fragment (`#dashboard-live`) that polls every few seconds and
refreshes at once after an action (`jobs-changed`).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from scheduler_app import statistics
from scheduler_app.models import Execution
from scheduler_app.web import base, stats


@base.console_view
def dashboard(request: HttpRequest):
    now = timezone.now()
    zone = base.viewer_zone(request)
    jobs = base.visible_jobs(request)
    # Scoped by EXISTS on the job, as the history lists are: with a join, SQLite counted an
    # owner's running runs by walking every run of their jobs.
    executions = Execution.objects.listed_for(request.user)
    figures = statistics.Tallied(request.user, now=now)
    with statistics.snapshot():
        bars = stats.runs_per_hour(figures, zone)
        totals = stats.totals(jobs, executions, figures)
    upcoming, unplanned = stats.upcoming(jobs, now)
    context = {
        "now": now,
        "totals": totals,
        "scheduler": stats.scheduler_summary(now),
        "bars": bars,
        "bars_top": stats.scale(bars),
        "upcoming": upcoming,
        "unplanned": unplanned,
        # Newest first by id (rows are numbered as they are created): the primary key's order, no sort.
        "latest": executions.select_related("job").order_by("-id")[:10],
    }
    return base.render_page(request, "scheduler_app/dashboard.html", context, fragments=["dashboard-live"])
