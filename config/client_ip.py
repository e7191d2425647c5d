"""The client's address, for the login lock (settings.AXES_CLIENT_IP_CALLABLE).

Without a proxy it is the socket's address. Behind TRUSTED_PROXY_COUNT reverse proxies that
each append the address they received from to X-Forwarded-For, it is the entry that many from
the right: what the outermost trusted proxy saw. Entries to the left of it were written by the
client and are never believed, so a guesser cannot dodge the lock by sending a new address.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    socket_address = request.META.get("REMOTE_ADDR")
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if not proxies:
        return socket_address
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        # Fewer entries than proxies: the request did not come through all of them.
        return socket_address
    candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return socket_address
