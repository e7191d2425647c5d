"""How failures become responses, so no input produces a 500.

- a serializer's or a service's ValidationError: 400 naming the field;
- a service's Forbidden (the user may see it but not do this): 403 with the reason;
- a service's ServiceError (well-formed but not allowed now, e.g. cancelling a finished
  run): 409 with the reason;
- a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE: 413 (DRF reads the raw stream and would
  otherwise parse any size; Django's multipart parser raises RequestDataTooBig, a 400);
- a unique constraint lost to a concurrent request: 409;
- the database being unreachable: 503.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from scheduler_app import triggers
from scheduler_app.permissions import Forbidden
from scheduler_app.services import ServiceError
from scheduler_app.services.errors import ErrorPlaces

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "unavailable"


def check_body_size(request) -> None:
    """Refuse a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE before anything reads it."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        length = 0
    if limit is not None and length > limit:
        raise PayloadTooLarge(f"The request body is {length} bytes; the limit is {limit}.")


class BodyLimitMixin:
    """Mixed into every API view: the size check runs before authentication and parsing."""

    def initial(self, request, *args, **kwargs):
        check_body_size(request)
        super().initial(request, *args, **kwargs)


def validation_errors(exc: DjangoValidationError) -> dict:
    """A Django ValidationError as DRF's shape: {"field": ["message"]}.

    Service keys such as `triggers.1.cron_expression` become nested like DRF's errors for a
    nested list: {"triggers": {"1": {"cron_expression": ["..."]}}}.
    """
    return ErrorPlaces.of(exc).drf(api_settings.NON_FIELD_ERRORS_KEY)


def exception_handler(exc, context):
    if isinstance(exc, Forbidden):
        exc = exceptions.PermissionDenied(exc.message)  # DRF's own would drop the reason
    elif isinstance(exc, ServiceError):
        exc = Conflict({"detail": " ".join(exc.messages), **validation_errors(exc)})
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_errors(exc))
    elif isinstance(exc, triggers.ScheduleError):
        exc = exceptions.ValidationError({exc.field: [exc.message]})
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, IntegrityError):
        logger.info("integrity error answered as 409: %s", exc)
        exc = Conflict("This change conflicts with existing data (for example, a name that was just taken).")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", exc)
        exc = ServiceUnavailable()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        # Errors are always an object: a bare list of messages becomes the non-field errors.
        response.data = {api_settings.NON_FIELD_ERRORS_KEY: response.data}
    return response
