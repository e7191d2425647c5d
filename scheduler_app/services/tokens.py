"""Per-user API tokens: create (the key shown once), revoke, mark used."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext

from scheduler_app import permissions
from scheduler_app.models import ApiToken
from scheduler_app.permissions import Forbidden
from scheduler_app.services.base import _now

logger = logging.getLogger(__name__)


# API tokens -----------------------------------------------------------------------------

# A token's last use is written at most this often: a busy client would otherwise turn
# every read into a write.
TOKEN_TOUCH_SECONDS = 60


@transaction.atomic
def token_create(*, user, name: str, now: datetime | None = None) -> tuple[ApiToken, str]:
    """Create an API token for `user`; answers the row and the plaintext key.

    The key is returned here once and never stored: only its SHA-256 is.
    `token, key = token_create(user=alice, name="ci-deploy")` → key "tmp_3fA9c2…".
    """
    now = _now(now)
    key = ApiToken.KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip() if isinstance(name, str) else name,
        key_hash=ApiToken.hash_key(key),
        prefix=key[: len(ApiToken.KEY_PREFIX) + 6],
        created_at=now,
    )
    token.full_clean()
    token.save()
    logger.info("API token created: %s for %s", token.prefix, user)
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, now: datetime | None = None, actor=None) -> ApiToken:
    """Revoke a token; it stops working at once. Revoking twice keeps the first time.
    Someone else's token needs change_apitoken."""
    if actor is not None and not permissions.may_revoke_token(actor, token):
        raise Forbidden(gettext("This token is someone else's: you may not revoke it."))
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=_now(now))
    token.refresh_from_db()
    logger.info("API token revoked: %s", token.prefix)
    return token


def token_mark_used(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record that a token was used, at most once per TOKEN_TOUCH_SECONDS (one conditional UPDATE)."""
    now = _now(now)
    stale = now - timedelta(seconds=TOKEN_TOUCH_SECONDS)
    ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk).update(
        last_used_at=now
    )
