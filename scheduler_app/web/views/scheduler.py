"""The scheduler: its nodes, pause or resume everything, a graceful shutdown, runtime settings.

Everyone signed in sees whether it runs; node names, hosts and PIDs need view_schedulernode;
changing anything needs control_scheduler (the services refuse it otherwise: 403).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scheduler_app import permissions, services
from scheduler_app.models import SchedulerNode, SchedulerState
from scheduler_app.web import base, stats
from scheduler_app.web.forms import RuntimeSettingsForm


def _settings_form(data=None) -> RuntimeSettingsForm:
    state = SchedulerState.load()
    initial = {key: services.scheduler_setting(key, state) for key in services.RUNTIME_SETTINGS}
    return RuntimeSettingsForm(data, initial=initial, settings_spec=services.RUNTIME_SETTINGS)


def _context(request: HttpRequest, form=None) -> dict:
    now = timezone.now()
    nodes = []
    if permissions.may_view_nodes(request.user):
        nodes = list(SchedulerNode.objects.all()[:50])
        for node in nodes:
            node.alive = node.is_alive(now=now)
            node.age = now - node.last_beat_at
    return {
        "now": now,
        "summary": stats.scheduler_summary(now),
        "nodes": nodes,
        "may_view_nodes": permissions.may_view_nodes(request.user),
        "may_control": permissions.may_control_scheduler(request.user),
        "settings_form": form or _settings_form(),
    }


@base.console_view
def scheduler(request: HttpRequest):
    return base.render_page(
        request, "scheduler_app/scheduler.html", _context(request), fragments=["scheduler-status", "scheduler-settings"]
    )


def _act(request: HttpRequest, action, message: str):
    next_url = base.safe_next(request, reverse("tempora:scheduler"))
    try:
        action()
    except ValidationError as exc:
        return base.refused(request, exc, next_url=next_url)
    return base.done(request, message, next_url=next_url)


@require_POST
@base.console_view
def scheduler_pause(request: HttpRequest):
    return _act(
        request,
        lambda: services.scheduler_pause(actor=request.user),
        _("The scheduler is paused: no job fires until you resume it."),
    )


@require_POST
@base.console_view
def scheduler_resume(request: HttpRequest):
    return _act(request, lambda: services.scheduler_resume(actor=request.user), _("The scheduler is running again."))


@require_POST
@base.console_view
def scheduler_shutdown(request: HttpRequest):
    base.require(permissions.may_control_scheduler(request.user), _("You may not control the scheduler."))
    if request.POST.get("confirm") != "yes":
        return base.render_page(request, "scheduler_app/confirm_shutdown.html", {})
    return _act(
        request,
        lambda: services.scheduler_shutdown_request(actor=request.user),
        _("Shutdown requested: every scheduler process drains its running jobs and stops."),
    )


@require_POST
@base.console_view
def scheduler_settings(request: HttpRequest):
    form = _settings_form(request.POST)
    if form.is_valid():
        try:
            services.scheduler_config_update(values=form.cleaned_data, actor=request.user)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                for message in messages:
                    form.add_error(key if key in form.fields else None, message)
        else:
            return base.done(request, _("Runtime settings saved."), next_url=reverse("tempora:scheduler"))
    response = base.render_page(
        request, "scheduler_app/scheduler.html", _context(request, form), fragments=["scheduler-settings"]
    )
    if request.htmx:
        base.toast(response, _("Please correct the errors shown."), "error", changed=False)
    return response
