"""The API's gates in front of scheduler_app/permissions.py, which decides.

Visibility is done by filtering querysets (`Job.objects.visible_to(user)`), so another user's
object is simply not found: a 404 in lists, details, verbs and nested routes alike. What a user
may see but not change is refused by the services (permissions.Forbidden, a 403 naming what).
The classes here gate the reads that filtering cannot: node details, runtime settings and
/metrics, and the address allow-list for monitoring endpoints.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from rest_framework.permissions import BasePermission

from scheduler_app import permissions
from scheduler_app.conf import tempora_settings


class MayViewNodes(BasePermission):
    """Runtime settings: for those who may see the scheduler's insides or control it."""

    message = "Seeing the scheduler's nodes and settings needs the permission scheduler_app.view_schedulernode."

    def has_permission(self, request, view) -> bool:
        return permissions.may_view_nodes(request.user) or permissions.may_control_scheduler(request.user)


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue  # a malformed entry allows nothing rather than everything
    return tuple(networks)


def address_allowed(request) -> bool:
    """Is the client's address in METRICS_ALLOWED_IPS (addresses or CIDR networks)?

    Only REMOTE_ADDR counts: X-Forwarded-For is whatever the client says it is.
    """
    entries = tuple(tempora_settings.METRICS_ALLOWED_IPS or ())
    if not entries:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(entries))


class MayViewNodesOrAllowedAddress(BasePermission):
    """/metrics: users with view_schedulernode, or a scraper whose address is on METRICS_ALLOWED_IPS."""

    message = MayViewNodes.message

    def has_permission(self, request, view) -> bool:
        return address_allowed(request) or permissions.may_view_nodes(request.user)


class IsAuthenticatedOrAllowedAddress(BasePermission):
    """/api/health/: any signed-in user, or a monitor whose address is on METRICS_ALLOWED_IPS."""

    def has_permission(self, request, view) -> bool:
        return address_allowed(request) or bool(request.user and request.user.is_authenticated)
