"""Where a visitor who is not signed in is sent: the console's own login page.

The console's login admits every user (Django's admin login admits only staff), so it wins over
the host's LOGIN_URL, which may point at a page of the host's that Tempora knows nothing of.
A host that mounts the API without the console keeps its own LOGIN_URL.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse

CONSOLE_LOGIN = "tempora:login"


def login_url() -> str:
    try:
        return reverse(CONSOLE_LOGIN)
    except NoReverseMatch:
        return resolve_url(settings.LOGIN_URL)


def redirect_to_sign_in(next_path: str) -> HttpResponseRedirect:
    return redirect_to_login(next_path, login_url())
