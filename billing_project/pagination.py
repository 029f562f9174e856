"""The API's two ways to page a list, with the page size checked instead of silently replaced by the default.

Page numbers (`count`, `next`, `previous`, `results`) for lists of a bounded size; a cursor (`next`,
`previous`, `results`, no count) for the ones that grow without end, where COUNT(*) would be the
slowest part of the request. An empty parameter (`?page_size=`) means it was not given.
"""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageSizeMixin:
    page_size_query_param = "page_size"
    page_size_query_description = "Results per page."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param, "") if self.page_size_query_param else ""
        if raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"Enter a whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def page_size_parameter(self) -> dict:
        return {
            "name": self.page_size_query_param,
            "required": False,
            "in": "query",
            "description": f"{self.page_size_query_description} Default {self.page_size}.",
            "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
        }


PAGE_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["last"]}]}
PAGE_DESCRIPTION = "A page number from 1, or `last`; a page past the last answers 404 `not_found`."


class PageNumberPagination(pagination.PageNumberPagination):
    """The default: `?page=` from 1 (or `last`); a page past the last answers 404. No `page_size` unless a list
    allows one."""

    page_query_description = PAGE_DESCRIPTION

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = PAGE_SCHEMA
        return parameters


class SizedPageNumberPagination(PageSizeMixin, PageNumberPagination):
    page_size = 100
    max_page_size = 1000

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        return [p for p in parameters if p["name"] != self.page_size_query_param] + [self.page_size_parameter()]


class CursorPagination(PageSizeMixin, pagination.CursorPagination):
    """Subclasses set `ordering`, `page_size` and `max_page_size`."""

    cursor_query_description = "Where the page starts: the `next` or `previous` link of another page, as it is."

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        return [p for p in parameters if p["name"] != self.page_size_query_param] + [self.page_size_parameter()]
