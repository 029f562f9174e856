"""The OpenAPI schema of the whole API, made to tell the truth about every operation in one place.

drf-spectacular documents what a view returns when all goes well. `ApiAutoSchema` adds what each
operation answers when it does not, in the one error format of `billing_project.api_errors`
(component `Error`), from what the operation is:

- every operation: 401 (no credentials, or a token that is not valid) and 403 (the role may not);
- one that reads a body, a query or an Idempotency-Key: 400;
- one with an id in its path, or a paged list (a page past the last, a cursor that is not one): 404;
- one that honours an Idempotency-Key (every mutating call that a machine makes): 409, a key used for
  another request, and the conflicts its service raises.

A view names the codes it adds with `error_response(...)` in its own `@extend_schema`; what it names
is kept. Optional query parameters say `allowEmptyValue`: an empty one (`?status=`), as an HTML form
sends it, means "not filtered".
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from accounts.idempotency import HEADER as IDEMPOTENCY_HEADER
from billing_project.api_fields import CharField


class ErrorDetailSerializer(serializers.Serializer):
    code = CharField(help_text="Stable, for machines: `invalid`, `not_found`, `permission_denied`, ...")
    message = CharField(help_text="For people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=CharField()),
        help_text="The fields at fault, each with its reasons; empty when the error is not about one field.",
    )


class ErrorSerializer(serializers.Serializer):
    """Every refusal of the API: `{"error": {"code", "message", "fields"}}`."""

    error = ErrorDetailSerializer()


GENERIC_ERRORS = {
    "400": "`invalid`: a parameter or field is not valid (`error.fields` names each with its reasons); "
    "`parse_error`: the body cannot be read.",
    "401": "`not_authenticated`: no credentials; `authentication_failed`: the API token is not valid, has expired "
    "or was revoked.",
    "403": "`permission_denied`: the caller's role may not do this (a session call without its CSRF token too).",
    "404": "`not_found`: no such object among those the caller may see, or no such page.",
    "409": f"`idempotency_key_reused`: the {IDEMPOTENCY_HEADER} was already used for another request; "
    "or the object's state does not allow it now.",
}


def error_response(description: str, serializer=ErrorSerializer) -> OpenApiResponse:
    """A documented refusal with its `error.code`s, for a view's `@extend_schema(responses=...)`."""
    return OpenApiResponse(response=serializer, description=description)


class ApiAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        for parameter in parameters:
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        responses = operation["responses"]
        for status, description in self._error_statuses(parameters).items():
            documented = responses.get(status, {})
            if "content" in documented:
                continue
            response = self._get_response_for_code(ErrorSerializer, status, direction="response")
            response["description"] = documented.get("description") or description
            responses[status] = response
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # DRF refuses an empty list or dict where allow_empty is off; drf-spectacular does not say so.
        if getattr(field, "allow_empty", True) is False:
            key = {"array": "minItems", "object": "minProperties"}.get(schema.get("type"))
            if key:
                schema[key] = max(schema.get(key, 0), 1)

    def _error_statuses(self, parameters: list[dict]) -> dict[str, str]:
        where = {parameter["in"] for parameter in parameters}
        names = {parameter["name"] for parameter in parameters}
        idempotent = IDEMPOTENCY_HEADER in names
        statuses = ["401", "403"]
        if self.method in ("POST", "PUT", "PATCH") or "query" in where or idempotent:
            statuses.append("400")
        if "path" in where or {"page", "cursor"} & names:
            statuses.append("404")
        if idempotent:
            statuses.append("409")
        return {status: GENERIC_ERRORS[status] for status in statuses}


class AnyOf(serializers.Serializer):
    """A response that is one of several shapes, told apart by the request (drf-spectacular's
    PolymorphicProxySerializer says `oneOf`, which two pages that can both be empty would break)."""

    def __init__(self, component_name: str, serializers: list[type[serializers.Serializer]]):
        self.component_name = component_name
        self.serializers = serializers
        super().__init__()


class AnyOfExtension(OpenApiSerializerExtension):
    target_class = AnyOf

    def get_name(self, auto_schema, direction):
        return self.target.component_name

    def map_serializer(self, auto_schema, direction):
        return {"anyOf": [auto_schema.resolve_serializer(each, direction).ref for each in self.target.serializers]}
