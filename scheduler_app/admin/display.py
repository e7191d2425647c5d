"""How the admin shows statuses, durations and long text: escaped, coloured, compact."""

from __future__ import annotations

from django.utils.html import format_html

from scheduler_app.models import Execution

_BADGE_COLOURS = {
    Execution.Status.SUCCEEDED: "#1a7f37",
    Execution.Status.FAILED: "#cf222e",
    Execution.Status.TIMED_OUT: "#cf222e",
    Execution.Status.LOST: "#cf222e",
    Execution.Status.RUNNING: "#0969da",
    Execution.Status.QUEUED: "#8250df",
    Execution.Status.SCHEDULED: "#57606a",
    Execution.Status.CANCELLED: "#57606a",
    Execution.Status.SKIPPED: "#9a6700",
    Execution.Status.MISSED: "#9a6700",
}


def status_badge(status: str, *, extra: str = ""):
    """A small coloured label; the text is escaped like any other value."""
    if not status:
        return "-"
    try:
        label = Execution.Status(status).label
    except ValueError:
        label = status
    text = f"{label} · {extra}" if extra else label
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;'
        'font-size:11px;white-space:nowrap">{}</span>',
        _BADGE_COLOURS.get(status, "#57606a"),
        text,
    )


def preformatted(text: str):
    return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text) if text else "-"
