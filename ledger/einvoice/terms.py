"""The EN 16931 business terms of an invoice or credit note, once, for every syntax (ubl.py, cii.py).

Each business term is read from the stored invoice: an e-invoice is a second rendering of what the PDF shows,
never a new calculation. Amounts are the invoice's, to the cent: line net amounts (BT-131) are the items' amounts,
the VAT breakdown (BG-23) adds up the lines of each VAT category and rate, and the totals (BG-22) are the
invoice's subtotal, tax and total.

VAT categories come from the items (ledger/vat.py, decided at draft time). A disbursement line (an order's base
charge, a cost paid in the customer's name and passed on at cost) is exempt, category E at 0 % with the reason
code VATEX-EU-79-C: category O (not subject to VAT) would be the plain reading, but EN 16931 forbids mixing O with
any other category on one invoice (BR-O-11 to BR-O-14), and the order's fee is taxed. So the invoice carries two
VAT breakdowns, the fee's (S, or the customer's category) and E for the disbursement, and still validates. When
the customer is itself exempt (E) or not subject (O), the disbursement joins that category and its reason.

Credit notes: each line is what the note takes back of one invoice line, net, as the ledger posts it
(ledger/credit_shares.py): a first full note repeats the invoice's lines; any other note has one line per invoice
line with a share, quantity one, and its tax goes to the VAT breakdown of its lines' category and rate.

The buyer reference (BT-10, which Peppol requires) is the invoice's, the customer's, or its client id when it gave
none. The buyer's electronic address (BT-49) is its Peppol endpoint, or its billing email (scheme EM) when it has
none. Neither party's VAT identifier is given beside category O (BR-O-02 to BR-O-04).
"""

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing_project.billing_time import billing_zone
from catalog.models import Customer, Service, UnitCode
from ledger.credit_shares import credit_shares, reconcile
from ledger.models import CreditNote, Invoice, InvoiceItem
from ledger.vat import VatCategory

COMMERCIAL_INVOICE = "380"  # UNTDID 1001
CREDIT_NOTE = "381"
SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
CREDIT_TRANSFER = "30"
EMAIL_SCHEME = "EM"  # EAS: an electronic mail address
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Party:
    """BG-4 (seller) or BG-7 (buyer)."""

    legal_name: str  # BT-27, BT-44
    trading_name: str  # BT-28, BT-45
    identifier: str  # BT-29, BT-46
    street: str  # BT-35, BT-50
    more: str  # BT-36, BT-51
    line3: str  # BT-162, BT-163
    city: str  # BT-37, BT-52
    postal_code: str  # BT-38, BT-53
    country: str  # BT-40, BT-55
    vat_id: str  # BT-31, BT-48 (empty beside category O)
    registration_id: str  # BT-30, BT-47
    email: str  # BT-43, BT-58
    endpoint_scheme: str  # BT-34, BT-49 scheme
    endpoint_id: str  # BT-34, BT-49


@dataclass(frozen=True, slots=True)
class Line:
    """BG-25: one document line."""

    name: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    amount: Decimal
    tax_amount: Decimal  # not a business term: the ledger's tax on the line, added up in the breakdown
    vat_category: str
    tax_rate: Decimal
    exemption_reason: str
    exemption_code: str


@dataclass
class Breakdown:
    """BG-23: one VAT category and rate, with its taxable amount and tax."""

    category: str
    rate: Decimal
    exemption_reason: str
    exemption_code: str
    taxable: Decimal = ZERO
    tax: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Payment:
    """BG-16 and BT-20: how and until when to pay."""

    means_code: str  # BT-81
    reference: str  # BT-83
    iban: str  # BT-84
    account_name: str  # BT-85
    bic: str  # BT-86
    terms: str  # BT-20


@dataclass(frozen=True, slots=True)
class Document:
    """One invoice or credit note, every business term it has, in no syntax."""

    credit: bool
    number: str  # BT-1
    type_code: str  # BT-3
    issue_date: date  # BT-2
    due_date: date | None  # BT-9
    note: str  # BT-22
    currency: str  # BT-5
    buyer_reference: str  # BT-10
    period_start: date  # BT-73
    period_end: date  # BT-74
    preceding_number: str  # BT-25
    preceding_date: date | None  # BT-26
    seller: Party
    buyer: Party
    delivery_country: str  # BT-80, for an intra-community supply (BR-IC-12)
    payment: Payment | None
    lines: tuple[Line, ...]
    breakdown: tuple[Breakdown, ...]
    subtotal: Decimal  # BT-106, BT-109
    tax: Decimal  # BT-110
    total: Decimal  # BT-112
    payable: Decimal  # BT-115
    pdf: bytes | None  # BG-24, the document as PDF, when given
    pdf_name: str


