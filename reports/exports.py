"""A report table (reports.finance.ReportTable) as a file: CSV and XLSX through the shared spreadsheet module,
PDF through the shared report PDF module (billing_project.pdf_reports).

CSV holds amounts as exact text; XLSX as numbers with number formats, a frozen header and the totals rows at
the end; the PDF prints the title and the filters on top, landscape when the table is wide, "Page n of m" at
the foot of each page.
"""

from collections.abc import Iterable
from datetime import date
from typing import BinaryIO

from django.http import HttpResponse

from billing_project import pdf_reports, spreadsheets
from billing_project.formatting import day, money, percent
from reports.finance import COUNT, DAY, MONEY, MONTH, RATE, TEXT, Column, ReportTable

_XLSX_FORMATS = {
    MONEY: spreadsheets.AMOUNT_FORMAT,
    COUNT: spreadsheets.COUNT_FORMAT,
    DAY: spreadsheets.DAY_FORMAT,
    MONTH: spreadsheets.MONTH_FORMAT,
    RATE: spreadsheets.RATE_FORMAT,
}


def cell_text(column: Column, value, currency: str = "") -> str:
    """A value as the page and the PDF show it."""
    if value is None or value == "":
        return ""
    if column.kind == MONEY:
        return money(value, currency)
    if column.kind == COUNT:
        return f"{value:,}"
    if column.kind == DAY:
        return day(value)
    if column.kind == MONTH:
        return f"{value:%b %Y}"
    if column.kind == RATE:
        return percent(value)
    return str(value)


def _csv_value(column: Column, value):
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if column.kind == TEXT:
        return spreadsheets.spreadsheet_safe(value)
    return str(value)


def _xlsx_value(column: Column, value):
    if column.kind == TEXT and value is not None:
        return spreadsheets.spreadsheet_safe(value)
    return value


def _csv_rows(table: ReportTable):
    return (
        [_csv_value(column, row.get(column.key)) for column in table.columns]
        for rows in (table.rows, table.totals)
        for row in rows
    )


def _xlsx_parts(table: ReportTable) -> tuple[list[str], Iterable[list], dict]:
    """The header, the rows and the sheet's options of the table's XLSX."""
    return (
        [column.label for column in table.columns],
        ([_xlsx_value(column, row.get(column.key)) for column in table.columns] for row in table.rows),
        {
            "sheet": table.title[:31],
            "number_formats": [_XLSX_FORMATS.get(column.kind) for column in table.columns],
            "totals": ([_xlsx_value(column, row.get(column.key)) for column in table.columns] for row in table.totals),
            "freeze_header": True,
        },
    )


def csv_response(table: ReportTable, filename: str):
    return spreadsheets.csv_download([column.key for column in table.columns], _csv_rows(table), filename)


def xlsx_response(table: ReportTable, filename: str):
    headers, rows, options = _xlsx_parts(table)
    return spreadsheets.xlsx_download(headers, rows, filename, **options)


def write_table(table: ReportTable, kind: str, file: BinaryIO) -> None:
    """The table as CSV or XLSX into `file`, its rows read once, in order: what a download holds, written where
    an export run in the background keeps it (reports.services.exports)."""
    if kind == "csv":
        spreadsheets.write_csv(file, [column.key for column in table.columns], _csv_rows(table))
    elif kind == "xlsx":
        headers, rows, options = _xlsx_parts(table)
        spreadsheets.write_xlsx(file, headers, rows, **options)
    else:
        raise ValueError(f"No {kind!r} export of a table to a file")


# --- PDF --------------------------------------------------------------------------------------------------------


def _pdf_column(column: Column) -> pdf_reports.Column:
    # Numbers, days and months are as wide as their widest cell; the text columns share the rest and wrap.
    fitted = column.is_number or column.kind in (DAY, MONTH)
    return pdf_reports.Column(column.label, numeric=column.is_number, weight=None if fitted else 1)


def render_pdf(table: ReportTable, *, generated_at) -> bytes:
    """The report as a PDF (billing_project.pdf_reports): title, filters, the table with its header on every
    page, the totals last."""

    def line(row: dict) -> list[str]:
        return [cell_text(column, row.get(column.key), row.get("currency", "")) for column in table.columns]

    return pdf_reports.table_report_pdf(
        title=table.title,
        filters=table.filters,
        notes=["Amounts per currency, never converted."],
        columns=[_pdf_column(column) for column in table.columns],
        rows=[line(row) for row in table.rows],
        totals=[line(row) for row in table.totals],
        empty=table.empty_message,
        wide=table.is_wide,
        printed=generated_at,
    )


def pdf_response(table: ReportTable, filename: str, *, generated_at) -> HttpResponse:
    response = HttpResponse(render_pdf(table, generated_at=generated_at), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_response(table: ReportTable, export: str, *, stem: str, generated_at):
    """The response for ?export=csv|xlsx|pdf, or None for anything else."""
    if export == "csv":
        return csv_response(table, f"{stem}.csv")
    if export == "xlsx":
        return xlsx_response(table, f"{stem}.xlsx")
    if export == "pdf":
        return pdf_response(table, f"{stem}.pdf", generated_at=generated_at)
    return None
