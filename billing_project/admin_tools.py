"""Admin building blocks shared by the apps (kept apart from admin_site, which loads before the models)."""

import calendar
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import BinaryIO

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.views import ChangeList

from billing_project import formatting
from billing_project.billing_time import billing_day_range, billing_zone
from billing_project.errors import DomainError
from billing_project.spreadsheets import csv_download, spreadsheet_safe, write_csv, write_xlsx, xlsx_download


class ReadOnlyAdmin(ModelAdmin):
    """Rows written only by services or kept in code: viewed here, never added, changed or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _DateHierarchyChangeList(ChangeList):
    """Checks the date hierarchy's year, month and day as a day range before Django turns them into datetimes
    (where 9999-12-31 has no next day and a 500 followed)."""

    def get_filters(self, request):
        if self.date_hierarchy:
            self._check_date_hierarchy(request)
        return super().get_filters(request)

    def _check_date_hierarchy(self, request) -> None:
        year, month, day = (
            self.filter_params.get(f"{self.date_hierarchy}__{part}", [None])[-1] for part in ("year", "month", "day")
        )
        if year is None:
            return
        try:
            first = date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return  # Django refuses it as it is
        if day:
            last = first
        elif month:
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        else:
            last = first.replace(month=12, day=31)
        try:
            billing_day_range(first, last)
        except ValidationError as error:
            # Django answers by showing the unfiltered list; the message says why.
            reasons = " ".join(dict.fromkeys(error.messages))  # the first and last day may share one
            messages.error(request, f"Date filter {first.isoformat()}: {reasons}")
            raise IncorrectLookupParameters(error) from error


class CheckedDateHierarchyMixin:
    """For a ModelAdmin with a `date_hierarchy`: out-of-range dates in its links are refused with a message."""

    def get_changelist(self, request, **kwargs):
        return _DateHierarchyChangeList


def back_to(request, url: str) -> HttpResponse:
    """After an action: htmx (a dialog) follows HX-Redirect, a plain form post a redirect."""
    if request.headers.get("HX-Request"):
        return HttpResponse(headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


class ServiceButtonsMixin:
    """For a ModelAdmin whose buttons each call one service: `run_service` reports how it went and goes back."""

    def run_service(self, request, url: str, call: Callable, success: Callable[..., str]) -> HttpResponse:
        """Call one service, tell the user how it went (its refusal, or `success` of its result), go back to `url`."""
        try:
            result = call()
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, success(result), messages.SUCCESS)
        return back_to(request, url)


def _column(show: Callable, description: str, ordering: str | None) -> Callable:
    """A list column or read-only field that shows one value through billing_project.formatting.

    Usable both in `list_display` as is and as a ModelAdmin attribute named in `fields` or `readonly_fields`
    (then bound, so called with the admin first): the row is always the last argument.
    """

    @display(description=description, ordering=ordering)
    def column(*args) -> str:
        return show(args[-1]) or "—"

    return column


def money_column(field: str, description: str, *, currency: str = "currency", ordering: bool = True) -> Callable:
    """An amount with its currency code ("EUR 1,234.50"); `field` and `currency` are dotted paths on the row."""
    read, read_currency = attrgetter(field), attrgetter(currency)
    return _column(
        lambda row: formatting.money(read(row), read_currency(row)),
        description,
        field.replace(".", "__") if ordering else None,
    )


def price_column(field: str, description: str, *, currency: str = "currency", ordering: bool = True) -> Callable:
    """A unit price with its currency code, trailing zeros trimmed to two decimals ("EUR 0.008")."""
    read, read_currency = attrgetter(field), attrgetter(currency)
    return _column(
        lambda row: formatting.price(read(row), read_currency(row)),
        description,
        field.replace(".", "__") if ordering else None,
    )


def quantity_column(field: str, description: str, *, ordering: bool = True) -> Callable:
    """A quantity without trailing zeros ("1,250.5")."""
    read = attrgetter(field)
    return _column(lambda row: formatting.quantity(read(row)), description, field if ordering else None)


def moment_column(field: str, description: str, *, ordering: bool = True) -> Callable:
    """A date and time in the project's format, in the billing time zone ("2 Dec 2026, 14:12")."""
    read = attrgetter(field)
    return _column(lambda row: formatting.moment(read(row)), description, field if ordering else None)


def day_column(field: str, description: str, *, ordering: bool = True) -> Callable:
    """A date in the project's format ("2 Dec 2026")."""
    read = attrgetter(field)
    return _column(lambda row: formatting.day(read(row)), description, field if ordering else None)


def month_label(period: date | None) -> str:
    """A billing month as people read it: "October 2026"."""
    return f"{period:%B %Y}" if period else ""


