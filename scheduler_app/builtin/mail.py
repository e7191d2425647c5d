"""tempora.send_email: one message through Django's email backend (EMAIL_* settings)."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email

logger = logging.getLogger(__name__)

# "Ann Example <ann@example.com>": validate the part inside the angle brackets.
_NAMED_ADDRESS = re.compile(r"^(?P<name>[^<>]*)<(?P<address>[^<>]+)>$")


def check_address(value: Any, field: str = "to") -> str:
    """Return `value` stripped if it is an address (`a@example.com` or `Ann <a@example.com>`)."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: {value!r} is not an email address.")
    value = value.strip()
    match = _NAMED_ADDRESS.match(value)
    try:
        validate_email(match.group("address").strip() if match else value)
    except ValidationError:
        raise ValueError(f"{field}: {value!r} is not a valid email address.") from None
    return value


def recipients(to: str | list[str]) -> list[str]:
    """`"a@example.com"`, `"a@example.com, b@example.com"` or a list of addresses -> checked list."""
    if isinstance(to, str):
        items = to.split(",")
    elif isinstance(to, (list, tuple)):
        items = list(to)
    else:
        raise ValueError(f"to: give an address or a list of addresses, not {type(to).__name__}.")
    addresses = [check_address(item) for item in items if not (isinstance(item, str) and not item.strip())]
    if not addresses:
        raise ValueError("to: no recipient given.")
    return addresses


def send(to: str | list[str], subject: str, body: str, from_email: str | None = None, html: str | None = None) -> dict:
    addresses = recipients(to)
    sender = check_address(from_email, "from_email") if from_email else settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=sender, to=addresses)
    if html:
        message.attach_alternative(html, "text/html")
    logger.info("sending %r from %s to %s", subject, sender, ", ".join(addresses))
    # fail_silently=False: an SMTP refusal or an unreachable server raises, failing the run.
    sent = message.send()
    logger.info("sent %d message(s) to %d recipient(s)", sent, len(addresses))
    return {"sent": sent, "to": addresses, "from_email": sender, "subject": subject}
