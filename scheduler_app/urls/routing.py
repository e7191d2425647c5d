"""How the API's routes are spelled: every route takes its trailing slash or leaves it.

`POST /api/groups/etl/pause` and `POST /api/groups/etl/pause/` are the same call (a redirect
would lose a POST body).
"""

from django.urls import re_path
from rest_framework.routers import Route, SimpleRouter

OPTIONAL_SLASH = "/?"


class Router(SimpleRouter):
    """DRF's router, plus DELETE on a list route for viewsets with a `clear` method."""

    routes = [
        Route(
            url=route.url,
            mapping={**route.mapping, "delete": "clear"},
            name=route.name,
            detail=route.detail,
            initkwargs=route.initkwargs,
        )
        if isinstance(route, Route) and route.name == "{basename}-list"
        else route
        for route in SimpleRouter.routes
    ]

    def __init__(self):
        super().__init__()
        self.trailing_slash = OPTIONAL_SLASH


def route(pattern: str, view, name: str):
    return re_path(rf"^{pattern}{OPTIONAL_SLASH}$", view.as_view(), name=name)
