"""tempora.send_email: one message through Django's email backend (EMAIL_* settings).

Fenced: the sender is always the configured one (DEFAULT_FROM_EMAIL; a from_email naming
another address is refused, never quietly replaced); to, cc and bcc together are capped
(TEMPORA_EMAIL_MAX_RECIPIENTS) and may be limited to some domains
(TEMPORA_EMAIL_ALLOWED_DOMAINS); a header value with a line break is refused, so no argument
can add a header or a recipient.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.utils.translation import gettext

from scheduler_app.builtin import Refused, conf, network

logger = logging.getLogger(__name__)

# "Ann Example <ann@example.com>": validate the part inside the angle brackets.
_NAMED_ADDRESS = re.compile(r"^(?P<name>[^<>]*)<(?P<address>[^<>]+)>$")


def check_address(value: Any, field: str = "to") -> tuple[str, str]:
    """`value` stripped and its bare address: `"Ann <a@example.com>"` -> ("Ann <a@example.com>", "a@example.com")."""
    if not isinstance(value, str):
        raise ValueError(gettext("%(field)s: %(value)r is not an email address.") % {"field": field, "value": value})
    if any(char in value for char in "\r\n\x00"):
        raise Refused(
            gettext("%(field)s: %(value)r contains a line break; a header is one line.")
            % {"field": field, "value": value}
        )
    value = value.strip()
    match = _NAMED_ADDRESS.match(value)
    address = match.group("address").strip() if match else value
    try:
        validate_email(address)
    except ValidationError:
        raise ValueError(
            gettext("%(field)s: %(value)r is not a valid email address.") % {"field": field, "value": value}
        ) from None
    return value, address


def recipients(to: Any, field: str = "to") -> list[tuple[str, str]]:
    """`"a@example.com"`, `"a@example.com, b@example.com"` or a list of addresses -> checked (value, address) pairs."""
    if to is None:
        return []
    if isinstance(to, str):
        items = to.split(",")
    elif isinstance(to, (list, tuple)):
        items = list(to)
    else:
        raise ValueError(
            gettext("%(field)s: give an address or a list of addresses, not %(type)s.")
            % {"field": field, "type": type(to).__name__}
        )
    return [check_address(item, field) for item in items if not (isinstance(item, str) and not item.strip())]


@dataclass(frozen=True)
class Message:
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]


def check(
    to: Any, subject: Any, body: Any, from_email: Any = None, html: Any = None, cc: Any = None, bcc: Any = None
) -> Message:
    """The arguments' checks, the same at save and at run."""
    lists = {field: recipients(value, field) for field, value in (("to", to), ("cc", cc), ("bcc", bcc))}
    if not lists["to"]:
        raise ValueError(gettext("to: no recipient given."))
    count, limit = sum(len(found) for found in lists.values()), conf.integer("EMAIL_MAX_RECIPIENTS")
    if count > limit:
        raise Refused(
            gettext(
                "to: %(count)d recipients (to, cc and bcc together); the limit is %(limit)d "
                "(TEMPORA_EMAIL_MAX_RECIPIENTS)."
            )
            % {"count": count, "limit": limit}
        )
    domains = conf.email_allowed_domains()
    if domains:
        for field, found in lists.items():
            for value, address in found:
                if _domain(address) not in domains:
                    raise Refused(
                        gettext(
                            "%(field)s: %(value)r is not in an allowed domain (TEMPORA_EMAIL_ALLOWED_DOMAINS: "
                            "%(domains)s)."
                        )
                        % {"field": field, "value": value, "domains": ", ".join(sorted(domains))}
                    )
    for field, value in (("subject", subject), ("body", body), ("html", html)):
        if not isinstance(value, str) and not (field == "html" and value is None):
            raise ValueError(
                gettext("%(field)s: expected text, not %(type)s.") % {"field": field, "type": type(value).__name__}
            )
    if any(char in subject for char in "\r\n\x00"):
        raise Refused(gettext("subject: %(value)r contains a line break; a header is one line.") % {"value": subject})
    return Message(sender=_sender(from_email), **{field: [v for v, _ in found] for field, found in lists.items()})


def _domain(address: str) -> str | None:
    try:
        return network.domain_name(address.rpartition("@")[2])
    except ValueError:
        return None  # a domain literal such as [192.0.2.1] is in no allowed domain


def _sender(from_email: Any) -> str:
    configured = settings.DEFAULT_FROM_EMAIL
    if not from_email:
        return configured
    value, address = check_address(from_email, "from_email")
    if address.casefold() != parseaddr(configured)[1].casefold():
        raise Refused(
            gettext(
                "from_email: %(value)r is not the configured sender %(sender)s (DEFAULT_FROM_EMAIL); "
                "messages go out only from it."
            )
            % {"value": value, "sender": configured}
        )
    return value  # the configured address, perhaps with a display name


def validate(arguments: dict) -> None:
    """@task(validate=...): the checks a job's arguments get when it is saved."""
    check(**arguments)


def send(
    to: Any,
    subject: str,
    body: str,
    from_email: str | None = None,
    html: str | None = None,
    cc: Any = None,
    bcc: Any = None,
) -> dict:
    plan = check(to, subject, body, from_email, html, cc, bcc)
    message = EmailMultiAlternatives(
        subject=subject, body=body, from_email=plan.sender, to=plan.to, cc=plan.cc, bcc=plan.bcc
    )
    if html:
        message.attach_alternative(html, "text/html")
    logger.info("sending %r from %s to %s", subject, plan.sender, ", ".join(plan.to + plan.cc + plan.bcc))
    # fail_silently=False: an SMTP refusal or an unreachable server raises, failing the run.
    sent = message.send()
    logger.info("sent %d message(s) to %d recipient(s)", sent, len(plan.to) + len(plan.cc) + len(plan.bcc))
    return {"sent": sent, "to": plan.to, "cc": plan.cc, "bcc": plan.bcc, "from_email": plan.sender, "subject": subject}
