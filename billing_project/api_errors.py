"""One error format for the whole API: {"error": {"code", "message", "fields"}}."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from billing_project.errors import DomainError
from billing_project.text import printable


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {message}" for key, value in detail.items() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for item in detail for message in _flatten(item)]
    return [str(detail)]


def _field_errors(detail) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {}
    return {field: _flatten(messages) for field, messages in detail.items() if field != "non_field_errors"}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    """Messages may quote the input (\"'x' is not a valid choice\"): control characters in it are shown escaped."""
    fields = {printable(str(name)): [printable(str(text)) for text in texts] for name, texts in (fields or {}).items()}
    return {"error": {"code": code, "message": printable(message), "fields": fields}}


def exception_handler(exc, context):
    # DRF converts these two itself, but only on its own copy: convert first so they get our format too.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than {limit:,} bytes." if limit else str(exc)
        return Response(error_body("request_too_large", message), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response(error_body("parse_error", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        fields = {key: value for key, value in fields.items() if key != "__all__"}
        message = "; ".join(exc.messages) or "Invalid input."
        return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        non_field = exc.detail.get("non_field_errors") if isinstance(exc.detail, dict) else exc.detail
        message = "; ".join(_flatten(non_field)) if non_field else "Some fields are not valid."
        response.data = error_body("invalid", message, fields)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(code, " ".join(_flatten(exc.detail)))
    return response


def not_found(request, exception=None):
    """Django's 404 for addresses no view matches (`/api/invoices/1.5`): in the error format under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "There is nothing at this address of the API."), status=404)
    return page_not_found(request, exception)
