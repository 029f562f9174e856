"""`Idempotency-Key` for mutating API calls (STYLE.md, "API").

The key is claimed in the same database transaction as the call's own writes, so a call and its
record commit together or not at all. A retry with the same key and body gets the first response;
the same key with another body or on another endpoint is refused. A call that failed stored
nothing, so it may be retried with the same key.
"""

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.models import IdempotencyRecord
from billing_project.errors import Conflict, DomainError
from billing_project.text import has_unprintable, printable

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "maxLength": MAX_KEY_LENGTH},
    OpenApiParameter.HEADER,
    description="Optional. A retry with the same key and body returns the first response instead of acting again.",
)
REPLAYED_HEADER = OpenApiParameter(
    f"{HEADER}-Replayed",
    {"type": "string", "enum": ["true"]},
    OpenApiParameter.HEADER,
    response=[200, 201],
    description=f"Present on a replay: the first response to this {HEADER}, sent again.",
)
# The request header and the response header that say a response is a replay.
IDEMPOTENCY_PARAMETERS = [IDEMPOTENCY_PARAMETER, REPLAYED_HEADER]


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def idempotent(view_method):
    """Decorate a DRF view method (`post`, `create`, `patch`…) to honour the Idempotency-Key header."""

    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if not key:
            return view_method(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise DomainError(f"{HEADER} may be at most {MAX_KEY_LENGTH} characters.", code="invalid_idempotency_key")
        if has_unprintable(key):
            raise DomainError(f"{HEADER} may not hold control characters.", code="invalid_idempotency_key")
        scope = printable(f"{request.method} {request.path}")[:255]
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=request.user, key=key, scope=scope, fingerprint=_fingerprint(request)
                    )
            except IntegrityError:
                return _replay(request, key=key, scope=scope)
            response = view_method(view, request, *args, **kwargs)
            record.status_code = response.status_code
            record.response_body = json.loads(JSONRenderer().render(response.data) or "null")
            record.save(update_fields=["status_code", "response_body"])
            return response

    return extend_schema(parameters=IDEMPOTENCY_PARAMETERS)(wrapper)


def _replay(request, *, key: str, scope: str) -> Response:
    record = IdempotencyRecord.objects.get(user=request.user, key=key)
    if record.scope != scope or record.fingerprint != _fingerprint(request):
        raise Conflict(
            f"This {HEADER} was already used for a different request; use a new key.", code="idempotency_key_reused"
        )
    response = Response(record.response_body, status=record.status_code)
    response[f"{HEADER}-Replayed"] = "true"
    return response
