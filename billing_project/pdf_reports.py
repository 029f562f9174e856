"""Reports as PDF, drawn with reportlab in the invoices' style (ledger/pdf.py): a title, the filters the report
was made with, one table with a repeated header and bold totals rows, "Page n of m" on every page, and a
landscape page when the table has too many columns for a portrait one."""

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
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing_project import formatting

_STYLES = getSampleStyleSheet()
_CELL = ParagraphStyle("cell", parent=_STYLES["Normal"], fontSize=8, leading=10)
_CELL_RIGHT = ParagraphStyle("cell-right", parent=_CELL, alignment=TA_RIGHT)
_CELL_BOLD = ParagraphStyle("cell-bold", parent=_CELL, fontName="Helvetica-Bold")
_CELL_BOLD_RIGHT = ParagraphStyle("cell-bold-right", parent=_CELL_BOLD, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("title", parent=_STYLES["Title"], alignment=0, fontSize=16, spaceAfter=4)
_FILTERS = ParagraphStyle("filters", parent=_STYLES["Normal"], fontSize=9, leading=12)
_MARGIN = 15 * mm
PORTRAIT_MAX_COLUMNS = 6  # more columns than this and the page turns to landscape


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False  # right-aligned
    weight: float = 1  # its share of the page's width


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
            self.setFont("Helvetica", 8)
            self.setFillColor(colors.grey)
            self.drawRightString(width - _MARGIN, 8 * mm, f"Page {number} of {len(self._pages)}")
            self.drawString(_MARGIN, 8 * mm, f"{settings.SELLER['name']} · printed {formatting.moment(self._printed)}")
            super().showPage()
        super().save()


def table_report_pdf(
    *,
    title: str,
    filters: Sequence[tuple[str, str]],
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    totals: Sequence[Sequence[str]] = (),
    empty: str = "Nothing to show.",
) -> bytes:
    """The report as PDF bytes. Cells are text already formatted (billing_project.formatting); `totals` rows
    follow the rows in bold, above a rule."""
    pagesize = landscape(A4) if len(columns) > PORTRAIT_MAX_COLUMNS else A4
    width = pagesize[0] - 2 * _MARGIN
    weight = sum(column.weight for column in columns)

    def cells(row: Sequence[str], bold: bool = False) -> list[Paragraph]:
        styles = (_CELL_BOLD, _CELL_BOLD_RIGHT) if bold else (_CELL, _CELL_RIGHT)
        return [
            Paragraph(escape(value), styles[1] if column.numeric else styles[0])
            for column, value in zip(columns, row, strict=True)
        ]

    story = [
        Paragraph(escape(title), _TITLE),
        Paragraph("<br/>".join(f"<b>{escape(label)}:</b> {escape(value)}" for label, value in filters), _FILTERS),
        Spacer(1, 5 * mm),
    ]
    if rows or totals:
        header = cells([column.title for column in columns], bold=True)
        body = [cells(row) for row in rows]
        table = Table(
            [header, *body, *(cells(row, bold=True) for row in totals)],
            colWidths=[width * column.weight / weight for column in columns],
            repeatRows=1,
        )
        style = [
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
    )
    document.build(story, canvasmaker=partial(_NumberedCanvas, printed=timezone.now()))
    return buffer.getvalue()
