"""How the API reads request bodies: JSON, or a form (urlencoded or multipart) of plain fields.

A body that cannot be read whole is a 400 `parse_error` in the one error format (billing_project.api_errors):
too deeply nested or invalid JSON, text that is not UTF-8, a malformed multipart body. DRF's parsers let some
of these through as a 500 (a RecursionError) or as an empty body, which a call with only optional fields took
for "no options" and answered 200.
"""

import email.parser
import email.policy
import io
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from billing_project.errors import DomainError

# A lone surrogate can only come from a \uD800-\uDFFF escape: bodies without one need no further look.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _read_whole(stream) -> bytes:
    """The body, refused past DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB) as request.body is."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise RequestDataTooBig("The request body exceeds the size limit.")
    return body


def _holds_lone_surrogate(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's, and a body nested too deeply or holding a lone surrogate (`"\\ud800"`, not a character, which no
    database stores) is a parse error too."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_whole(stream)
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if _SURROGATE_ESCAPE.search(body) and _holds_lone_surrogate(data):
            raise ParseError("JSON parse error - a string holds a lone surrogate (\\ud800-\\udfff), not a character.")
        return data


class FormParser(parsers.FormParser):
    """DRF's, but text that is not UTF-8 is a parse error instead of being read with replacement characters."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_whole(stream)
        encoding = parsers.get_encoding(parser_context or {})
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            raise ParseError(f"Form parse error - the body is not valid {encoding} text.") from None
        try:
            return QueryDict(body, encoding=encoding)
        except TooManyFieldsSent as error:
            raise ParseError(f"Form parse error - {error}") from None


class MultiPartParser(parsers.MultiPartParser):
    """multipart/form-data of plain fields, checked whole (the API takes no files).

    Django's parser skips what it cannot read: a body without its boundaries, or cut short, or a part without
    a name reached the view as no data at all. Here every part must be a named form-data field of UTF-8 text,
    between an opening and a closing boundary.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_whole(stream)
        head = f"Content-Type: {media_type}\r\n\r\n".encode("latin-1", errors="replace")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if message.get_boundary() is None:
            raise ParseError("Multipart form parse error - the Content-Type names no boundary.")
        if message.defects or not message.is_multipart():
            raise ParseError(
                "Multipart form parse error - the body does not open and close with its boundary "
                f"({'; '.join(type(defect).__name__ for defect in message.defects) or 'no part'})."
            )
        parts = message.get_payload()
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if limit is not None and len(parts) > limit:
            raise ParseError(f"Multipart form parse error - more than {limit} fields.")
        encoding = parsers.get_encoding(parser_context or {})
        data = QueryDict(mutable=True)
        for position, part in enumerate(parts, start=1):
            name, value = _field(part, position, encoding)
            data.appendlist(name, value)
        data._mutable = False
        return parsers.DataAndFiles(data, MultiValueDict())


def _field(part, position: int, encoding: str) -> tuple[str, str]:
    name = part.get_param("name", header="content-disposition")
    if part.defects or part.is_multipart() or part.get_content_disposition() != "form-data" or not name:
        raise ParseError(
            f"Multipart form parse error - part {position} is not a named form-data field "
            '(Content-Disposition: form-data; name="…").'
        )
    if part.get_filename() is not None:
        raise ParseError(f"Multipart form parse error - the API takes no files, and the field {name} holds one.")
    try:
        return name, part.get_payload(decode=True).decode(encoding)
    except UnicodeDecodeError:
        raise ParseError(f"Multipart form parse error - the field {name} is not valid {encoding} text.") from None


def refuse_a_body(request) -> None:
    """For a call that takes no body: it accepts none, or `{}` as JSON (what some clients always send)."""
    if request.data != {}:
        raise DomainError(
            f"{request.method} {request.path} takes no body; send none, or {{}} as JSON.", code="unexpected_body"
        )
