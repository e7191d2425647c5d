"""Template tags for the HTMX console (scheduler_app/web): times with zones, badges, links,
and on Django 5.2 the `{% partialdef %}` / `{% partial %}` tags that Django 6 has built in."""

from __future__ import annotations

import json
from datetime import datetime

import django
from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

from scheduler_app import permissions
from scheduler_app.models import Execution
from scheduler_app.web import base, cron_builder, display

register = template.Library()

# Django 6 ships {% partialdef %} among its built-in tags; on 5.2 django-template-partials
# gives them (and its app, in INSTALLED_APPS there, the loader that finds "page.html#name").
# Offered here, so one set of templates loads `console` on both. Not imported on Django 6,
# where the package warns that it is deprecated.
if django.VERSION < (6, 0):
    from template_partials.templatetags.partials import partial_func, partialdef_func

    register.tag("partialdef", partialdef_func)
    register.tag("partial", partial_func)

# What the console asks before it shows a control: the same answers the services give.
ABILITIES = {
    "control_scheduler": permissions.may_control_scheduler,
    "view_nodes": permissions.may_view_nodes,
    "create_jobs": permissions.may_create_jobs,
}


@register.filter
def may(user, ability: str) -> bool:
    """`{% if user|may:"control_scheduler" %}`: abilities that concern no one object."""
    return ABILITIES[ability](user)


@register.simple_tag(takes_context=True)
def can(context, action: str, obj) -> bool:
    """`{% can "pause" job as may_pause %}`, `{% can "retry" run as may_retry %}`."""
    user = context["request"].user
    if isinstance(obj, Execution):
        return permissions.may_execution(user, permissions.JobAction(action), obj)
    return permissions.may(user, permissions.JobAction(action), obj)


def _zone(context, zone):
    if zone is not None:
        return zone
    request = context.get("request")
    return base.viewer_zone(request) if request is not None else timezone.get_default_timezone()


@register.simple_tag(takes_context=True)
def when(context, instant: datetime | None, zone=None, long: bool = False):
    """`{% when run.started_at %}` in the viewer's zone; `{% when t zone=job.zone long=True %}`."""
    return display.time_tag(instant, _zone(context, zone), long=long)


@register.simple_tag(takes_context=True)
def countdown(context, instant: datetime | None, zone=None):
    """`{% countdown job.next_run_at %}`: "in 4 min", kept current by app.js."""
    return display.countdown_tag(instant, context.get("now") or timezone.now(), _zone(context, zone))


@register.simple_tag(takes_context=True)
def ago(context, instant: datetime | None):
    return display.countdown_tag(instant, context.get("now") or timezone.now(), _zone(context, None))


@register.filter
def duration(value):
    return display.duration_text(value)


@register.filter
def status_badge(status: str):
    return display.status_badge(status)


@register.filter
def state_badge(job):
    return display.state_badge(job)


@register.filter
def status_label(status: str):
    return display.status_label(status)


@register.filter
def tone(status: str) -> str:
    return display.STATUS_TONES.get(status, "muted")


@register.filter
def pretty_json(value) -> str:
    """Indented JSON as text (escaped by the template like any other text)."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.simple_tag(takes_context=True)
def page_url(context, number: int) -> str:
    """The current URL's query with `page` set: `?status=failed&page=3`."""
    request = context["request"]
    params = request.GET.copy()
    params["page"] = number
    return "?" + params.urlencode()


@register.simple_tag(takes_context=True)
def sort_url(context, field: str) -> str:
    """A column header's link: sort by `field`, or reversed when it is the current sort."""
    request = context["request"]
    params = request.GET.copy()
    current = params.get("sort", "")
    params["sort"] = f"-{field}" if current == field else field
    params.pop("page", None)
    return "?" + params.urlencode()


@register.simple_tag(takes_context=True)
def aria_sort(context, field: str) -> str:
    current = context["request"].GET.get("sort", "")
    if current == field:
        return "ascending"
    if current == f"-{field}":
        return "descending"
    return "none"


@register.simple_tag(takes_context=True)
def dead_letter_count(context) -> int:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return 0
    return base.visible_executions(request).dead_letters().count()


@register.simple_tag(takes_context=True)
def viewer_zone_name(context) -> str:
    return base.viewer_zone(context["request"]).key


@register.simple_tag
def units_json() -> str:
    return json.dumps(display.units(), ensure_ascii=False)


@register.simple_tag
def field_widget(field, oob: bool = False, **attrs):
    """A form field's widget with its ARIA wiring: aria-invalid, and aria-describedby naming
    its help and its errors (the ids partials/field.html gives them)."""
    described = []
    if field.help_text:
        described.append(f"{field.auto_id}_help")
    if field.errors:
        described.append(f"{field.auto_id}_error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if oob:
        attrs["hx-swap-oob"] = "true"
    return field.as_widget(attrs={key.replace("_", "-"): value for key, value in attrs.items()})


@register.simple_tag
def cron_builder_for(form):
    """The visual builder's pickers for a trigger form: {"pickers": [...], "note": ...}."""
    picks, note = form.cron_picks()
    return {"pickers": cron_builder.picker_views(form.prefix, picks), "note": note}


# Small stroke icons, inline so they need no font and no request; decorative (aria-hidden):
# every button that shows one also has words, visible or in aria-label.
ICONS = {
    "play": '<polygon points="6 4 20 12 6 20 6 4"/>',
    "pause": '<rect x="6" y="4" width="4" height="16"/><rect x="14" y="4" width="4" height="16"/>',
    "resume": '<line x1="5" y1="5" x2="5" y2="19"/><polygon points="9 5 20 12 9 19 9 5"/>',
    "trash": '<polyline points="3 6 5 6 21 6"/><path d="M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6"/>'
    '<path d="M10 11v6M14 11v6"/><path d="M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2"/>',
    "plus": '<line x1="12" y1="5" x2="12" y2="19"/><line x1="5" y1="12" x2="19" y2="12"/>',
    "edit": '<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4L16.5 3.5z"/>',
    "copy": '<rect x="9" y="9" width="13" height="13" rx="2"/><path d="M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1"/>',
    "retry": '<polyline points="1 4 1 10 7 10"/><path d="M3.5 15a9 9 0 1 0 2.1-9.4L1 10"/>',
    "x": '<line x1="18" y1="6" x2="6" y2="18"/><line x1="6" y1="6" x2="18" y2="18"/>',
    "check": '<polyline points="20 6 9 17 4 12"/>',
    "moon": '<path d="M21 12.8A9 9 0 1 1 11.2 3 7 7 0 0 0 21 12.8z"/>',
    "sun": '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2'
    'M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>',
    "power": '<path d="M18.4 6.6a9 9 0 1 1-12.8 0"/><line x1="12" y1="2" x2="12" y2="12"/>',
    "clock": '<circle cx="12" cy="12" r="10"/><polyline points="12 6 12 12 16 14"/>',
    "left": '<polyline points="15 18 9 12 15 6"/>',
    "right": '<polyline points="9 18 15 12 9 6"/>',
}


@register.simple_tag
def icon(name: str, css: str = ""):
    shape = ICONS[name]  # a fixed table: never user text
    return mark_safe(
        f'<svg class="icon {css}" viewBox="0 0 24 24" width="1em" height="1em" fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">{shape}</svg>'
    )