def _day(moment) -> date:
    return timezone.localtime(moment, billing_zone()).date()


def service_unit_codes() -> dict[int, str]:
    """Every service's unit code (BT-130) by service id: a few rows, read once for many documents."""
    return dict(Service.objects.values_list("pk", "unit_code"))


def _item_lines(items: list[InvoiceItem], unit_codes: dict[int, str] | None = None) -> list[Line]:
    if unit_codes is None:
        ids = {item.service_id for item in items if item.service_id}
        unit_codes = dict(Service.objects.filter(pk__in=ids).values_list("pk", "unit_code")) if ids else {}
    lines = []
    for item in items:
        if item.source == InvoiceItem.Source.FEE:
            unit_code = UnitCode.MONTH  # the monthly fee: one month
        else:
            unit_code = unit_codes.get(item.service_id, UnitCode.ONE)
        lines.append(
            Line(
                name=item.description,
                quantity=item.quantity,
                unit_code=unit_code,
                unit_price=item.unit_price,
                amount=item.amount,
                tax_amount=item.tax_amount,
                vat_category=item.vat_category,
                tax_rate=item.tax_rate,
                exemption_reason=item.vat_exemption_reason,
                exemption_code=item.vat_exemption_code,
            )
        )
    return lines


def _credit_lines(note: CreditNote, items: list[InvoiceItem]) -> list[Line]:
    """The note's lines: the invoice's own for a first full note, otherwise each line's share, as posted."""
    others = note.invoice.credit_notes.order_by("issued_at", "id")
    # A note being issued (not saved yet) comes after every other.
    earlier = [
        other.total for other in others if note.pk is None or (other.issued_at, other.pk) < (note.issued_at, note.pk)
    ]
    if note.full and not earlier:
        return _item_lines(items)
    shares = credit_shares(items, amount=note.total, full=note.full, earlier_totals=earlier)
    shares = reconcile(shares, subtotal=note.subtotal, tax=note.tax)
    return [
        Line(
            name=f"Credit on: {share.item.description}",
            quantity=Decimal(1),
            unit_code=UnitCode.ONE,
            unit_price=share.amount,
            amount=share.amount,
            tax_amount=share.tax_amount,
            vat_category=share.item.vat_category,
            tax_rate=share.item.tax_rate,
            exemption_reason=share.item.vat_exemption_reason,
            exemption_code=share.item.vat_exemption_code,
        )
        for share in shares
        if share.amount
    ]


def vat_breakdown(lines: list[Line], tax: Decimal) -> list[Breakdown]:
    """The lines added up per category and rate; the document's tax (rounded per line, as the ledger does) is
    kept whole: any cent between it and the lines' own taxes goes to the largest taxed group."""
    groups: dict[tuple[str, Decimal], Breakdown] = {}
    for line in lines:
        key = (line.vat_category, line.tax_rate)
        group = groups.setdefault(
            key, Breakdown(line.vat_category, line.tax_rate, line.exemption_reason, line.exemption_code)
        )
        group.taxable += line.amount
        group.tax += line.tax_amount
    breakdown = list(groups.values())
    difference = tax - sum((group.tax for group in breakdown), ZERO)
    if difference and breakdown:
        taxed = [group for group in breakdown if group.rate > 0] or breakdown
        max(taxed, key=lambda group: group.taxable).tax += difference
    return breakdown


def seller_party(*, with_vat_id: bool) -> Party:
    seller = settings.SELLER
    return Party(
        legal_name=seller["name"],
        trading_name=seller["trading_name"],
        identifier="",
        street=seller["street"],
        more="",
        line3="",
        city=seller["city"],
        postal_code=seller["postal_code"],
        country=seller["country"],
        vat_id=seller["vat_id"] if with_vat_id else "",
        registration_id=seller["registration_id"],
        email=seller["email"],
        endpoint_scheme=seller["peppol_scheme"] if seller["peppol_id"] else EMAIL_SCHEME,
        endpoint_id=seller["peppol_id"] or seller["email"],
    )


