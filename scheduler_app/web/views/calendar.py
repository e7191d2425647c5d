"""The month grid of upcoming runs across jobs, one day's runs, and the exclusion calendars."""

from __future__ import annotations

import calendar as pycalendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from scheduler_app import services
from scheduler_app.models import Calendar, Job
from scheduler_app.web import base
from scheduler_app.web.forms import CalendarForm
from scheduler_app.web.views.job_edit import usable_calendars

RUNS_PER_JOB = 600  # a job firing more often than this in the month shows as "frequent"
MAX_JOBS = 300


@dataclass
class Day:
    day: date
    in_month: bool
    past: bool
    today: bool
    runs: dict[int, int] = field(default_factory=dict)  # job id → runs that day
    frequent: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.runs.values())


# The days the calendar can show: the grid of the last one still needs its next day.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 11, 30)


def _month(value: str) -> date | None:
    """The first day of the month `value` names ("2026-03"), or None when it names none we can show."""
    try:
        year, month = (int(part) for part in value.split("-"))
        first = date(year, month, 1)
    except (ValueError, TypeError):
        return None
    return first if FIRST_DAY <= first <= LAST_DAY else None


def _month_link(first: date) -> str | None:
    return first.strftime("%Y-%m") if FIRST_DAY <= first <= LAST_DAY else None


def _runs_between(jobs, start: datetime, end: datetime, per_job: int = RUNS_PER_JOB):
    """([(job, its runs in [start, end), more than per_job?)], [jobs whose schedule cannot be computed])
    for the active jobs: one that cannot be planned is listed as such, never breaking the page."""
    active = list(jobs.filter(paused=False).prefetch_related("triggers__calendar")[:MAX_JOBS])
    Job.count_runs_used(active)
    rows, unplanned = [], []
    for job in active:
        runs, error = job.next_runs_or_error(after=start - timedelta(microseconds=1), count=per_job)
        if error:
            unplanned.append(job)
            continue
        runs = [run for run in runs if run < end]
        rows.append((job, runs, len(runs) >= per_job))
    return rows, unplanned


@base.console_view
def month(request: HttpRequest):
    zone = base.viewer_zone(request)
    now = timezone.now()
    today = now.astimezone(zone).date()
    asked = request.GET.get("month", "")
    first = _month(asked) if asked else today.replace(day=1)
    error = ""
    if first is None:
        error = _("The calendar cannot show %(month)s: give a month from 1970-01 to 9999-11, as YYYY-MM.") % {
            "month": repr(asked)
        }
        first = today.replace(day=1)
    last = first.replace(day=pycalendar.monthrange(first.year, first.month)[1])
    start = max(now, datetime.combine(first, time(), zone))
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    days = {d: Day(d, d.month == first.month, d < today, d == today) for week in weeks for d in week}
    names: dict[int, Job] = {}
    unplanned: list[Job] = []
    if end > now:
        rows, unplanned = _runs_between(base.visible_jobs(request), start, end)
        for job, runs, frequent in rows:
            names[job.pk] = job
            for run in runs:
                cell = days.get(run.astimezone(zone).date())
                if cell is not None:
                    cell.runs[job.pk] = cell.runs.get(job.pk, 0) + 1
                    if frequent:
                        cell.frequent.add(job.pk)
    grid = [[days[d] for d in week] for week in weeks]
    for week in grid:
        for cell in week:
            cell.entries = sorted(
                ((names[pk], n, pk in cell.frequent) for pk, n in cell.runs.items()),
                key=lambda item: (-item[1], item[0].name),
            )
    calendars = usable_calendars(request).annotate(used=Count("triggers"))
    context = {
        "now": now,
        "zone": zone,
        "first": first,
        "grid": grid,
        "error": error,
        "unplanned": unplanned,
        "weekdays": [pycalendar.day_abbr[i] for i in range(7)],
        "previous": _month_link((first - timedelta(days=1)).replace(day=1)),
        "next": _month_link(last + timedelta(days=1)),
        "this_month": today.strftime("%Y-%m"),
        "calendars": calendars,
        "editable": set(Calendar.objects.editable_by(request.user).values_list("pk", flat=True)),
    }
    return base.render_page(
        request, "scheduler_app/calendar/month.html", context, fragments=["calendar-grid"], status=400 if error else 200
    )


@base.console_view
def day(request: HttpRequest, value: str):
    zone = base.viewer_zone(request)
    try:
        chosen = date.fromisoformat(value)
    except ValueError:
        raise Http404("Not a date") from None
    if not FIRST_DAY <= chosen <= LAST_DAY:
        raise Http404("Not a day the calendar can show")
    now = timezone.now()
    start = max(now, datetime.combine(chosen, time(), zone))
    end = datetime.combine(chosen + timedelta(days=1), time(), zone)
    rows, unplanned = [], []
    if end > now:
        found, unplanned = _runs_between(base.visible_jobs(request), start, end, per_job=200)
        rows = [row for row in found if row[1]]
    rows.sort(key=lambda row: row[1][0])
    context = {"now": now, "zone": zone, "day": chosen, "rows": rows, "past": end <= now, "unplanned": unplanned}
    return base.render_page(request, "scheduler_app/calendar/day.html", context, fragments=["day-panel"])


def _editable(request: HttpRequest, pk: int) -> Calendar:
    return get_object_or_404(Calendar.objects.editable_by(request.user), pk=pk)


def _calendar_form(request: HttpRequest, calendar: Calendar | None):
    if request.method == "POST":
        form = CalendarForm(request.POST)
        if form.is_valid():
            fields = form.cleaned_data
            try:
                if calendar is None:
                    saved = services.calendar_create(actor=request.user, **fields)
                else:
                    saved = services.calendar_update(calendar=calendar, actor=request.user, **fields)
            except ValidationError as exc:
                for key, messages in exc.message_dict.items():
                    for message in messages:
                        form.add_error(key if key in form.fields else None, message)
            else:
                return base.done(
                    request,
                    _("Saved calendar %(name)s.") % {"name": saved.name},
                    next_url=reverse("tempora:calendar"),
                    redirect=True,
                )
        response = base.render_page(
            request,
            "scheduler_app/calendar/form.html",
            {"form": form, "calendar": calendar},
            fragments=["calendar-form"],
        )
        if request.htmx:
            base.toast(response, _("Please correct the errors shown."), "error", changed=False)
        return response
    initial = {}
    if calendar is not None:
        initial = {
            "name": calendar.name,
            "description": calendar.description,
            "excluded_dates": "\n".join(calendar.excluded_dates),
            "business_days_only": calendar.business_days_only,
        }
    form = CalendarForm(initial=initial)
    return base.render_page(
        request, "scheduler_app/calendar/form.html", {"form": form, "calendar": calendar}, fragments=["calendar-form"]
    )


@base.console_view
def calendar_create(request: HttpRequest):
    return _calendar_form(request, None)


@base.console_view
def calendar_edit(request: HttpRequest, pk: int):
    return _calendar_form(request, _editable(request, pk))


@base.console_view
def calendar_delete(request: HttpRequest, pk: int):
    calendar = _editable(request, pk)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        return base.render_page(request, "scheduler_app/calendar/confirm_delete.html", {"calendar": calendar})
    name = calendar.name
    try:
        services.calendar_delete(calendar=calendar, actor=request.user)
    except ValidationError as exc:
        return base.refused(request, exc, next_url=reverse("tempora:calendar"))
    return base.done(
        request, _("Deleted calendar %(name)s.") % {"name": name}, next_url=reverse("tempora:calendar"), redirect=True
    )
