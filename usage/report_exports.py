"""The monthly usage report as files: CSV and XLSX (numbers as numbers, XLSX with a totals row per currency)
and PDF. The admin's report and the customer portal's usage page download the same files."""

import calendar
from collections.abc import Iterator, Sequence
from datetime import date

from django.http import HttpResponse

from billing_project import formatting
from billing_project.pdf_reports import Column, table_report_pdf
from billing_project.spreadsheets import (
    AMOUNT_FORMAT,
    COUNT_FORMAT,
    QUANTITY_FORMAT,
    csv_download,
    spreadsheet_safe,
    xlsx_download,
)
from usage.report_selectors import UsageReportRow, usage_report_totals

HEADERS = [
    "client_id", "customer", "service", "service_code", "month", "currency", "records", "quantity", "allowance",
    "allowance_used", "overage", "monthly_fee", "amount",
]  # fmt: skip
NUMBER_FORMATS = [None] * 6 + [COUNT_FORMAT] + [QUANTITY_FORMAT] * 4 + [AMOUNT_FORMAT] * 2

PDF_COLUMNS = [
    Column("Customer", weight=2.2),
    Column("Service", weight=2),
    Column("Records", numeric=True, weight=0.8),
    Column("Quantity", numeric=True),
    Column("Allowance", numeric=True),
    Column("Allowance used", numeric=True),
    Column("Overage", numeric=True),
    Column("Monthly fee", numeric=True, weight=1.2),
    Column("Amount", numeric=True, weight=1.3),
]


def month_label(period: date) -> str:
    return f"{calendar.month_name[period.month]} {period.year}"


def _export_rows(rows: Sequence[UsageReportRow]) -> Iterator[list]:
    for row in rows:
        yield [
            spreadsheet_safe(row.client_id),
            spreadsheet_safe(row.customer_name),
            spreadsheet_safe(row.service_name),
            spreadsheet_safe(row.service_code),
            row.period.strftime("%Y-%m"),
            row.currency,
            row.record_count,
            row.quantity,
            row.included_quantity,
            row.allowance_used,
            row.overage_quantity,
            row.monthly_fee,
            row.amount,
        ]


def _total_rows(rows: Sequence[UsageReportRow]) -> list[list]:
    return [
        ["Total", "", "", "", "", total.currency, total.record_count, total.quantity, None]
        + [total.allowance_used, total.overage_quantity, total.monthly_fee, total.amount]
        for total in usage_report_totals(rows)
    ]


def usage_report_download(
    rows: Sequence[UsageReportRow], export: str, *, period: date, filters: Sequence[tuple[str, str]], stem: str
) -> HttpResponse:
    """The rows as `export` (csv, xlsx or pdf). CSV stays data only; XLSX and PDF end with the totals per
    currency; the PDF prints `filters` on top."""
    name = f"{stem}-{period:%Y-%m}.{export}"
    if export == "csv":
        return csv_download(HEADERS, _export_rows(rows), name)
    if export == "xlsx":
        return xlsx_download(
            HEADERS,
            _export_rows(rows),
            name,
            sheet="Usage",
            number_formats=NUMBER_FORMATS,
            totals=_total_rows(rows),
            freeze_header=True,
        )
    pdf = table_report_pdf(
        title=f"Usage report, {month_label(period)}",
        filters=filters,
        columns=PDF_COLUMNS,
        rows=[
            [
                f"{row.customer_name} ({row.client_id})",
                row.service_name,
                formatting.quantity(row.record_count),
                formatting.quantity(row.quantity),
                formatting.quantity(row.included_quantity),
                formatting.quantity(row.allowance_used),
                formatting.quantity(row.overage_quantity),
                formatting.money(row.monthly_fee, row.currency),
                formatting.money(row.amount, row.currency),
            ]
            for row in rows
        ],
        totals=[
            [
                f"Total {total.currency}",
                "",
                formatting.quantity(total.record_count),
                formatting.quantity(total.quantity),
                "",
                formatting.quantity(total.allowance_used),
                formatting.quantity(total.overage_quantity),
                formatting.money(total.monthly_fee, total.currency),
                formatting.money(total.amount, total.currency),
            ]
            for total in usage_report_totals(rows)
        ],
        empty=f"No usage and no monthly fees in {month_label(period)}.",
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