def buyer_party(customer: Customer, *, with_vat_id: bool) -> Party:
    if customer.peppol_id:
        scheme, endpoint = customer.peppol_scheme, customer.peppol_id
    else:
        scheme, endpoint = (EMAIL_SCHEME, customer.billing_email) if customer.billing_email else ("", "")
    return Party(
        legal_name=customer.legal_name or customer.name,
        trading_name=customer.name,
        identifier=customer.client_id,
        street=customer.street_line1,
        more=customer.street_line2,
        line3=customer.street_line3,
        city=customer.city,
        postal_code=customer.postal_code,
        country=customer.country.code if customer.country else "",
        vat_id=customer.vat_id if with_vat_id else "",
        registration_id=customer.legal_registration_id,
        email=customer.billing_email,
        endpoint_scheme=scheme,
        endpoint_id=endpoint,
    )


def _document(
    *,
    credit: bool,
    number: str,
    issue_date: date,
    due_date: date | None,
    note: str,
    invoice: Invoice,
    lines: list[Line],
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
    pdf: bytes | None,
) -> Document:
    customer = invoice.customer
    categories = {line.vat_category for line in lines}
    with_vat_ids = VatCategory.NOT_SUBJECT not in categories  # BR-O-02 to BR-O-04
    last_day = calendar.monthrange(invoice.period.year, invoice.period.month)[1]
    seller = settings.SELLER
    payment = None
    if not credit:
        payment = Payment(
            means_code=SEPA_CREDIT_TRANSFER if invoice.currency == "EUR" else CREDIT_TRANSFER,
            reference=number,
            iban=seller["iban"],
            account_name=seller["name"],
            bic=seller["bic"],
            terms=f"Due on {due_date:%d %b %Y}, quoting {number}." if due_date else "",
        )
    return Document(
        credit=credit,
        number=number,
        type_code=CREDIT_NOTE if credit else COMMERCIAL_INVOICE,
        issue_date=issue_date,
        due_date=None if credit else due_date,
        note=note,
        currency=invoice.currency,
        buyer_reference=invoice.buyer_reference or customer.buyer_reference or customer.client_id,
        period_start=invoice.period,
        period_end=invoice.period.replace(day=last_day),
        preceding_number=invoice.number if credit else "",
        preceding_date=_day(invoice.issued_at) if credit else None,
        seller=seller_party(with_vat_id=with_vat_ids),
        buyer=buyer_party(customer, with_vat_id=with_vat_ids),
        delivery_country=customer.country.code if VatCategory.INTRA_COMMUNITY in categories else "",
        payment=payment,
        lines=tuple(lines),
        breakdown=tuple(vat_breakdown(lines, tax)),
        subtotal=subtotal,
        tax=tax,
        total=total,
        payable=total,
        pdf=pdf,
        pdf_name=f"{number}.pdf",
    )


def invoice_terms(
    invoice: Invoice,
    *,
    pdf: bytes | None = None,
    items: list[InvoiceItem] | None = None,
    unit_codes: dict[int, str] | None = None,
) -> Document:
    """The issued invoice's business terms, its PDF as an attachment when given. `items` and `unit_codes`
    (`service_unit_codes`) are read when not given."""
    return _document(
        credit=False,
        number=invoice.number,
        issue_date=_day(invoice.issued_at),
        due_date=invoice.due_date,
        note="",
        invoice=invoice,
        lines=_item_lines(list(invoice.items.all()) if items is None else items, unit_codes),
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        pdf=pdf,
    )


def credit_note_terms(note: CreditNote, *, pdf: bytes | None = None) -> Document:
    """The credit note's business terms, referring to its invoice (BT-25), its PDF as an attachment when given."""
    invoice = note.invoice
    return _document(
        credit=True,
        number=note.number,
        issue_date=_day(note.issued_at),
        due_date=None,
        note=note.reason,
        invoice=invoice,
        lines=_credit_lines(note, list(invoice.items.all())),
        subtotal=note.subtotal,
        tax=note.tax,
        total=note.total,
        pdf=pdf,
    )
