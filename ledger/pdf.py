"""Invoice and credit-note PDFs, drawn with reportlab: seller and buyer, number, dates, lines, tax, totals; and the
customer statement's PDF. Every text is in the product's TrueType font, embedded (billing_project/pdf_fonts.py), so
the file that becomes a Factur-X PDF/A-3 (ledger/einvoice/cii.py, facturx_pdf) carries its fonts."""

import calendar
from decimal import Decimal
from io import BytesIO

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing_project import formatting
from billing_project.pdf_fonts import BOLD, FONT
from billing_project.pdf_reports import Column, table_report_pdf

_STYLES = getSampleStyleSheet()
_NORMAL = ParagraphStyle("normal", parent=_STYLES["Normal"], fontName=FONT)
_SMALL = ParagraphStyle("small", parent=_NORMAL, fontSize=8, leading=10)
_RIGHT = ParagraphStyle("right", parent=_NORMAL, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontName=BOLD, alignment=0, fontSize=20, spaceAfter=4)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")


def _money(value: Decimal, currency: str) -> str:
    return formatting.money(value, currency)


def _period(period) -> str:
    last = calendar.monthrange(period.year, period.month)[1]
    return f"{formatting.day(period)} – {formatting.day(period.replace(day=last))}"


def _parties(customer, config) -> Table:
    seller = settings.SELLER
    seller_block = Paragraph(
        f"<b>{_text(seller['name'])}</b><br/>{_text(seller['address'])}<br/>Tax id: {_text(seller['tax_id'])}"
        f"<br/>{_text(seller['email'])}",
        _NORMAL,
    )
    buyer_lines = [f"<b>{_text(customer.legal_name or customer.name)}</b>"]
    buyer_lines.extend(_text(line) for line in customer.address_lines)
    buyer_lines.append(f"Customer: {_text(customer.client_id)}")
    if customer.vat_id:
        buyer_lines.append(f"VAT id: {_text(customer.vat_id)}")
    elif config is not None and config.tax_id:
        buyer_lines.append(f"Tax id: {_text(config.tax_id)}")
    buyer_block = Paragraph("<br/>".join(buyer_lines), _NORMAL)
    table = Table(
        [[Paragraph("<b>From</b>", _SMALL), Paragraph("<b>Bill to</b>", _SMALL)], [seller_block, buyer_block]]
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _facts(rows: list[tuple[str, str]]) -> Table:
    table = Table([[Paragraph(f"<b>{label}</b>", _NORMAL), Paragraph(_text(value), _NORMAL)] for label, value in rows])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _lines_table(items, currency: str) -> Table:
    header = ["Description", "Quantity", "Unit price", "Amount", "Tax"]
    body = [
        [
            Paragraph(_text(item.description), _NORMAL),
            formatting.quantity(item.quantity),
            formatting.price(item.unit_price, currency),
            _money(item.amount, currency),
            f"{_money(item.tax_amount, currency)} ({formatting.percent(item.tax_rate)})",
        ]
        for item in items
    ]
    # Vera is about a tenth wider than Helvetica was: the description wraps, so the figures take from it (a
    # quantity of 1,000,000, a tax of EUR 246,913.58 (20 %) fit on one line).
    table = Table([header, *body], colWidths=[48 * mm, 22 * mm, 26 * mm, 32 * mm, 46 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTNAME", (0, 0), (-1, 0), BOLD),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.black),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, -1), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    return table


def _totals(rows: list[tuple[str, str]]) -> Table:
    table = Table([[label, value] for label, value in rows], colWidths=[40 * mm, 40 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTNAME", (0, -1), (-1, -1), BOLD),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
            ]
        )
    )
    return table


def _build(title: str, story: list) -> bytes:
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=settings.SELLER["name"],
        initialFontName=FONT,  # else the page starts in Helvetica, which stays in the file unembedded
    )
    document.build(story)
    return buffer.getvalue()


def render_invoice_pdf(invoice, items, config) -> bytes:
    currency = invoice.currency
    facts = [
        ("Invoice number", invoice.number or "DRAFT"),
        ("Issue date", formatting.day(invoice.issued_at) or "—"),
        ("Due date", formatting.day(invoice.due_date) or "—"),
        ("Period", _period(invoice.period)),
        ("Customer", invoice.customer.client_id),
    ]
    terms = f"Payment terms: {config.payment_terms_days} days. " if config else ""
    exempt = f"Exempt from tax: {_text(config.tax_exempt_reason)}. " if config and config.tax_exempt else ""
    story = [
        Paragraph(f"Invoice {_text(invoice.number or '(draft)')}", _TITLE),
        _parties(invoice.customer, config),
        Spacer(1, 6 * mm),
        _facts(facts),
        Spacer(1, 6 * mm),
        _lines_table(items, currency),
        Spacer(1, 4 * mm),
        _totals(
            [
                ("Subtotal", _money(invoice.subtotal, currency)),
                ("Tax", _money(invoice.tax, currency)),
                ("Total due", _money(invoice.total, currency)),
            ]
        ),
        Spacer(1, 8 * mm),
        Paragraph(
            f"{terms}{exempt}Please pay to {_text(settings.SELLER['bank'])} quoting reference "
            f"<b>{_text(invoice.number or '')}</b>.",
            _SMALL,
        ),
    ]
    return _build(f"Invoice {invoice.number}", story)


def render_credit_note_pdf(note, invoice) -> bytes:
    currency = note.currency
    story = [
        Paragraph(f"Credit note {_text(note.number)}", _TITLE),
        _parties(invoice.customer, getattr(invoice.customer, "billing_config", None)),
        Spacer(1, 6 * mm),
        _facts(
            [
                ("Credit note number", note.number),
                ("Date", f"{note.issued_at:%d %b %Y}"),
                ("Corrects invoice", invoice.number),
                ("Period", _period(invoice.period)),
                ("Reason", note.reason),
            ]
        ),
        Spacer(1, 6 * mm),
        _totals(
            [
                ("Credited amount", _money(note.subtotal, currency)),
                ("Tax", _money(note.tax, currency)),
                ("Total credited", _money(note.total, currency)),
            ]
        ),
        Spacer(1, 8 * mm),
        Paragraph(
            "The credited amount reduces what is owed on the invoice; any excess stays as credit on your account.",
            _SMALL,
        ),
    ]
    return _build(f"Credit note {note.number}", story)


STATEMENT_COLUMNS = [
    Column("Date", weight=1.1),
    Column("Kind", weight=1.1),
    Column("Reference", weight=1.5),
    Column("Description", weight=3),
    Column("Amount", numeric=True, weight=1.4),
    Column("Balance", numeric=True, weight=1.4),
]


def statement_days_label(days) -> str:
    if days.first and days.last:
        return f"{formatting.day(days.first)} – {formatting.day(days.last)}"
    if days.first:
        return f"From {formatting.day(days.first)}"
    if days.last:
        return f"Until {formatting.day(days.last)}"
    return "All dates"


def render_statement_pdf(statement) -> bytes:
    """A ledger.selectors.StatementPeriod as PDF: the balance brought forward, every line with the balance after
    it, and the closing balance; the admin's statement page and the customer portal print this same file."""
    customer, currency = statement.customer, statement.customer.currency
    return table_report_pdf(
        title=f"Statement of {customer.legal_name or customer.name}",
        filters=[
            ("Customer", f"{customer.name} ({customer.client_id})"),
            ("Period", statement_days_label(statement.days)),
            ("Currency", f"{currency}; a positive amount raises what the customer owes"),
        ],
        columns=STATEMENT_COLUMNS,
        rows=[
            ["", "", "", "Balance brought forward", "", formatting.money(statement.brought_forward, currency)],
            *(
                [
                    formatting.day(line.date),
                    line.kind_label,
                    line.reference,
                    line.description,
                    formatting.money(line.amount, currency),
                    formatting.money(line.balance_after, currency),
                ]
                for line in statement.lines
            ),
        ],
        totals=[["", "", "", "Closing balance", "", formatting.money(statement.closing_balance, currency)]],
    )
