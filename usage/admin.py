"""Usage in the admin: upload history and the upload page, and read-only lists of records, summaries and closed months.

Every row here is written by usage.services; the admin only reads, scoped to the customers the user may see.
"""

from datetime import date, timedelta

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from import_export import resources
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV
from simple_history.admin import SimpleHistoryAdmin
from unfold.contrib.filters.admin import AutocompleteSelectFilter, DropdownFilter, RelatedDropdownFilter
from unfold.contrib.filters.forms import AutocompleteDropdownForm
from unfold.contrib.import_export.forms import ImportForm
from unfold.decorators import action

from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import (
    CheckedDateHierarchyMixin,
    ReadOnlyAdmin,
    SpreadsheetExportMixin,
    local_time,
    money_column,
    month_label,
    price_column,
    quantity_column,
)
from billing_project.billing_time import day_start
from catalog.selectors import customer_list_for
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord
from usage.selectors import (
    COUNT_CAP,
    EXACT_COUNT_BELOW,
    closed_period_list_for,
    estimated_row_count,
    monthly_summary_list_for,
    parse_record_key,
    record_count_from_daily_usage,
    record_key,
    records_newer_than,
    records_older_than,
    upload_list_for,
    usage_record_list_for,
)
from usage.services import DuplicateFile, usage_import_file
from usage.views import ErrorReportView, MonthlyReportView, UploadResultView, UsageUploadView


class EstimatedCountPaginator(Paginator):
    """Counts a filtered list exactly; an unfiltered big table takes PostgreSQL's row estimate instead of COUNT(*)."""

    @cached_property
    def count(self) -> int:
        if not self.object_list.query.where:
            estimate = estimated_row_count(self.object_list.model)
            if estimate is not None and estimate >= EXACT_COUNT_BELOW:
                return estimate
        return super().count


# Where the record list starts: `?before=<service time>|<id>` (usage.selectors.record_key).
BEFORE_VAR = "before"
# Numbered pages of a list; older rows are reached through the "Older" link.
MAX_PAGES = 100


class CappedCountPaginator(Paginator):
    """Page numbers over the first COUNT_CAP rows of a list that may hold millions.

    An unfiltered big table takes PostgreSQL's row estimate; any other list is counted only up to COUNT_CAP + 1
    rows (shown as "more than 10,000"), which stops as soon as the cap is passed instead of counting every row of
    a customer or month. A list of one customer, perhaps also of a service and a month, takes its exact count from
    the daily usage instead (`known_count`, kept with the records in one transaction): the capped count of such a
    list reads its records to test the service, the daily usage one row per service and day of one customer.
    Page numbers go up to MAX_PAGES: a page is read by OFFSET, whose cost grows with the page; older rows are
    reached from the last numbered page through the "Older" link, which starts the list again after a row
    (`before`: see UsageRecordChangeList) at the cost of a first page.
    """

    template_name = "usage/record_pagination.html"
    max_pages = MAX_PAGES
    count_is_exact = True
    count_is_estimate = False
    known_count: int | None = None

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            return self.known_count
        if not self.object_list.query.where:
            estimate = estimated_row_count(self.object_list.model)
            if estimate is not None and estimate >= EXACT_COUNT_BELOW:
                self.count_is_exact, self.count_is_estimate = False, True
                return estimate
        counted = self.object_list.select_related(None).order_by()[: COUNT_CAP + 1].count()
        if counted > COUNT_CAP:
            self.count_is_exact = False
        return counted

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, self.max_pages)

    @property
    def rows_beyond_pages(self) -> bool:
        """Whether the list holds rows after its last numbered page (reached through "Older")."""
        return not self.count_is_exact or self.count > self.max_pages * self.per_page

    @property
    def count_label(self) -> str:
        if self.count_is_estimate:
            return f"about {self.count:,}"
        if not self.count_is_exact:
            return f"more than {COUNT_CAP:,}"
        return f"{self.count:,}"


