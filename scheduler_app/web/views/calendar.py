"""The month grid of upcoming runs across jobs, one day's runs, and the exclusion calendars.

The counting, bounded whatever the number of jobs, is scheduler_app/web/calendar_runs.py."""

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
from scheduler_app.models import Calendar
from scheduler_app.web import base, calendar_runs
from scheduler_app.web.forms import CalendarForm
from scheduler_app.web.views.job_edit import usable_calendars


@dataclass
class Entry:
    """One job's runs on one day, as a cell lists it."""

    pk: int
    name: str
    runs: int
    capped: bool  # more than calendar_runs.CAP: the count reads "24+"
    last_status: str


@dataclass
class Day:
    day: date
    in_month: bool
    past: bool
    today: bool
    entries: list[Entry] = field(default_factory=list)
    total: int = 0  # runs counted that day
    capped: bool = False  # some job's runs were cut at the cap: total is a lower bound
    jobs: int = 0  # jobs counted running that day

    @property
    def shown(self) -> list[Entry]:
        return self.entries[:SHOWN_PER_DAY]

    @property
    def more(self) -> int:
        """Jobs running that day the cell does not name."""
        return self.jobs - len(self.shown)


SHOWN_PER_DAY = 3


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


def _fill(days: dict[date, Day], rows: list[calendar_runs.Row]) -> None:
    for row in rows:
        for day, (runs, capped) in row.days.items():
            cell = days.get(day)
            if cell is None:
                continue
            cell.entries.append(Entry(row.pk, row.name, len(runs), capped, row.last_status))
            cell.total += len(runs) * row.jobs
            cell.capped = cell.capped or capped
            cell.jobs += row.jobs
    for cell in days.values():
        cell.entries.sort(key=lambda entry: (-entry.runs, entry.name))


def _notices(rows: list[calendar_runs.Row], own_total: int, own_rows: int) -> dict:
    """What the grid could not count, in words the template turns into notices: never silent."""
    return {
        "unplanned": [row for row in rows if row.error],
        "uncounted": sum(row.jobs for row in rows if not row.counted and not row.error),
        "own_left_out": max(own_total - own_rows, 0),
        "max_runs_ignored": [row for row in rows if row.max_runs_ignored],
    }


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
    rows: list[calendar_runs.Row] = []
    own_total = own_shown = 0
    if end > now:
        visible = base.visible_jobs(request)
        shared = calendar_runs.shared_rows(visible, start, end)
        own, own_total = calendar_runs.own_rows(calendar_runs.can_fire(visible, start, end))
        rows = shared + own
        own_shown = len(own)
        work = calendar_runs.Work()
        for row in rows:
            calendar_runs.count(row, zone, first, last, now, calendar_runs.CAP, work)
        _fill(days, rows)
    grid = [[days[d] for d in week] for week in weeks]
    calendars = usable_calendars(request).annotate(used=Count("triggers"))
    context = {
        "now": now,
        "zone": zone,
        "first": first,
        "grid": grid,
        "error": error,
        "cap": calendar_runs.CAP,
        "max_own": calendar_runs.MAX_OWN,
        **_notices(rows, own_total, own_shown),
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


DAY_PAGE = 25  # jobs per page of a day's panel


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
    rows, page, idle = [], None, 0
    if end > now:
        # The jobs that may fire that day, a page at a time by name; each one's runs that day.
        jobs = calendar_runs.can_fire(base.visible_jobs(request), start, end).order_by("name")
        page = base.paginate(request, jobs, DAY_PAGE)
        work = calendar_runs.Work()
        for job in calendar_runs.with_triggers(jobs.filter(pk__in=[job.pk for job in page.object_list])):
            row = calendar_runs.job_row(job)
            calendar_runs.count(row, zone, chosen, chosen, now, calendar_runs.DAY_CAP, work)
            rows.append(row)
        rows.sort(key=lambda row: row.name)
        idle = sum(1 for row in rows if row.counted and not row.days)
    shown = [(row, *row.days[chosen]) for row in rows if chosen in row.days]
    context = {
        "now": now,
        "zone": zone,
        "day": chosen,
        "rows": shown,
        "page": page,
        "idle": idle,
        "target": "day-panel",
        "cap": calendar_runs.DAY_CAP,
        "past": end <= now,
        **_notices(rows, 0, 0),
    }
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
