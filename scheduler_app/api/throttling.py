"""Write throttling: each user may make so many changes a minute (scope "writes").

The rate is TEMPORA["API_WRITE_THROTTLE"] ("600/minute" by default; None for no limit), whatever
the host's REST_FRAMEWORK says. Reads are never throttled. Counts live in Django's default
cache: per process by default, shared when CACHE_URL points at Redis. The console's job
creation and duplication spend the same budget (`write_wait`).
"""

from __future__ import annotations

import math

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle

from scheduler_app.conf import tempora_settings


class WriteThrottle(UserRateThrottle):
    scope = "writes"

    def get_rate(self):
        # Read the rate on each request, not once at import (SimpleRateThrottle's class
        # attribute), so a changed setting applies without a restart and tests can set it.
        return tempora_settings.API_WRITE_THROTTLE

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


def write_wait(request) -> int | None:
    """Count one write by a console request against the API's rate: None if it may go ahead,
    else the whole seconds to wait. The same throttle, rate and cache key as the API's, so a
    user has one budget whichever interface the writes come from."""
    throttle = WriteThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))