class UsageRecordChangeList(ChangeList):
    """The record list, newest service time first, optionally starting after a row: `?before=<time>|<id>` lists
    the rows older than that key, read from the (service time, id) or (customer, service time, id) index where
    it is, whatever its depth. Each page offers the `before` of its last row (older) and of the row a page newer
    than its first (newer), so paging either way lists every row once."""

    def get_filters_params(self, params=None):
        params = super().get_filters_params(params)
        params.pop(BEFORE_VAR, None)
        return params

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        self.unbounded_queryset = queryset
        raw = request.GET.get(BEFORE_VAR)
        self.before = None
        if raw:
            try:
                self.before = parse_record_key(raw)
            except ValueError as error:
                raise IncorrectLookupParameters(error) from error
            queryset = records_older_than(queryset, *self.before)
        return queryset

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        self.result_list = rows
        paginator = self.paginator
        last_page = self.page_num >= paginator.num_pages
        self.older_url = None
        if rows and len(rows) == self.list_per_page and not (last_page and not paginator.rows_beyond_pages):
            self.older_url = self.get_query_string({BEFORE_VAR: record_key(rows[-1])}, remove=[PAGE_VAR])
        self.newer_url = None
        if rows and (self.before is not None or self.page_num > 1):
            newer = list(
                records_newer_than(self.unbounded_queryset, rows[0].service_time, rows[0].pk)
                .select_related(None)
                .only("service_time")[: self.list_per_page + 1]
            )
            if len(newer) > self.list_per_page:
                self.newer_url = self.get_query_string({BEFORE_VAR: record_key(newer[-1])}, remove=[PAGE_VAR])
            else:
                self.newer_url = self.get_query_string(remove=[BEFORE_VAR, PAGE_VAR])


class ScopedCustomerForm(AutocompleteDropdownForm):
    """The customer filter's widget labels only customers the user may see (the search itself is CustomerAdmin's)."""

    def __init__(self, request, name, *args, **kwargs):
        super().__init__(request, name, *args, **kwargs)
        self.fields[name].queryset = customer_list_for(request.user)


class CustomerFilter(AutocompleteSelectFilter):
    form_class = ScopedCustomerForm


