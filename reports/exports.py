"""A report table (reports.finance.ReportTable) as a file: CSV and XLSX through the shared spreadsheet module,
PDF drawn here with reportlab in the style of the invoice PDFs (ledger.pdf).

CSV holds amounts as exact text; XLSX as numbers with number formats, a frozen header and the totals rows at
the end; the PDF prints the title and the filters on top, landscape when the table is wide, "Page n of m" at
the foot of each page.
"""

from datetime import date
from io import BytesIO

from django.conf import settings
from django.http import HttpResponse
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from billing_project import spreadsheets
from billing_project.formatting import day, moment, money
from reports.finance import COUNT, DAY, MONEY, MONTH, RATE, TEXT, Column, ReportTable

# A PDF is drawn whole in memory; beyond this many rows the page offers the XLSX instead.
PDF_MAX_ROWS = 5000

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
        return f"{value * 100:.2f} %"
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


def csv_response(table: ReportTable, filename: str):
    return spreadsheets.csv_download(
        [column.key for column in table.columns],
        (
            [_csv_value(column, row.get(column.key)) for column in table.columns]
            for rows in (table.rows, table.totals)
            for row in rows
        ),
        filename,
    )


def xlsx_response(table: ReportTable, filename: str):
    return spreadsheets.xlsx_download(
        [column.label for column in table.columns],
        ([_xlsx_value(column, row.get(column.key)) for column in table.columns] for row in table.rows),
        filename,
        sheet=table.title[:31],
        number_formats=[_XLSX_FORMATS.get(column.kind) for column in table.columns],
        totals=([_xlsx_value(column, row.get(column.key)) for column in table.columns] for row in table.totals),
        freeze_header=True,
    )


# --- PDF --------------------------------------------------------------------------------------------------------

_STYLES = getSampleStyleSheet()
_SMALL = ParagraphStyle("report-small", parent=_STYLES["Normal"], fontSize=8, leading=10)
_CELL = ParagraphStyle("report-cell", parent=_SMALL, fontSize=7.5, leading=9)
_CELL_RIGHT = ParagraphStyle("report-cell-right", parent=_CELL, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("report-title", parent=_STYLES["Title"], alignment=0, fontSize=16, spaceAfter=2)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _NumberedCanvas(Canvas):
    """Holds each page until the last is drawn, then writes "Page n of m" on every one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        count = len(self._pages)
        for page in self._pages:
            self.__dict__.update(page)
            self.setFont("Helvetica", 8)
            width = self._pagesize[0]
            self.drawRightString(width - 12 * mm, 8 * mm, f"Page {self._pageNumber} of {count}")
            self.drawString(12 * mm, 8 * mm, settings.SELLER["name"])
            super().showPage()
        super().save()


def _pdf_table(table: ReportTable) -> LongTable:
    columns = table.columns
    header = [
        Paragraph(f"<b>{_escape(column.label)}</b>", _CELL_RIGHT if column.is_number else _CELL) for column in columns
    ]

    def line(row: dict, *, bold: bool = False) -> list:
        currency = row.get("currency", "")
        text = "<b>{}</b>" if bold else "{}"
        return [
            cell_text(column, row.get(column.key), currency)
            if column.is_number
            else Paragraph(text.format(_escape(cell_text(column, row.get(column.key), currency))), _CELL)
            for column in columns
        ]

    body = [line(row) for row in table.rows]
    totals = [line(row, bold=True) for row in table.totals]
    grid = LongTable([header, *body, *totals], repeatRows=1)
    style = [
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    style += [("ALIGN", (i, 0), (i, -1), "RIGHT") for i, column in enumerate(columns) if column.is_number]
    if totals:
        first_total = 1 + len(body)
        style += [
            ("FONTNAME", (0, first_total), (-1, -1), "Helvetica-Bold"),
            ("LINEABOVE", (0, first_total), (-1, first_total), 0.75, colors.black),
        ]
    grid.setStyle(TableStyle(style))
    return grid


def render_pdf(table: ReportTable, *, generated_at) -> bytes:
    """The report as a PDF: title, filters, the table with its header on every page, the totals last."""
    pagesize = landscape(A4) if table.is_wide else A4
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=table.title,
        author=settings.SELLER["name"],
    )
    filters = " · ".join(f"<b>{_escape(label)}:</b> {_escape(value)}" for label, value in table.filters)
    story = [
        Paragraph(_escape(table.title), _TITLE),
        Paragraph(filters, _SMALL),
        Paragraph(f"Generated {_escape(moment(generated_at))}. Amounts per currency, never converted.", _SMALL),
        Spacer(1, 4 * mm),
    ]
    if table.rows or table.totals:
        story.append(_pdf_table(table))
    else:
        story.append(Paragraph(_escape(table.empty_message), _SMALL))
    document.build(story, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


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
