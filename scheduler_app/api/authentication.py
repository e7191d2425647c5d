"""API authentication: tokens everywhere, a password only to get a token.

`Authorization: Token <key>` (or `Bearer <key>`): keys are looked up by their SHA-256
(models.ApiToken), so a stolen database holds no usable key. A revoked token, an unknown key
or an inactive user is a 401, never a fall-through to anonymous: a client that sends a key
wants to know that it does not work. A wrong key is not a failed login: it locks nobody out.

HTTP Basic (`curl -u user:password`) on /api/tokens/ only, under the same login lock
(django-axes) as the console and the admin: past LOGIN_FAILURE_LIMIT failures it answers 429
with when to retry.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, BasicAuthentication, get_authorization_header

from scheduler_app import services
from scheduler_app.models import ApiToken

KEYWORDS = (b"token", b"bearer")
MAX_KEY_LENGTH = 200


class TokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None  # no key: session authentication may still apply
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the header as 'Authorization: Token <key>'."))
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return self.authenticate_key(key)

    def authenticate_key(self, key: str):
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=ApiToken.hash_key(key), revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("This token's user is inactive."))
        services.token_mark_used(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes unauthenticated requests a 401 (with this challenge) rather than a 403.
        return self.keyword


def lockout_seconds() -> int:
    """How long a lock lasts. Every refused attempt starts the cool-off again (django-axes'
    AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so it is also the wait from now."""
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    return int(cool_off.total_seconds())


def lockout_message() -> str:
    """What a locked-out login is told, on the console's page and in the API's 429."""
    now = timezone.now()
    wait = timeuntil(now + timedelta(seconds=lockout_seconds()), now)
    return gettext(
        "Too many failed sign-ins: try again in %(time)s, or ask an administrator to unlock the account."
    ) % {"time": wait}


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self):
        super().__init__(lockout_message())
        self.wait = lockout_seconds()  # DRF's exception handler sends it as Retry-After


class PasswordAuthentication(BasicAuthentication):
    """HTTP Basic, refused with 429 while django-axes holds a lock on this user and address.

    Django's authenticate() reports the failure to django-axes (the `request` is passed on),
    which marks the request locked once the limit is reached; a locked-out attempt is refused
    before the password is checked, so the right password does not get through either.
    """

    def authenticate_credentials(self, userid, password, request=None):
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise LockedOut() from None
            raise
