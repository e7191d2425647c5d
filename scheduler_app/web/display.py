"""How the console writes times, durations and statuses; the templates' tags use these.

Every instant is shown with its zone (DESIGN.md, "Time"): `2026-03-08 03:00 EDT`, with the
zone's IANA name in the title, and relative times ("in 4 min") are updated by app.js from
the `datetime` attribute with the same words (the units come from <body data-units>).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from scheduler_app import triggers
from scheduler_app.models import Execution, Job


def units() -> dict[str, str]:
    """The short units relative times use; app.js reads them from <body data-units>."""
    return {
        "s": pgettext("seconds, short", "s"),
        "min": pgettext("minutes, short", "min"),
        "h": pgettext("hours, short", "h"),
        "d": pgettext("days, short", "d"),
    }


def span(seconds: float) -> str:
    """`span(3725)` → "1 h 2 min": the two largest units, as app.js writes them too."""
    u = units()
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} {u['s']}"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} {u['min']} {rest} {u['s']}" if minutes < 10 and rest else f"{minutes} {u['min']}"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours} {u['h']} {rest // 60} {u['min']}" if rest // 60 else f"{hours} {u['h']}"
    days, rest = divmod(seconds, 86400)
    return f"{days} {u['d']} {rest // 3600} {u['h']}" if rest // 3600 else f"{days} {u['d']}"


def relative(instant: datetime, now: datetime) -> str:
    seconds = (instant - now).total_seconds()
    if abs(seconds) < 1:
        return _("now")
    if seconds > 0:
        return _("in %(time)s") % {"time": span(seconds)}
    return _("%(time)s ago") % {"time": span(seconds)}


def short_local(instant: datetime, zone: ZoneInfo) -> str:
    """`2026-03-08 03:00:00 EDT`: the date, the time and the zone's abbreviation."""
    local = instant.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def long_local(instant: datetime, zone: ZoneInfo) -> str:
    """`2026-03-08 03:00:00 EDT (America/New_York)`; the zone's name once when it is its abbreviation (UTC)."""
    local = instant.astimezone(zone)
    text = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"
    return text if local.tzname() == zone.key else f"{text} ({zone.key})"


def time_tag(instant: datetime | None, zone: ZoneInfo, *, long: bool = False) -> SafeString | str:
    if instant is None:
        return "—"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        triggers.format_utc(instant),
        long_local(instant, zone),
        long_local(instant, zone) if long else short_local(instant, zone),
    )


def countdown_tag(instant: datetime | None, now: datetime, zone: ZoneInfo) -> SafeString | str:
    if instant is None:
        return "—"
    return format_html(
        '<time class="countdown" data-countdown datetime="{}" title="{}">{}</time>',
        triggers.format_utc(instant),
        long_local(instant, zone),
        relative(instant, now),
    )


def duration_text(value: timedelta | None) -> str:
    """`duration_text(timedelta(seconds=62.5))` → "1 min 2 s"; under a second in ms."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} {units()['s']}"
    return span(seconds)


STATUS_TONES = {
    Execution.Status.SUCCEEDED: "ok",
    Execution.Status.FAILED: "bad",
    Execution.Status.TIMED_OUT: "bad",
    Execution.Status.LOST: "bad",
    Execution.Status.RUNNING: "busy",
    Execution.Status.QUEUED: "wait",
    Execution.Status.SCHEDULED: "wait",
    Execution.Status.CANCELLED: "muted",
    Execution.Status.SKIPPED: "warn",
    Execution.Status.MISSED: "warn",
}


def status_label(status: str) -> str:
    try:
        return str(Execution.Status(status).label)
    except ValueError:
        return status


def status_badge(status: str) -> SafeString | str:
    if not status:
        return "—"
    return format_html('<span class="badge tone-{}">{}</span>', STATUS_TONES.get(status, "muted"), status_label(status))


STATE_TONES = {
    Job.State.SCHEDULED: "ok-soft",
    Job.State.NOT_STARTED: "wait",
    Job.State.PAUSED: "warn",
    Job.State.NO_SCHEDULE: "muted",
    Job.State.FINISHED: "muted",
    Job.State.ENDED: "muted",
    Job.State.NO_UPCOMING_RUN: "warn",
    Job.State.SCHEDULE_ERROR: "bad",
}


def state_badge(job: Job) -> SafeString:
    """The job's state (Job.schedule_state) as a badge; why, in its title, when it cannot be computed."""
    state = job.current_state
    return format_html(
        '<span class="badge tone-{}" data-state="{}"{}>{}</span>',
        STATE_TONES.get(state.value, "muted"),
        state.value,
        format_html(' title="{}"', state.error) if state.error else "",
        state.label,
    )
