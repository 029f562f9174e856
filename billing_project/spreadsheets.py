"""Files staff download to open in a spreadsheet: CSV streamed while its rows are read, XLSX written row by
row into a temporary file, and text that a spreadsheet would run as a formula shown as text instead."""

import csv
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import chain

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

AMOUNT_FORMAT = "#,##0.00"
QUANTITY_FORMAT = "#,##0.######"
PRICE_FORMAT = "#,##0.00####"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def spreadsheet_safe(value) -> str:
    """The value as text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file for csv.writer that hands each written row back, to be streamed."""

    def write(self, value: str) -> str:
        return value


def csv_download(headers: Sequence[str], rows: Iterable[Sequence], filename: str) -> StreamingHttpResponse:
    """The rows as CSV, streamed as they are produced: never held whole in memory."""
    writer = csv.writer(_Echo())
    lines = (writer.writerow(row) for row in chain([headers], rows))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_download(
    headers: Sequence[str],
    rows: Iterable[Sequence],
    filename: str,
    *,
    sheet: str,
    number_formats: Mapping[int, str] | None = None,
    totals: Iterable[Sequence] = (),
) -> FileResponse:
    """The rows in one sheet under a frozen header, written by openpyxl's write-only workbook into a temporary
    file that is then streamed: an XLSX is a zip, whole before its first byte can go. `number_formats` maps a
    column's index to its number format; `totals` rows follow the rows in bold."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.freeze_panes = "A2"
    formats = number_formats or {}
    bold = Font(bold=True)

    def cells(row: Sequence, font: Font | None = None) -> list:
        if not formats and font is None:
            return list(row)
        written = []
        for index, value in enumerate(row):
            cell = WriteOnlyCell(worksheet, value=value)
            if index in formats and isinstance(value, int | float | Decimal):
                cell.number_format = formats[index]
            if font is not None:
                cell.font = font
            written.append(cell)
        return written

    worksheet.append(cells(headers, bold))
    for row in rows:
        worksheet.append(cells(row))
    for row in totals:
        worksheet.append(cells(row, bold))
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
    workbook.save(file)
    file.seek(0)
    return FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX)
