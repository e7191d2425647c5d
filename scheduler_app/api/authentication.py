"""API token authentication: `Authorization: Token <key>` (or `Bearer <key>`).

Keys are looked up by their SHA-256 (models.ApiToken), so a stolen database holds no usable
key. A revoked token, an unknown key or an inactive user is a 401, never a fall-through to
anonymous: a client that sends a key wants to know that it does not work.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

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
