"""OpenAPI details drf-spectacular cannot infer: our token scheme, and the error answers
every operation can give (so clients and schemathesis know their shapes)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from scheduler_app.models import Execution, Job

# ENUM_NAME_OVERRIDES names the execution statuses and job states once (settings cannot import models).
EXECUTION_STATUSES = Execution.Status.choices
JOB_STATES = Job.State.choices

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


def _canonical(path: str) -> str:
    # FastScheduler's paths and /metrics are written without a trailing slash (both forms work).
    if path.startswith("/scheduler/api/") or path == "/metrics/":
        return path.rstrip("/")
    return path


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: document the error answers every operation may give."""
    result["paths"] = {_canonical(path): operations for path, operations in result.get("paths", {}).items()}
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
