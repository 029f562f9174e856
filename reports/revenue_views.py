"""The admin's partner revenue report page (/admin/partner-revenue/) and its CSV, XLSX and PDF exports; the read is
reports.revenue's.

Open to whoever holds `reports.view_partner_revenue`: Admin (every permission), Finance and Sales
(accounts/roles.py). The admin site adds the URL (billing_project.admin_site).
"""

from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.widgets import UnfoldAdminDateWidget, UnfoldAdminSelectWidget

from billing_project import money
from billing_project.billing_time import billing_day_range, billing_today, billing_zone
from billing_project.formatting import day
from billing_project.spreadsheets import csv_download, spreadsheet_safe, xlsx_download
from catalog.models import Partner
from ledger.forms import money_label
from reports.exports import pdf_response
from reports.finance import COUNT, MONEY, Column, ReportTable
from reports.revenue import NO_PARTNER, NO_PARTNER_LABEL, PERMISSION, PartnerRevenueReport, partner_revenue

EXPORT_HEADERS = [
    "partner", "currency", "orders_completed", "orders_failed", "fees", "base_charges", "expenses",
    "partner_share", "kept_by_us",
]  # fmt: skip
CUSTOM = "custom"


def _quarter_start(day: date) -> date:
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def preset_days(preset: str, today: date) -> tuple[date, date]:
    """The first and last day of a preset period around `today` (billing time zone)."""
    month_start = today.replace(day=1)
    quarter_start = _quarter_start(today)
    year_start = today.replace(month=1, day=1)
    if preset == "this_month":
        return month_start, today
    if preset == "last_month":
        last = month_start - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "this_quarter":
        return quarter_start, today
    if preset == "last_quarter":
        last = quarter_start - timedelta(days=1)
        return _quarter_start(last), last
    if preset == "this_year":
        return year_start, today
    if preset == "last_year":
        return year_start.replace(year=today.year - 1), year_start - timedelta(days=1)
    raise ValueError(preset)


PRESETS = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("this_quarter", "This quarter"),
    ("last_quarter", "Last quarter"),
    ("this_year", "This year"),
    ("last_year", "Last year"),
    (CUSTOM, "Custom dates"),
]
DEFAULT_PRESET = "last_month"


def clean_period(form: forms.Form, cleaned: dict) -> None:
    """A report form's period: a preset sets `start` and `end`; custom dates need both, in the booking window."""
    preset = cleaned.get("period")
    if preset and preset != CUSTOM:
        cleaned["start"], cleaned["end"] = preset_days(preset, billing_today())
    elif preset == CUSTOM:
        for name in ("start", "end"):
            if cleaned.get(name) is None and name not in form.errors:
                form.add_error(name, "Give a day, or choose a preset period.")
    if cleaned.get("start") and cleaned.get("end"):
        billing_day_range(cleaned["start"], cleaned["end"], first_field="start", last_field="end")


class PeriodForm(forms.Form):
    """A report's period (a preset, or custom days) and currency, in unfold's widgets; dates show and are typed
    as the admin's other date inputs are (ISO first, DATE_INPUT_FORMATS). Subclasses add their filters and
    place them with `field_order`."""

    default_preset = DEFAULT_PRESET

    period = forms.ChoiceField(label="Period", choices=PRESETS, required=False, widget=UnfoldAdminSelectWidget)
    start = forms.DateField(label="From", required=False, widget=UnfoldAdminDateWidget, help_text="With custom dates.")
    end = forms.DateField(label="To", required=False, widget=UnfoldAdminDateWidget, help_text="Inclusive.")
    currency = forms.ChoiceField(
        label="Currency",
        required=False,
        choices=[("", "Every currency"), *money.CURRENCY_CHOICES],
        widget=UnfoldAdminSelectWidget,
    )

    def __init__(self, data=None, **kwargs):
        if data is not None:
            data = data.copy()
            # Dates given without a period are custom dates; neither: the default preset.
            if "period" in self.base_fields and not data.get("period"):
                data["period"] = CUSTOM if (data.get("start") or data.get("end")) else self.default_preset
        super().__init__(data, **kwargs)

    def clean(self):
        cleaned = super().clean()
        clean_period(self, cleaned)
        return cleaned


class PartnerRevenueForm(PeriodForm):
    partner = forms.ChoiceField(label="Partner", required=False, widget=UnfoldAdminSelectWidget)
    field_order = ["period", "start", "end", "partner", "currency"]

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["partner"].choices = [
            ("", "Every partner"),
            (NO_PARTNER, NO_PARTNER_LABEL),
            *((str(pk), name) for pk, name in Partner.objects.order_by("name").values_list("pk", "name")),
        ]

    def partner_filter(self) -> Partner | str | None:
        value = self.cleaned_data.get("partner")
        if not value:
            return None
        if value == NO_PARTNER:
            return NO_PARTNER
        return Partner.objects.get(pk=int(value))


