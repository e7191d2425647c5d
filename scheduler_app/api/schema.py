"""OpenAPI details drf-spectacular cannot infer: our token scheme, and the error answers
every operation can give (so clients and schemathesis know their shapes)."""

from __future__ import annotations

import contextvars
import inspect
from contextlib import contextmanager

from django.urls import NoReverseMatch, reverse
from drf_spectacular import utils
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import patched_settings
from rest_framework.schemas.inspectors import ViewInspector

from scheduler_app.models import Execution, Job

EXECUTION_STATUSES = Execution.Status.choices
JOB_STATES = Job.State.choices


def extend_schema(**kwargs):
    """drf-spectacular's @extend_schema, whatever REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] says.

    On a method, drf-spectacular builds on that setting, which a host may leave as DRF's own
    AutoSchema; its schema generator then puts the view's schema (ours: api/views/base.py)
    under the method's, minus the setting's classes. Built on their common base instead, the
    method's annotations sit on our AutoSchema with any host setting. Use this one in the app
    (ruff's TID251 says so).
    """
    decorate = utils.extend_schema(**kwargs)  # noqa: TID251 (the one use)

    def decorator(view):
        if not inspect.isclass(view) and "schema" not in (getattr(view, "kwargs", None) or {}):
            view.kwargs = {**(getattr(view, "kwargs", None) or {}), "schema": ViewInspector}
        return decorate(view)

    return decorator


_OURS = contextvars.ContextVar("tempora_schema", default=False)


class TemporaAutoSchema(AutoSchema):
    """Tempora's operations appear in Tempora's schema only: a host's own drf-spectacular
    schema (and its `check --deploy`, which builds it) leaves them out, so our enum names and
    paths neither clutter nor collide with the host's."""

    def is_excluded(self) -> bool:
        return not _OURS.get() or super().is_excluded()


@contextmanager
def tempora_schema():
    """Build or serve Tempora's schema: our operations in, our drf-spectacular settings on."""
    token = _OURS.set(True)
    try:
        with patched_settings(SPECTACULAR):
            yield
    finally:
        _OURS.reset(token)


# drf-spectacular's settings for our schema and docs views (api/views/docs.py), applied by
# tempora_schema() on each request, so a host's SPECTACULAR_SETTINGS shape its own API only.
SPECTACULAR = {
    "TITLE": "Tempora API",
    "DESCRIPTION": "Schedule, run and inspect jobs. Every state change goes through the same services as the console.",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Nothing from the internet: no validator badge.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": EXECUTION_STATUSES,
        "JobStateEnum": JOB_STATES,
        "HealthStatusEnum": [("ok", "ok"), ("unavailable", "unavailable")],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scheduler_app.api.schema.add_error_responses",
    ],
}

ERROR_DETAIL = {
    "type": "object",
    "description": "An error with a human-readable `detail`.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
VALIDATION_ERRORS = {
    "type": "object",
    "description": 'Field name → list of messages, e.g. {"timezone": ["\'Mars/Base\' is not an IANA time zone name"]}; '
    'a nested list is keyed by index: {"triggers": {"1": {"cron_expression": ["..."]}}}.',
    "additionalProperties": True,
}
COMMON = {
    "400": ("ValidationErrors", "Invalid input; the body names each field that is wrong."),
    "401": ("ErrorDetail", "No valid credentials (send 'Authorization: Token <key>')."),
    "403": ("ErrorDetail", "Signed in, but not allowed (e.g. scheduler control without staff rights)."),
    "404": ("ErrorDetail", "No such object among those you can see."),
}
WRITES = {
    "409": ("ErrorDetail", "Not possible in the object's current state (e.g. cancelling a finished run)."),
    "413": ("ErrorDetail", "The request body is larger than the server accepts."),
    "415": ("ErrorDetail", "The body is not JSON (send Content-Type: application/json)."),
    "429": ("ErrorDetail", "Too many changes; retry after the Retry-After seconds."),
}


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "scheduler_app.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-user API token from POST /api/tokens/: 'Authorization: Token <key>' or 'Bearer <key>'.",
        }


class PasswordScheme(OpenApiAuthenticationExtension):
    # drf-spectacular's own Basic scheme matches BasicAuthentication itself, not subclasses.
    target_class = "scheduler_app.api.authentication.PasswordAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "Username and password, on /api/tokens/ only (to get a first token); locked after "
            "repeated failures.",
        }


def _unslashed() -> tuple[str, ...]:
    """Where FastScheduler's API and /metrics are mounted: their paths are written without a
    trailing slash (both forms work), as FastScheduler and Prometheus spell them."""
    places = []
    for name, tail in (("tempora-fastscheduler:status", "status"), ("tempora-metrics:metrics", "")):
        try:
            places.append(reverse(name).removesuffix(tail))
        except NoReverseMatch:
            pass  # that part is not mounted
    return tuple(places)


def _canonical(path: str, unslashed: tuple[str, ...]) -> str:
    if any(path.startswith(place) for place in unslashed):
        return path.rstrip("/")
    return path


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: document the error answers every operation may give."""
    unslashed = _unslashed()
    result["paths"] = {_canonical(path, unslashed): operations for path, operations in result.get("paths", {}).items()}
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorDetail", ERROR_DETAIL)
    schemas.setdefault("ValidationErrors", VALIDATION_ERRORS)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            wanted = dict(COMMON)
            if method != "get":
                wanted.update(WRITES)
            plain_text = any("text/plain" in r.get("content", {}) for r in responses.values() if isinstance(r, dict))
            for code, (schema, description) in wanted.items():
                if code in responses:
                    continue
                if plain_text:
                    content = {"text/plain": {"schema": {"type": "string"}}}
                else:
                    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
                responses[code] = {"description": description, "content": content}
    return result
