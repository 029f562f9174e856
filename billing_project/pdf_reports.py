"""Reports as PDF, drawn with reportlab in the invoices' style (ledger/pdf.py): a title, the filters the report
was made with, one table with a repeated header and bold totals rows, "Page n of m" on every page, and a
landscape page when the table has too many columns for a portrait one. The usage report, the customer statement
and the finance reports (reports.exports) all print through here."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from io import BytesIO

from django.conf import settings
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from billing_project import formatting
from billing_project.pdf_fonts import BOLD, FONT

_STYLES = getSampleStyleSheet()
_CELL = ParagraphStyle("cell", parent=_STYLES["Normal"], fontName=FONT, fontSize=8, leading=10)
_CELL_RIGHT = ParagraphStyle("cell-right", parent=_CELL, alignment=TA_RIGHT)
_CELL_BOLD = ParagraphStyle("cell-bold", parent=_CELL, fontName=BOLD)
_CELL_BOLD_RIGHT = ParagraphStyle("cell-bold-right", parent=_CELL_BOLD, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontName=BOLD, alignment=0, fontSize=16, spaceAfter=4)
_FILTERS = ParagraphStyle("filters", parent=_STYLES["Normal"], fontName=FONT, fontSize=9, leading=12)
_MARGIN = 15 * mm
_CELL_PADDING = 12  # a table cell's left and right padding, in points
_MIN_WRAPPED_WIDTH = 15 * mm
PORTRAIT_MAX_COLUMNS = 6  # more columns than this and the page turns to landscape
# A PDF is drawn whole in memory; beyond this many rows a report offers the XLSX instead (too_many_rows).
PDF_MAX_ROWS = 5000


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False  # right-aligned
    weight: float | None = 1  # its share of the page's width; None: as wide as its widest cell, never wrapped


def too_many_rows(count: int) -> str | None:
    """Why a report of `count` rows is not printed as PDF, or None when it can be."""
    if count <= PDF_MAX_ROWS:
        return None
    return (
        f"A PDF holds at most {PDF_MAX_ROWS:,} rows and this report has {count:,}: "
        "narrow the filters, or export XLSX or CSV."
    )


def escape(value: str) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _NumberedCanvas(Canvas):
    """Keeps every page until the end, to print "Page n of m" once m is known."""

    def __init__(self, *args, printed: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self._printed = printed
        self._pages: list[dict] = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            width, _ = self._pagesize
            self.setFont(FONT, 8)
            self.setFillColor(colors.grey)
            self.drawRightString(width - _MARGIN, 8 * mm, f"Page {number} of {len(self._pages)}")
            self.drawString(_MARGIN, 8 * mm, f"{settings.SELLER['name']} · printed {formatting.moment(self._printed)}")
            super().showPage()
        super().save()


def _column_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], totals: Sequence[Sequence[str]], width: float
) -> list[float]:
    """Columns without a weight get their widest cell; the others share what is left by weight. When the fitted
    columns leave too little, every column takes an equal share instead."""

    def widest(index: int) -> float:
        texts = [(columns[index].title, _CELL_BOLD.fontName)]
        texts += [(row[index], _CELL.fontName) for row in rows]
        texts += [(row[index], _CELL_BOLD.fontName) for row in totals]
        return max(stringWidth(str(text), font, _CELL.fontSize) for text, font in texts) + _CELL_PADDING + 1

    fitted = {index: widest(index) for index, column in enumerate(columns) if column.weight is None}
    weighted = [column.weight for column in columns if column.weight is not None]
    left = width - sum(fitted.values())
    if left < len(weighted) * _MIN_WRAPPED_WIDTH:
        return [width / len(columns)] * len(columns)
    if not weighted:  # the spare width goes to the fitted columns alike
        return [fitted[index] + left / len(columns) for index in range(len(columns))]
    return [
        fitted[index] if column.weight is None else left * column.weight / sum(weighted)
        for index, column in enumerate(columns)
    ]


def table_report_pdf(
    *,
    title: str,
    filters: Sequence[tuple[str, str]],
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    totals: Sequence[Sequence[str]] = (),
    empty: str = "Nothing to show.",
    notes: Sequence[str] = (),
    wide: bool | None = None,
    printed: datetime | None = None,
) -> bytes:
    """The report as PDF bytes. Cells are text already formatted (billing_project.formatting); `totals` rows
    follow the rows in bold, above a rule. `notes` are lines printed under the filters; `wide` forces the page's
    orientation (by default landscape beyond PORTRAIT_MAX_COLUMNS columns); `printed` is the time in the footer
    (now by default)."""
    if wide is None:
        wide = len(columns) > PORTRAIT_MAX_COLUMNS
    pagesize = landscape(A4) if wide else A4
    widths = _column_widths(columns, rows, totals, pagesize[0] - 2 * _MARGIN)

    def cells(row: Sequence[str], bold: bool = False) -> list[Paragraph]:
        styles = (_CELL_BOLD, _CELL_BOLD_RIGHT) if bold else (_CELL, _CELL_RIGHT)
        return [
            Paragraph(escape(value), styles[1] if column.numeric else styles[0])
            for column, value in zip(columns, row, strict=True)
        ]

    story = [
        Paragraph(escape(title), _TITLE),
        Paragraph("<br/>".join(f"<b>{escape(label)}:</b> {escape(value)}" for label, value in filters), _FILTERS),
        *(Paragraph(escape(note), _FILTERS) for note in notes),
        Spacer(1, 5 * mm),
    ]
    if rows or totals:
        header = cells([column.title for column in columns], bold=True)
        body = [cells(row) for row in rows]
        # LongTable: a long report lays out in linear time.
        table = LongTable(
            [header, *body, *(cells(row, bold=True) for row in totals)],
            colWidths=widths,
            repeatRows=1,
        )
        style = [
            ("FONTNAME", (0, 0), (-1, -1), FONT),  # every cell is a paragraph, but the table sets its font anyway
            ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
        ]
        if totals:
            style.append(("LINEABOVE", (0, len(body) + 1), (-1, len(body) + 1), 0.75, colors.black))
        table.setStyle(TableStyle(style))
        story.append(table)
    else:
        story.append(Paragraph(escape(empty), _FILTERS))

    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=title,
        author=settings.SELLER["name"],
        initialFontName=FONT,
    )
    document.build(story, canvasmaker=partial(_NumberedCanvas, printed=printed or timezone.now()))
    return buffer.getvalue()
