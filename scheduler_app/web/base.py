"""What every console view shares: login, page-or-fragment rendering, toasts, lookups.

The console's rule (STYLE.md, "django-htmx and htmx patterns"): one URL, one view. A
normal request gets the whole page; an htmx request aimed at one of the page's fragments
(`hx-target="#jobs-table"`) gets only that `{% partialdef %}`. State changes answer an
htmx request with a toast and a `jobs-changed` event the page's fragments listen for, and
a plain form post with a message and a redirect, so every action also works without JS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from scheduler_app import triggers
from scheduler_app.models import Execution, Job
from scheduler_app.permissions import Forbidden
from scheduler_app.registry import registry
from scheduler_app.signin import login_url, redirect_to_sign_in

# The cookie app.js sets from the browser's zone (and the footer form from a choice).
ZONE_COOKIE = "tempora_tz"
# The event fragments listen for (`hx-trigger="jobs-changed from:body"`) to refresh after an action.
CHANGED_EVENT = "jobs-changed"


def console_view(view: Callable) -> Callable:
    """Login required. An htmx request from a page whose session ended goes to the login page
    as a whole page, not as a login form swapped into a table cell. A refusal by the services
    (permissions.Forbidden) is a 403 with its reason: a toast for htmx, a page otherwise."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            if request.htmx:
                back = request.htmx.current_url_abs_path or reverse("tempora:dashboard")
                return HttpResponseClientRedirect(f"{login_url()}?next={quote(back, safe='/')}")
            return redirect_to_sign_in(request.get_full_path())
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return forbidden(request, exc)

    return wrapper


def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    message = str(exc) or gettext("You may not do this.")
    if request.htmx:
        return toast(HttpResponse(status=403), message, "error", changed=False)
    return TemplateResponse(request, "scheduler_app/403.html", {"message": message}, status=403)


def require(allowed: bool, message: str) -> None:
    """Refuse a page or an action the permissions do not allow (a 403 with the reason)."""
    if not allowed:
        raise Forbidden(message)


def is_fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


def render_page(
    request: HttpRequest, template: str, context: dict, *, fragments: Iterable[str] = (), status: int = 200
) -> TemplateResponse:
    """The page, or the fragment the htmx request targets when the page declares it."""
    name = template
    if is_fragment(request) and request.htmx.target in set(fragments):
        name = f"{template}#{request.htmx.target}"
    response = TemplateResponse(request, name, context, status=status)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


# Lookups: another user's job is a 404, never a 403, so its existence does not leak.


def visible_jobs(request: HttpRequest):
    return Job.objects.visible_to(request.user)


def visible_executions(request: HttpRequest):
    return Execution.objects.visible_to(request.user)


def get_job(request: HttpRequest, pk: int) -> Job:
    return get_object_or_404(visible_jobs(request), pk=pk)


def get_execution(request: HttpRequest, pk: int) -> Execution:
    return get_object_or_404(visible_executions(request).select_related("job"), pk=pk)


# Time zones ---------------------------------------------------------------------------


def viewer_zone(request: HttpRequest) -> ZoneInfo:
    """The viewer's zone: the cookie (the browser's zone, or the one chosen in the footer),
    else TIME_ZONE. A bad cookie is ignored, never an error."""
    name = unquote(request.COOKIES.get(ZONE_COOKIE, ""))
    try:
        return triggers.validate_timezone(name)
    except triggers.ScheduleError:
        return ZoneInfo(settings.TIME_ZONE)


# Answers to actions --------------------------------------------------------------------


def safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, {request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


class _HeaderJSONEncoder(DjangoJSONEncoder):
    """JSON for HX-Trigger headers with <, > and & escaped (\u003c ...), as a second line of
    defence: app.js writes toasts with textContent anyway."""

    def encode(self, o):
        return super().encode(o).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def toast(response: HttpResponse, message: str, level: str = "success", *, changed: bool = True) -> HttpResponse:
    """Attach a toast (shown by app.js with textContent: never parsed as HTML)."""
    trigger_client_event(response, "toast", {"message": str(message), "level": level}, encoder=_HeaderJSONEncoder)
    if changed:
        trigger_client_event(response, CHANGED_EVENT, {}, encoder=_HeaderJSONEncoder)
    return response


def done(
    request: HttpRequest, message: str, *, next_url: str, level: str = "success", redirect: bool = False
) -> HttpResponse:
    """Answer a successful (or refused) action.

    htmx: 204 with a toast, or a client redirect (the message shows on the next page);
    no JS: a message and a redirect to `next`.
    """
    if request.htmx and not redirect:
        return toast(HttpResponse(status=204), message, level)
    getattr(messages, level if level in ("success", "error", "warning", "info") else "info")(request, message)
    if request.htmx:
        return HttpResponseClientRedirect(next_url)
    return HttpResponseRedirect(next_url)


def refused(request: HttpRequest, error: ValidationError | str, *, next_url: str) -> HttpResponse:
    """A service said no: show its reason as an error toast (or message)."""
    return done(request, error_text(error), next_url=next_url, level="error")


def throttled_message(wait: int) -> str:
    return ngettext(
        "Too many changes in a short time: nothing was saved. Try again in %(seconds)d second.",
        "Too many changes in a short time: nothing was saved. Try again in %(seconds)d seconds.",
        wait,
    ) % {"seconds": wait}


def too_many(request: HttpRequest, *, title: str, message: str, wait: int, back_url: str) -> HttpResponse:
    """429 with when to retry: a toast for htmx, else a page (the login lock, a throttled write)."""
    if request.htmx:
        response = toast(HttpResponse(status=429), message, "error", changed=False)
    else:
        response = render(
            request,
            "scheduler_app/too_many.html",
            {"title": title, "message": message, "back_url": back_url},
            status=429,
        )
    response["Retry-After"] = str(wait)
    return response


def throttled(request: HttpRequest, wait: int, *, back_url: str) -> HttpResponse:
    """A console write over the per-user write rate (api/throttling.py): refused, nothing done."""
    return too_many(
        request, title=gettext("Too many changes"), message=throttled_message(wait), wait=wait, back_url=back_url
    )


def error_text(error: ValidationError | str) -> str:
    if isinstance(error, str):
        return error
    if hasattr(error, "message_dict"):
        return " ".join(str(m) for messages_ in error.message_dict.values() for m in messages_)
    return " ".join(str(m) for m in error.messages)


def task_view(name: str) -> dict | None:
    """A registered task as plain data for templates. Never the TaskInfo itself: it is callable,
    and a template calls what it resolves, so `{{ info.description }}` would run the task."""
    if name not in registry:
        return None
    info = registry.get(name)
    return {"name": info.name, "description": info.description, "parameters": list(info.parameters)}


def paginate(request: HttpRequest, queryset, per_page: int = 25) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string without `names` (for pagination and sorting links)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()
