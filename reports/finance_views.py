"""The admin's finance report pages (/admin/reports/<name>/) with their filters, a page of rows, the totals per
currency and the CSV, XLSX and PDF exports; the reads are reports.finance's.

Each page needs its own permission (reports.finance.PERMISSIONS; the roles in accounts/roles.py). The admin
site adds the URLs (billing_project.admin_site).
"""

from datetime import date

from django import forms
from django.contrib import admin
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.widgets import UnfoldAdminDateWidget, UnfoldAdminSelectWidget

from billing_project.billing_time import billing_day_range, billing_today, billing_zone
from billing_project.pdf_reports import too_many_rows
from catalog.selectors import customer_list_for
from catalog.widgets import customer_filter_field
from reports import finance
from reports.export_views import report_export_start
from reports.exports import cell_text, export_response
from reports.revenue_views import PeriodForm

PAGE_SIZE = 50


class ReportForm(PeriodForm):
    """Period (a preset or custom days), customer and currency; subclasses add their own filters. The customer is
    searched as one types (catalog.widgets), among those the user may see."""

    default_preset = "last_month"

    customer = customer_filter_field(placeholder="Every customer")
    field_order = ["period", "start", "end", "customer", "currency"]

    def __init__(self, data=None, *, user, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["customer"].queryset = customer_list_for(user).order_by("name")


class AgingForm(ReportForm):
    period = None
    start = None
    end = None
    as_of = forms.DateField(
        label="As of", required=False, widget=UnfoldAdminDateWidget, help_text="End of this day; today if empty."
    )
    field_order = ["as_of", "customer", "currency"]

    def clean(self):
        cleaned = forms.Form.clean(self)
        cleaned["as_of"] = cleaned.get("as_of") or billing_today()
        billing_day_range(cleaned["as_of"], None, first_field="as_of")
        return cleaned


class InvoiceRegisterForm(ReportForm):
    status = forms.ChoiceField(
        label="Documents", choices=finance.REGISTER_STATUSES, required=False, widget=UnfoldAdminSelectWidget
    )
    field_order = [*ReportForm.field_order, "status"]


class PaymentsRegisterForm(ReportForm):
    kind = forms.ChoiceField(
        label="Entries", choices=finance.PAYMENT_KINDS, required=False, widget=UnfoldAdminSelectWidget
    )
    field_order = [*ReportForm.field_order, "kind"]


class RevenueForm(ReportForm):
    default_preset = "this_year"
    group = forms.ChoiceField(
        label="By", choices=finance.REVENUE_GROUPS, required=False, widget=UnfoldAdminSelectWidget
    )
    field_order = [*ReportForm.field_order, "group"]


class FinanceReportView(PermissionRequiredMixin, TemplateView):
    """One report page: the form's filters, the report's description, a page of rows and the totals."""

    template_name = "reports/finance_report.html"
    admin_site: admin.AdminSite = None
    raise_exception = True  # a signed-in user without the permission gets 403, not the login page
    name: str = ""
    form_class = ReportForm
    description = ""

    @classmethod
    def url_name(cls) -> str:
        return "report_" + cls.name.replace("-", "_")

    def get_permission_required(self):
        return [finance.PERMISSIONS[self.name]]

    def build(self, user, data: dict) -> finance.ReportTable:
        raise NotImplementedError

    def stem(self, data: dict) -> str:
        return f"{self.name}-{data['start']:%Y-%m-%d}-to-{data['end']:%Y-%m-%d}"

    def get(self, request, *args, **kwargs):
        form = self.form_class(request.GET, user=request.user)
        context = {"form": form}
        if form.is_valid():
            table = self.build(request.user, form.cleaned_data)
            export = request.GET.get("export")
            if export == "pdf" and (too_many := too_many_rows(len(table.rows))):
                context["export_error"] = too_many
            elif export:
                stem = self.stem(form.cleaned_data)
                response = report_export_start(
                    request, name=self.name, title=self.title, table=table, kind=export, stem=stem
                ) or export_response(table, export, stem=stem, generated_at=timezone.now())
                if response is not None:
                    return response
            page = Paginator(table.rows, PAGE_SIZE).get_page(request.GET.get("page"))
            context |= {
                "table": table,
                "page": page,
                "lines": display_lines(table, page.object_list),
                "total_lines": display_lines(table, table.totals),
            }
        return self.render_to_response(self.get_context_data(**context))

    def get_context_data(self, **kwargs):
        self.request.current_app = self.admin_site.name
        return (
            super().get_context_data(**kwargs)
            | self.admin_site.each_context(self.request)
            | {"title": self.title, "description": self.description, "billing_time_zone": billing_zone()}
        )


def _cell_class(column: finance.Column) -> str:
    if column.is_number:
        return "num"
    return "nowrap" if column.kind in (finance.DAY, finance.MONTH) else ""


def display_lines(table: finance.ReportTable, rows) -> list[list[tuple[str, str]]]:
    """Each row's cells as shown: (text, CSS class)."""
    return [
        [
            (cell_text(column, row.get(column.key), row.get("currency", "")), _cell_class(column))
            for column in table.columns
        ]
        for row in rows
    ]


def _filters(data: dict) -> dict:
    return {"customer": data.get("customer"), "currency": data.get("currency") or None}


class AgedReceivablesView(FinanceReportView):
    name = "aged-receivables"
    title = "Aged receivables"
    form_class = AgingForm
    description = (
        "What customers still owe on their issued invoices at the end of the day, by days past the due date: "
        "current (not yet due), 1–30, 31–60, 61–90 and over 90 days. An invoice's open amount is its total less "
        "credit notes and payments set against it by then. Per currency, never converted."
    )

    def build(self, user, data):
        return finance.aged_receivables(user, as_of=data["as_of"], **_filters(data))

    def stem(self, data):
        as_of: date = data["as_of"]
        return f"{self.name}-{as_of:%Y-%m-%d}"


class InvoiceRegisterView(FinanceReportView):
    name = "invoice-register"
    title = "Invoice register"
    form_class = InvoiceRegisterForm
    description = (
        "Invoices and credit notes issued in the period, in the order they were issued; credit notes count "
        "negative, so each currency's total is what was invoiced."
    )

    def build(self, user, data):
        return finance.invoice_register(
            user, start=data["start"], end=data["end"], status=data.get("status") or None, **_filters(data)
        )


class PaymentsRegisterView(FinanceReportView):
    name = "payments-register"
    title = "Payments register"
    form_class = PaymentsRegisterForm
    description = (
        "Payments received and refunds paid in the period; refunds count negative, so each currency's total is "
        "what was collected. Unallocated: the part of a payment not set against an invoice today."
    )

    def build(self, user, data):
        return finance.payments_register(
            user, start=data["start"], end=data["end"], kind=data.get("kind") or None, **_filters(data)
        )


class RevenueView(FinanceReportView):
    name = "revenue"
    title = "Revenue by month and service"
    form_class = RevenueForm
    description = (
        "Revenue without tax by the month an invoice bills (order invoices: the month they were issued), by "
        "service category and service, less what the credit notes on those invoices take from each line (a part "
        "credit comes off the highest tax rate's lines first). The months from the period's first to its last."
    )

    def build(self, user, data):
        return finance.revenue_by_service(
            user, start=data["start"], end=data["end"], group=data.get("group") or finance.BY_SERVICE, **_filters(data)
        )


class TaxReportView(FinanceReportView):
    name = "tax"
    title = "Tax report"
    description = (
        "What a VAT return asks for: per currency, tax rate and exemption, the taxable base and the tax of the "
        "invoices issued in the period, less the credit notes issued in it."
    )

    def build(self, user, data):
        return finance.tax_report(user, start=data["start"], end=data["end"], **_filters(data))


REPORT_VIEWS = [AgedReceivablesView, InvoiceRegisterView, PaymentsRegisterView, RevenueView, TaxReportView]
