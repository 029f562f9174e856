"""Files staff download to open in a spreadsheet: CSV streamed while its rows are read, XLSX written row by
row into a temporary file, and text that a spreadsheet would run as a formula shown as text instead."""

import csv
import tempfile
from collections.abc import Iterable, Sequence
from itertools import chain

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook

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


def xlsx_download(headers: Sequence[str], rows: Iterable[Sequence], filename: str, *, sheet: str) -> FileResponse:
    """The rows in one sheet, written by openpyxl's write-only workbook into a temporary file that is then
    streamed: an XLSX is a zip, whole before its first byte can go."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(headers)
    for row in rows:
        worksheet.append(row)
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it once sent)
    workbook.save(file)
    file.seek(0)
    return FileResponse(file, as_attachment=True, filename=filename, content_type=XLSX)
