"""Files staff download to open in a spreadsheet: CSV streamed while its rows are read, XLSX written row by
row into a temporary file, and text that a spreadsheet would run as a formula shown as text instead.

`write_csv` and `write_xlsx` write the same files into a file of their caller's (an export run in the background
writes there, reports.services.exports); neither holds the rows in memory."""

import csv
import io
import tempfile
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import BinaryIO

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

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


def write_csv(file: BinaryIO, headers: Sequence[str], rows: Iterable[Sequence]) -> None:
    """The rows as CSV (UTF-8) into a binary file, one row at a time."""
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(headers)
    writer.writerows(rows)
    text.flush()
    text.detach()  # the caller keeps its file open


# Number formats of spreadsheet cells: numbers stay numbers, shown like the pages show them.
AMOUNT_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
QUANTITY_FORMAT = "#,##0.######"
DAY_FORMAT = "d mmm yyyy"
MONTH_FORMAT = "mmm yyyy"
RATE_FORMAT = "0.00%"


def write_xlsx(
    file: BinaryIO,
    headers: Sequence[str],
    rows: Iterable[Sequence],
    *,
    sheet: str,
    number_formats: Sequence[str | None] = (),
    totals: Iterable[Sequence] = (),
    freeze_header: bool = False,
) -> None:
    """The rows in one sheet, written by openpyxl's write-only workbook (each row goes to a temporary file as it
    is appended, so memory does not grow with the rows) into `file`.

    `number_formats` gives each column's number format (None: as it is); `totals` are rows written last, in bold;
    `freeze_header` keeps the header row in view while scrolling."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    if freeze_header:
        worksheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cells(values: Sequence, *, font: Font | None = None) -> list:
        if not number_formats and font is None:
            return list(values)
        row = []
        for position, value in enumerate(values):
            cell = WriteOnlyCell(worksheet, value=value)
            number_format = number_formats[position] if position < len(number_formats) else None
            if number_format and value is not None:
                cell.number_format = number_format
            if font is not None:
                cell.font = font
            row.append(cell)
        return row

    # One styled cell per formatted column, given each row's value in turn: append() writes a row out before it
    # returns, and building and styling a cell for every value took most of the time of a long export.
    formatted = [WriteOnlyCell(worksheet) if number_format else None for number_format in number_formats]
    for cell, number_format in zip(formatted, number_formats, strict=True):
        if cell is not None:
            cell.number_format = number_format

    def body(values: Sequence) -> list:
        if not number_formats:
            return values if isinstance(values, list) else list(values)
        row = []
        for position, value in enumerate(values):
            cell = formatted[position] if position < len(formatted) else None
            if cell is None or value is None:
                row.append(value)
            else:
                cell.value = value
                row.append(cell)
        return row

    worksheet.append(cells(headers, font=bold) if freeze_header else headers)
    for row in rows:
        worksheet.append(body(row))
    for row in totals:
        worksheet.append(cells(row, font=bold))
    workbook.save(file)


def xlsx_download(
    headers: Sequence[str],
    rows: Iterable[Sequence],
    filename: str,
    *,
    sheet: str,
    number_formats: Sequence[str | None] = (),
    totals: Iterable[Sequence] = (),
    freeze_header: bool = False,
) -> FileResponse:
    """The rows as an XLSX (`write_xlsx`) in a temporary file that is then streamed: an XLSX is a zip, whole
    before its first byte can go."""
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
    write_xlsx(
        file,
        headers,
        rows,
        sheet=sheet,
        number_formats=number_formats,
        totals=totals,
        freeze_header=freeze_header,
    )
    file.seek(0)
    return FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX)
