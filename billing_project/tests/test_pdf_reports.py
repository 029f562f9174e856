"""billing_project.pdf_reports: the one report PDF builder (usage report, customer statement, finance reports)."""

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from billing_project import pdf_reports
from billing_project.pdf_reports import PDF_MAX_ROWS, Column, table_report_pdf, too_many_rows
from billing_project.tests.pdf_checks import page_fonts


def _text(content: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(content))
    return reader, "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def test_a_fitted_column_keeps_its_widest_cell_on_one_line():
    columns = [
        Column("Billing month", weight=None),
        *(Column(f"Long column title {n}") for n in range(13)),
    ]  # fourteen columns: an equal share is too narrow for "Billing month" in bold
    content = table_report_pdf(
        title="Wide",
        filters=[("Period", "March")],
        columns=columns,
        rows=[["Mar 2026", *("x" for _ in range(13))]],
    )
    _, text = _text(content)
    assert "Billing month" in text


def test_when_fitted_columns_leave_no_room_every_column_gets_an_equal_share():
    columns = [Column("Amount", numeric=True, weight=None), Column("Note")]
    widths = pdf_reports._column_widths(columns, [["9" * 200, "a"]], [], 500)
    assert widths == [250, 250]


def test_notes_orientation_and_print_time_can_be_given():
    content = table_report_pdf(
        title="Report",
        filters=[("Period", "March")],
        notes=["Amounts per currency, never converted."],
        columns=[Column(f"C{n}") for n in range(9)],
        rows=[[str(n) for n in range(9)]],
        wide=False,
        printed=datetime(2026, 4, 1, 10, 0, tzinfo=UTC),
    )
    reader, text = _text(content)
    assert "Amounts per currency, never converted." in text
    assert "printed 1 Apr 2026" in text
    assert reader.pages[0].mediabox.width < reader.pages[0].mediabox.height  # nine columns, yet portrait as asked


def test_a_pdf_holds_at_most_the_row_cap():
    assert too_many_rows(PDF_MAX_ROWS) is None
    assert too_many_rows(PDF_MAX_ROWS + 1) == (
        f"A PDF holds at most {PDF_MAX_ROWS:,} rows and this report has {PDF_MAX_ROWS + 1:,}: "
        "narrow the filters, or export XLSX or CSV."
    )


def test_a_report_is_drawn_in_the_product_font_embedded():
    content = table_report_pdf(
        title="Report",
        filters=[("Period", "March")],
        columns=[Column("Name"), Column("Amount", numeric=True)],
        rows=[["Acme", "1.00"]],
        totals=[["Total", "1.00"]],
    )
    # Subsets ("AAAAAA+BitstreamVeraSans-Roman") of Vera and Vera Bold (title, header, totals), both embedded.
    assert {name.split("+")[-1]: program for name, program in page_fonts(content).items()} == {
        "BitstreamVeraSans-Bold": "/FontFile2",
        "BitstreamVeraSans-Roman": "/FontFile2",
    }