class MonthFilter(DropdownFilter):
    """Billing month, on the indexed `period` column; the months offered are those with summaries (a small table)."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        periods = monthly_summary_list_for(request.user).order_by("-period").values_list("period", flat=True).distinct()
        return [(f"{period:%Y-%m}", month_label(period)) for period in periods]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            period = date(year, month, 1)
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error
        if queryset.model is UsageRecord:
            # A record's billing month is the month of its service time in the billing time zone, so the month is
            # that range of service time: the record list's indexes then read the month in the list's order. Not
            # `period` as well: the planner, taking the two as independent, would expect a few rows and sort them.
            following = date(year + month // 12, month % 12 + 1, 1)
            return queryset.filter(service_time__gte=day_start(period), service_time__lt=day_start(following))
        return queryset.filter(period=period)


@admin.display(description="Month", ordering="period")
def month(obj) -> str:
    return month_label(obj.period)


USAGE_FILTERS = [("customer", CustomerFilter), ("service", RelatedDropdownFilter), MonthFilter]


class CustomerKeySearchMixin:
    """Search on a table of millions of rows by its customer: the customers are found first in their own small table
    (client id, or part of the name), then the rows through the indexed customer column; never a text match over
    the rows themselves."""

    search_fields = ["customer__client_id"]  # shows the search box; the search itself is below
    search_help_text = "Client id or customer name"

    def matching_customer_ids(self, request, term: str) -> list[int]:
        customers = customer_list_for(request.user).filter(Q(client_id__iexact=term) | Q(name__icontains=term))
        return list(customers.values_list("pk", flat=True)[:MAX_CUSTOMERS_SEARCHED])

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(customer_id__in=self.matching_customer_ids(request, term)), False


# A search that names more customers than this (a single letter) lists the rows of the first ones only.
MAX_CUSTOMERS_SEARCHED = 500


@admin.register(Upload)
class UploadAdmin(CheckedDateHierarchyMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    # Within the page at 1,280 px: the source and the duration are on each upload's page and result.
    list_display = ["original_name", "created_at", "created_by", "row_count", "status", "error_count", "error_report"]
    list_filter = ["status", "source", "forced"]
    list_select_related = ["created_by"]
    search_fields = ["original_name", "sha256"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions_list = ["upload_usage"]
    exclude = ["errors"]
    readonly_fields = ["result_page", "error_report"]

    def get_queryset(self, request):
        return upload_list_for(request.user).defer("errors")

    def get_urls(self):
        def view(view_class):
            return self.admin_site.admin_view(view_class.as_view(model_admin=self))

        return [
            path("new/", view(UsageUploadView), name="usage_upload_new"),
            path("<int:pk>/result/", view(UploadResultView), name="usage_upload_result"),
            path("<int:pk>/errors.csv", view(ErrorReportView), name="usage_upload_errors"),
            *super().get_urls(),
        ]

    def has_upload_permission(self, request) -> bool:
        return request.user.has_perm("usage.add_upload")

    @action(description="Upload usage", icon="upload_file", permissions=["upload"])
    def upload_usage(self, request):
        return redirect("admin:usage_upload_new")

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, upload: Upload) -> str:
        return "—" if upload.duration_ms is None else f"{upload.duration_ms:,} ms"

    @admin.display(description="Error report")
    def error_report(self, upload: Upload) -> str:
        if not upload.error_count:
            return "—"
        return format_html(
            '<a href="{}" download>CSV ({} errors)</a>',
            reverse("admin:usage_upload_errors", args=[upload.pk]),
            upload.error_count,
        )

    @admin.display(description="Result")
    def result_page(self, upload: Upload) -> str:
        return format_html(
            '<a href="{}">Open the result page</a>', reverse("admin:usage_upload_result", args=[upload.pk])
        )


class UsageRecordResource(resources.ModelResource):
    """Names the CSV format on the import page; the rows themselves go through usage.services."""

    class Meta:
        model = UsageRecord
        fields = ["service", "customer", "quantity", "service_time", "event_id"]


@admin.register(UsageRecord)
class UsageRecordAdmin(SpreadsheetExportMixin, CustomerKeySearchMixin, ImportMixin, ReadOnlyAdmin):
    """django-import-export's import page, routed through the one usage pipeline: no second set of rules."""

    empty_message = "No usage imported yet: upload a usage file, or send it to the API."

    export_columns = [
        ("Service time", lambda record: local_time(record.service_time)),
        ("Client id", lambda record: record.customer.client_id),
        ("Customer", lambda record: record.customer.name),
        ("Service code", lambda record: record.service.code),
        ("Service", lambda record: record.service.name),
        ("Quantity", lambda record: record.quantity),
        ("Unit price", lambda record: record.unit_price),
        ("Currency", lambda record: record.currency),
        ("Month", lambda record: record.period),
        ("Event id", lambda record: record.event_id or ""),
    ]

    resource_classes = [UsageRecordResource]
    import_form_class = ImportForm
    formats = [CSV]
    list_display = [
        "service_time",
        "customer",
        "service",
        quantity_column("quantity", "Quantity", ordering=False),
        price_column("unit_price", "Unit price", ordering=False),
        month,
        "upload",
    ]
    list_filter = USAGE_FILTERS
    list_filter_submit = True
    list_select_related = ["customer", "service", "upload"]
    # Newest service time first, the order the (service time, id) and (customer, service time, id) indexes
    # keep: any other order would sort millions of rows.
    ordering = ["-service_time", "-id"]
    sortable_by = []
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100

    search_help_text = "Client id or customer name; or an event id once a customer is chosen in the filters"

    def get_changelist(self, request, **kwargs):
        return UsageRecordChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        paginator.known_count = self.count_from_daily_usage(request)
        return paginator

    def count_from_daily_usage(self, request) -> int | None:
        """The records of a list of one customer, perhaps also of a service and a month, from the daily usage; None
        for any other list (no customer, a search, a `before`, a value that is not a filter's)."""
        params = request.GET
        if set(params) - {"customer__id__exact", "service__id__exact", "month", PAGE_VAR}:
            return None
        try:
            customer_id = int(params.get("customer__id__exact") or "")
            service_id = int(params["service__id__exact"]) if params.get("service__id__exact") else None
            days = None
            if params.get("month"):
                year, month = (int(part) for part in params["month"].split("-"))
                following = date(year + month // 12, month % 12 + 1, 1)
                days = (date(year, month, 1), following - timedelta(days=1))
        except (ValueError, OverflowError):
            return None
        return record_count_from_daily_usage(request.user, customer_id=customer_id, service_id=service_id, days=days)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term or "customer__id__exact" not in request.GET:
            return super().get_search_results(request, queryset, search_term)
        # One customer's rows: an event id is found through the (customer, event id) unique index.
        customers = self.matching_customer_ids(request, term)
        return queryset.filter(Q(customer_id__in=customers) | Q(event_id=term)), False

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("usage.add_upload")

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_import_form(request)
        if request.method != "POST" or not form.is_valid():
            return super().import_action(request, **kwargs)
        file = form.cleaned_data["import_file"]
        try:
            upload = usage_import_file(
                actor=request.user, stream=file, name=file.name, source=Upload.Source.ADMIN_IMPORT
            )
        except DuplicateFile as error:
            self.message_user(
                request, f"{error.message} Use the upload page to import it again on purpose.", messages.ERROR
            )
            return redirect("admin:usage_usagerecord_import")
        return redirect("admin:usage_upload_result", upload.pk)

    def get_queryset(self, request):
        return usage_record_list_for(request.user).select_related("customer", "service", "upload")


@admin.register(MonthlySummary)
class MonthlySummaryAdmin(SpreadsheetExportMixin, CustomerKeySearchMixin, ReadOnlyAdmin):
    empty_message = "Summaries appear as usage is imported: one per customer, service, month and price."
    export_columns = [
        ("Month", lambda summary: summary.period),
        ("Client id", lambda summary: summary.customer.client_id),
        ("Customer", lambda summary: summary.customer.name),
        ("Service code", lambda summary: summary.service.code),
        ("Service", lambda summary: summary.service.name),
        ("Unit price", lambda summary: summary.unit_price),
        ("Quantity", lambda summary: summary.quantity),
        ("Records", lambda summary: summary.record_count),
        ("Amount before allowance", lambda summary: summary.amount),
        ("Currency", lambda summary: summary.customer.currency),
    ]
    list_display = [
        month,
        "customer",
        "service",
        price_column("unit_price", "Unit price", currency="customer.currency"),
        quantity_column("quantity", "Quantity"),
        "record_count",
        money_column("amount", "Amount before allowance", currency="customer.currency"),
    ]
    list_filter = USAGE_FILTERS
    list_filter_submit = True
    list_select_related = ["customer", "service"]
    show_full_result_count = False

    def get_queryset(self, request):
        return monthly_summary_list_for(request.user).select_related("customer", "service")

    def get_urls(self):
        report = self.admin_site.admin_view(MonthlyReportView.as_view(model_admin=self))
        return [path("report/", report, name="usage_month_report"), *super().get_urls()]

    @action(description="Monthly report", icon="summarize")
    def open_report(self, request):
        return redirect("admin:usage_month_report")

    actions_list = ["open_report"]


@admin.register(ClosedPeriod)
class ClosedPeriodAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    empty_message = "No month is closed yet: month-end closes the months it bills."
    list_display = [month, "customer", "closed_at", "closed_by"]
    list_filter = [("customer", CustomerFilter), MonthFilter]
    search_fields = ["customer__client_id", "customer__name"]
    search_help_text = "Client id or customer name"
    list_select_related = ["customer", "closed_by"]

    def get_queryset(self, request):
        return closed_period_list_for(request.user).select_related("customer", "closed_by")
