"""The API's two ways to page a list, with the page size checked instead of silently replaced by the default.

Page numbers (`count`, `next`, `previous`, `results`) for lists of a bounded size; a cursor (`next`,
`previous`, `results`, no count) for the ones that grow without end, where COUNT(*) would be the
slowest part of the request. An empty parameter (`?page_size=`) means it was not given.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


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


class KeysetCursorPagination(CursorPagination):
    """A cursor on a unique key of two columns (`ordering`: a time or other column, then `-id` or `id`, both the
    same direction), compared as a pair: the page after a row holds the rows whose key sorts after that row's.

    DRF's own cursor keeps only the first column and skips rows of the same value by counting them; under rows
    inserted while a client pages, that count points at the wrong row and the page skips or repeats one. A key
    never moves, so a row inserted meanwhile shows up or not, but no row is skipped or repeated; and an index on
    the two columns in that order answers any page by reading its rows only. The position is
    `<value as ISO 8601>|<id>`, base64 encoded like DRF's; any other cursor answers 404 "Invalid cursor".
    """

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        self._model = queryset.model
        reverse = bool(self.cursor and self.cursor.reverse)
        position = self.cursor.position if self.cursor else None
        if self.cursor is not None and (self.cursor.offset or position is None):
            raise NotFound(self.invalid_cursor_message)
        column, key = (field.lstrip("-") for field in self.ordering)
        descending = self.ordering[0].startswith("-")
        forward_descending = descending != reverse  # the direction of this query
        queryset = queryset.order_by(*(_reversed(field) for field in self.ordering) if reverse else self.ordering)
        if position is not None:
            value, pk = self._parse(position)
            after = "lt" if forward_descending else "gt"
            bound = "lte" if forward_descending else "gte"
            # The redundant bound on the first column lets an index on (column, id) start at the position.
            queryset = queryset.filter(
                Q(**{f"{column}__{after}": value}) | Q(**{column: value, f"{key}__{after}": pk}),
                **{f"{column}__{bound}": value},
            )
        rows = list(queryset[: self.page_size + 1])
        self.page = rows[: self.page_size]
        more = len(rows) > self.page_size
        if reverse:
            self.page.reverse()
            self.has_next, self.has_previous = position is not None, more
        else:
            self.has_next, self.has_previous = more, position is not None
        self.next_position = self._position(self.page[-1]) if self.page else position
        self.previous_position = self._position(self.page[0]) if self.page else position
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page

    def get_next_link(self):
        if not self.has_next:
            return None
        return self.encode_cursor(pagination.Cursor(offset=0, reverse=False, position=self.next_position))

    def get_previous_link(self):
        if not self.has_previous:
            return None
        return self.encode_cursor(pagination.Cursor(offset=0, reverse=True, position=self.previous_position))

    def _position(self, row) -> str:
        column, key = (field.lstrip("-") for field in self.ordering)
        value = getattr(row, column)
        return f"{value.isoformat() if hasattr(value, 'isoformat') else value}|{getattr(row, key)}"

    def _parse(self, position: str):
        value, _, pk = position.rpartition("|")
        try:
            pk = int(pk)
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            parsed = field.to_python(value)
        except (ValueError, TypeError, DjangoValidationError) as error:
            raise NotFound(self.invalid_cursor_message) from error
        if parsed is None:
            raise NotFound(self.invalid_cursor_message)
        return parsed, pk


def _reversed(field: str) -> str:
    return field[1:] if field.startswith("-") else f"-{field}"
