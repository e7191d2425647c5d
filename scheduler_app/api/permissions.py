"""Who may do what through the API.

Visibility is done by filtering querysets (`Job.objects.visible_to(user)`), so another user's
object is simply not found: a 404 in lists, details, verbs and nested routes alike. The
classes here cover what filtering cannot: staff-only endpoints, read-only shared rows, and
the address allow-list for monitoring endpoints.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission



class IsStaff(BasePermission):
    """Scheduler control and configuration: staff only."""

    message = "Only staff may control or configure the scheduler."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


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
    entries = tuple(getattr(settings, "METRICS_ALLOWED_IPS", ()) or ())
    if not entries:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(entries))


class IsStaffOrAllowedAddress(BasePermission):
    """/metrics: staff, or a scraper whose address is on METRICS_ALLOWED_IPS."""

    def has_permission(self, request, view) -> bool:
        return address_allowed(request) or IsStaff().has_permission(request, view)


class IsAuthenticatedOrAllowedAddress(BasePermission):
    """/api/health/: any signed-in user, or a monitor whose address is on METRICS_ALLOWED_IPS."""

    def has_permission(self, request, view) -> bool:
        return address_allowed(request) or bool(request.user and request.user.is_authenticated)


class CalendarWriteAccess(BasePermission):
    """Shared calendars (no owner) are read-only to non-staff; own ones are theirs to change."""

    message = "This calendar is shared: only staff may change it."

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS or request.user.is_staff:
            return True
        return obj.owner_id == request.user.pk