class PartnerRevenueView(PermissionRequiredMixin, TemplateView):
    title = "Partner revenue"
    template_name = "reports/partner_revenue.html"
    admin_site: admin.AdminSite = None
    permission_required = PERMISSION
    raise_exception = True  # a signed-in user without it gets 403, not the login page

    def get(self, request, *args, **kwargs):
        form = PartnerRevenueForm(request.GET)
        context = {"form": form}
        if form.is_valid():
            data = form.cleaned_data
            report = partner_revenue(
                request.user,
                start=data["start"],
                end=data["end"],
                partner=form.partner_filter(),
                currency=data["currency"] or None,
            )
            export = request.GET.get("export")
            if export == "csv":
                return csv_download(EXPORT_HEADERS, export_rows(report), export_name(report, "csv"))
            if export == "xlsx":
                return xlsx_download(
                    EXPORT_HEADERS,
                    export_rows(report, numbers=True),
                    export_name(report, "xlsx"),
                    sheet="Partner revenue",
                )
            if export == "pdf":
                return pdf_response(pdf_table(report, form), export_name(report, "pdf"), generated_at=timezone.now())
            context |= {"report": report, "lines": display_lines(report)}
        return self.render_to_response(self.get_context_data(**context))

    def get_context_data(self, **kwargs):
        self.request.current_app = self.admin_site.name
        return (
            super().get_context_data(**kwargs)
            | self.admin_site.each_context(self.request)
            | {"title": self.title, "billing_time_zone": billing_zone()}
        )


def display_lines(report: PartnerRevenueReport) -> list[dict]:
    """The page's rows: counts and money with thousands separators, money with its currency."""
    return [
        {
            "row": row,
            "completed": f"{row.orders_completed:,}",
            "failed": f"{row.orders_failed:,}",
            **{
                name: money_label(getattr(row, name), row.currency)
                for name in ("fees", "base_charges", "expenses", "partner_share", "kept_by_us")
            },
        }
        for row in report.rows_with_totals()
    ]


def export_rows(report: PartnerRevenueReport, *, numbers: bool = False):
    """Each currency's partner rows then its totals row ("Total"); amounts as text in CSV (exact), as numbers in
    XLSX (a spreadsheet sums them)."""
    for row in report.rows_with_totals():
        figures = [row.fees, row.base_charges, row.expenses, row.partner_share, row.kept_by_us]
        yield [
            spreadsheet_safe(row.partner_name),
            row.currency,
            row.orders_completed,
            row.orders_failed,
            *(figures if numbers else [str(figure) for figure in figures]),
        ]


def export_name(report: PartnerRevenueReport, extension: str) -> str:
    return f"partner-revenue-{report.start:%Y-%m-%d}-to-{report.end:%Y-%m-%d}.{extension}"


PDF_COLUMNS = [
    Column("partner", "Partner"),
    Column("currency", "Currency"),
    Column("orders_completed", "Completed", COUNT),
    Column("orders_failed", "Failed", COUNT),
    Column("fees", "Fees", MONEY),
    Column("base_charges", "Base charges", MONEY),
    Column("expenses", "Expenses", MONEY),
    Column("partner_share", "Partner share", MONEY),
    Column("kept_by_us", "Kept by us", MONEY),
]


def pdf_table(report: PartnerRevenueReport, form: PartnerRevenueForm) -> ReportTable:
    """The report as a table for the PDF: partner rows, then each currency's totals, the filters on top."""

    def row(line) -> dict:
        return {
            "partner": f"Total {line.currency}" if line.is_total else line.partner_name,
            **{column.key: getattr(line, column.key) for column in PDF_COLUMNS[1:]},
        }

    partner = dict(form.fields["partner"].choices).get(form.cleaned_data.get("partner") or "", "Every partner")
    return ReportTable(
        name="partner-revenue",
        title="Partner revenue",
        filters=[
            ("Period", f"{day(report.start)} to {day(report.end)}"),
            ("Partner", partner),
            ("Currency", form.cleaned_data.get("currency") or "Every currency"),
        ],
        columns=PDF_COLUMNS,
        rows=[row(line) for line in report.rows],
        totals=[row(line) for line in report.totals],
        empty_message="No order was completed or failed in this period for these filters.",
    )
