"""Signing in and out, and the viewer's time zone."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scheduler_app import triggers
from scheduler_app.api.authentication import lockout_message, lockout_seconds
from scheduler_app.web import base


class LoginView(auth_views.LoginView):
    """Every user signs in here; Django's admin login only admits staff."""

    template_name = "scheduler_app/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("tempora:dashboard")


def locked_out(request: HttpRequest, response=None, credentials=None):
    """django-axes' answer to a locked-out login (settings.AXES_LOCKOUT_CALLABLE), for the
    console's and the admin's login forms: a page saying how long, status 429."""
    return base.too_many(
        request,
        title=_("Signing in is paused"),
        message=lockout_message(),
        wait=lockout_seconds(),
        back_url=reverse("tempora:login"),
    )


class LogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("tempora:login")


@require_POST
@base.console_view
def set_zone(request: HttpRequest):
    """Remember the viewer's zone in a cookie (app.js sets it from the browser on first visit)."""
    name = (request.POST.get("zone") or "").strip()
    next_url = base.safe_next(request, reverse("tempora:dashboard"))
    try:
        triggers.validate_timezone(name)
    except triggers.ScheduleError as exc:
        return base.done(request, exc.message, next_url=next_url, level="error")
    response = base.done(
        request, _("Times are now shown in %(zone)s.") % {"zone": name}, next_url=next_url, redirect=True
    )
    response.set_cookie(base.ZONE_COOKIE, name, max_age=365 * 86400, samesite="Lax")
    return response
