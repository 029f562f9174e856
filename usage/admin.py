"""Usage in the admin: upload history and the upload page, and read-only lists of records, summaries and closed months.

Every row here is written by usage.services; the admin only reads, scoped to the customers the user may see.
"""

from datetime import date

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
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
from billing_project.admin_tools import CheckedDateHierarchyMixin, ReadOnlyAdmin
from catalog.selectors import customer_list_for
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord
from usage.selectors import (
    EXACT_COUNT_BELOW,
    closed_period_list_for,
    estimated_row_count,
    monthly_summary_list_for,
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
        return [(f"{period:%Y-%m}", f"{period:%Y-%m}") for period in periods]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            year, month = (int(part) for part in self.value().split("-"))
            period = date(year, month, 1)
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error
        return queryset.filter(period=period)


@admin.display(description="Month", ordering="period")
def month(obj) -> str:
    return f"{obj.period:%Y-%m}"


USAGE_FILTERS = [("customer", CustomerFilter), ("service", RelatedDropdownFilter), MonthFilter]


@admin.register(Upload)
class UploadAdmin(CheckedDateHierarchyMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = [
        "original_name",
        "created_at",
        "created_by",
        "source",
        "row_count",
        "status",
        "duration",
        "error_count",
        "error_report",
    ]
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
class UsageRecordAdmin(ImportMixin, ReadOnlyAdmin):
    """django-import-export's import page, routed through the one usage pipeline: no second set of rules."""

    resource_classes = [UsageRecordResource]
    import_form_class = ImportForm
    formats = [CSV]
    list_display = ["service_time", "customer", "service", "quantity", "unit_price", "currency", month, "upload"]
    list_filter = USAGE_FILTERS
    list_filter_submit = True
    list_select_related = ["customer", "service", "upload"]
    # Sorting millions of rows by anything but the primary key is a full sort; the newest rows come first.
    ordering = ["-pk"]
    sortable_by = []
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100

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
class MonthlySummaryAdmin(ReadOnlyAdmin):
    list_display = [month, "customer", "service", "unit_price", "quantity", "record_count", "amount"]
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
    list_display = [month, "customer", "closed_at", "closed_by"]
    list_filter = [("customer", CustomerFilter)]
    list_select_related = ["customer", "closed_by"]

    def get_queryset(self, request):
        return closed_period_list_for(request.user).select_related("customer", "closed_by")