class FormattedWhenReadOnlyMixin:
    """For a ModelAdmin or inline that people may also only view: the model fields named in `formatted_fields`
    show as the formatted columns they map to (`{"unit_price": "unit_price_shown"}`) when the user may not change
    the object, instead of the raw "0.350000" Django shows for a read-only decimal."""

    formatted_fields: dict[str, str] = {}

    def _read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not self._read_only(request, obj):
            return fields
        return [self.formatted_fields.get(field, field) for field in fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not self._read_only(request, obj):
            return readonly
        return [*readonly, *self.formatted_fields.values()]


EXPORT_VAR = "export"
EXPORT_KINDS = ("csv", "xlsx")


@dataclass
class ListExport:
    """A list as its export writes it: the headers, the rows as filtered, searched and ordered on the page, and
    each row's values (numbers and dates stay numbers and dates)."""

    headers: list[str]
    queryset: QuerySet
    columns: list[Callable]
    name: str  # the file's name without its extension
    sheet: str

    def values(self, rows: Iterable | None = None) -> Iterator[list]:
        """Each row's values, the rows read in chunks (never all at once) unless `rows` are given."""
        for row in self.queryset.iterator(chunk_size=2000) if rows is None else rows:
            yield [value(row) for value in self.columns]

    def write(self, kind: str, file: BinaryIO, rows: Iterable[list]) -> None:
        """`rows` (of `values`) as CSV or XLSX into `file`."""
        if kind == "csv":
            write_csv(file, self.headers, _csv_safe(rows))
        else:
            write_xlsx(file, self.headers, rows, sheet=self.sheet)

    def response(self, kind: str) -> HttpResponse:
        if kind == "csv":
            return csv_download(self.headers, _csv_safe(self.values()), f"{self.name}.csv")
        return xlsx_download(self.headers, self.values(), f"{self.name}.xlsx", sheet=self.sheet)


def _csv_safe(rows: Iterable[list]) -> Iterator[list]:
    return ([spreadsheet_safe(value) if isinstance(value, str) else value for value in row] for row in rows)


# Exports too long to answer in a request run in the background. The reports app, which keeps their record,
# registers how it starts one (billing_project imports no app): handler(request, model_admin, kind) -> response.
_background_export: Callable[..., HttpResponse] | None = None


def register_background_export(handler: Callable[..., HttpResponse]) -> None:
    global _background_export
    _background_export = handler


class SpreadsheetExportMixin:
    """CSV and XLSX of the list as filtered, searched and ordered on the page, through billing_project.spreadsheets
    (CSV streamed, XLSX written row by row). `?export=csv|xlsx` on the list's URL; the page links both.

    `export_columns` are (header, value of a row) pairs: values stay numbers and dates, so a spreadsheet can sum
    them. A list of more than settings.EXPORT_BACKGROUND_ROWS rows is exported in the background (the handler
    registered with `register_background_export`), which rebuilds the list with `list_export_for`.
    """

    export_columns: list[tuple[str, Callable]] = []
    export_name = ""
    list_before_template = "admin/spreadsheet_export_links.html"

    def changelist_view(self, request, extra_context=None):
        kind = request.GET.get(EXPORT_VAR)
        params = request.GET.copy()
        params.pop(EXPORT_VAR, None)
        if kind in EXPORT_KINDS and self.has_view_permission(request):
            request.GET = params  # what the list sees: its own filters only
            return self._export(request, kind)
        links = {}
        for name in EXPORT_KINDS:
            query = params.copy()
            query[EXPORT_VAR] = name
            links[name] = f"?{query.urlencode()}"
        return super().changelist_view(request, (extra_context or {}) | {"export_links": links})

    def list_export(self, request) -> ListExport:
        """The list as `request` (its user and its filters) shows it, ready to export."""
        changelist = self.get_changelist_instance(request)
        return ListExport(
            headers=[header for header, _ in self.export_columns],
            queryset=changelist.get_queryset(request),
            columns=[value for _, value in self.export_columns],
            name=self.export_name or str(self.opts.verbose_name_plural).replace(" ", "-"),
            sheet=capfirst(str(self.opts.verbose_name_plural)),
        )

    def _export(self, request, kind: str) -> HttpResponse:
        export = self.list_export(request)
        threshold = settings.EXPORT_BACKGROUND_ROWS
        if export.queryset[threshold : threshold + 1].exists():
            if _background_export is not None:
                return _background_export(request, self, kind)
            messages.error(
                request, f"The list holds more than {threshold:,} rows: narrow it with the filters to export it."
            )
            return HttpResponseRedirect(f"?{request.GET.urlencode()}")
        return export.response(kind)


def list_export_for(model_admin: SpreadsheetExportMixin, *, user, query: str) -> ListExport | None:
    """The export of a list as `user` sees it with the filters of `query` (the list's query string), or None when
    the user may not view the list: how an export running in the background, away from the request that asked for
    it, finds the same rows."""
    request = HttpRequest()
    request.method = "GET"
    request.user = user
    request.GET = QueryDict(query)
    request.path = request.path_info = reverse(
        f"{model_admin.admin_site.name}:{model_admin.opts.app_label}_{model_admin.opts.model_name}_changelist"
    )
    if not model_admin.has_view_permission(request):
        return None
    return model_admin.list_export(request)


def local_time(value):
    """A date-time for a spreadsheet: in the billing time zone, without its zone (Excel keeps none)."""
    return timezone.localtime(value, billing_zone()).replace(tzinfo=None) if value else None
