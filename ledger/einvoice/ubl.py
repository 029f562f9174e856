"""UBL 2.1 Invoice and CreditNote following Peppol BIS Billing 3.0, the EN 16931 business terms in one place.

Each business term is written from the stored invoice: the document is a second rendering of what the PDF shows,
never a new calculation. Amounts are the invoice's, to the cent: line net amounts (BT-131) are the items' amounts,
the VAT breakdown (BG-23) adds up the items of each VAT category and rate, and the totals (BG-22) are the
invoice's subtotal, tax and total.

VAT categories come from the items (ledger/vat.py, decided at draft time). A disbursement line (an order's base
charge, a cost paid in the customer's name and passed on at cost) is exempt, category E at 0 % with the reason
code VATEX-EU-79-C: category O (not subject to VAT) would be the plain reading, but EN 16931 forbids mixing O with
any other category on one invoice (BR-O-11 to BR-O-14), and the order's fee is taxed. So the invoice carries two
VAT breakdowns, the fee's (S, or the customer's category) and E for the disbursement, and still validates. When
the customer is itself exempt (E) or not subject (O), the disbursement joins that category and its reason.

Credit notes: a full note that is the invoice's first repeats the invoice's lines. Otherwise (a partial note, or
the rest after earlier notes) each of the invoice's lines gets its share of the note's net amount, as the ledger
posts it (ledger.services.invoices), one line per invoice line with a share, quantity one; the note's tax goes to
the VAT breakdown of its lines' categories.

The buyer reference (BT-10, which Peppol requires) is the customer's, or its client id when it gave none. The
buyer's electronic address (BT-49) is its Peppol endpoint, or its billing email (scheme EM) when it has none.
"""

import base64
import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from lxml import etree

from billing_project.billing_time import billing_zone
from billing_project.money import round_amount
from catalog.models import Customer, Service, UnitCode
from ledger.models import CreditNote, Invoice, InvoiceItem
from ledger.vat import VatCategory

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
COMMERCIAL_INVOICE = "380"
CREDIT_NOTE = "381"
SEPA_CREDIT_TRANSFER = "58"
CREDIT_TRANSFER = "30"
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Line:
    """One document line: what BG-25 holds."""

    name: str
    quantity: Decimal
    unit_code: str
    unit_price: Decimal
    amount: Decimal
    tax_amount: Decimal
    vat_category: str
    tax_rate: Decimal
    exemption_reason: str
    exemption_code: str
    seller_item_id: str = ""


def _cac(parent, name: str):
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent, name: str, text, **attributes):
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", **attributes)
    element.text = str(text)
    return element


def _amount(parent, name: str, value: Decimal, currency: str):
    return _cbc(parent, name, f"{value:.2f}", currencyID=currency)


def _decimal(value: Decimal) -> str:
    """Quantities and prices as plain decimals, without trailing zeros or an exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _percent(rate: Decimal) -> str:
    return f"{rate * 100:.2f}"


def _day(moment) -> date:
    return timezone.localtime(moment, billing_zone()).date()


def _unit_codes(items: list[InvoiceItem]) -> dict[int, str]:
    ids = {item.service_id for item in items if item.service_id}
    return dict(Service.objects.filter(pk__in=ids).values_list("pk", "unit_code")) if ids else {}


def _item_lines(items: list[InvoiceItem]) -> list[Line]:
    unit_codes = _unit_codes(items)
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
    """The note's lines: the invoice's own for a first full note, otherwise each line's share of the net amount."""
    if note.full and note.subtotal == note.invoice.subtotal:
        return _item_lines(items)
    gross = sum((item.amount for item in items), ZERO)
    lines, given = [], ZERO
    priced = [item for item in items if item.amount]
    for position, item in enumerate(priced):
        last = position == len(priced) - 1
        share = note.subtotal - given if last else round_amount(note.subtotal * item.amount / gross)
        given += share
        if share:
            lines.append(
                Line(
                    name=f"Credit on: {item.description}",
                    quantity=Decimal(1),
                    unit_code=UnitCode.ONE,
                    unit_price=share,
                    amount=share,
                    tax_amount=round_amount(share * item.tax_rate),
                    vat_category=item.vat_category,
                    tax_rate=item.tax_rate,
                    exemption_reason=item.vat_exemption_reason,
                    exemption_code=item.vat_exemption_code,
                )
            )
    return lines


@dataclass
class Breakdown:
    """BG-23: one VAT category and rate, with its taxable amount and tax."""

    category: str
    rate: Decimal
    exemption_reason: str
    exemption_code: str
    taxable: Decimal = ZERO
    tax: Decimal = ZERO


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
    if difference:
        taxed = [group for group in breakdown if group.rate > 0] or breakdown
        max(taxed, key=lambda group: group.taxable).tax += difference
    return breakdown


def _address(parent, *, street: str, more: str, line3: str, city: str, postal_code: str, country: str) -> None:
    address = _cac(parent, "PostalAddress")
    if street:
        _cbc(address, "StreetName", street)
    if more:
        _cbc(address, "AdditionalStreetName", more)
    if city:
        _cbc(address, "CityName", city)
    if postal_code:
        _cbc(address, "PostalZone", postal_code)
    if line3:
        _cbc(_cac(address, "AddressLine"), "Line", line3)
    _cbc(_cac(address, "Country"), "IdentificationCode", country)


def _tax_scheme(parent) -> None:
    _cbc(_cac(parent, "TaxScheme"), "ID", "VAT")


def _seller(root, *, with_vat_id: bool) -> None:
    seller = settings.SELLER
    party = _cac(_cac(root, "AccountingSupplierParty"), "Party")
    if seller["peppol_id"]:
        _cbc(party, "EndpointID", seller["peppol_id"], schemeID=seller["peppol_scheme"])
    else:
        _cbc(party, "EndpointID", seller["email"], schemeID="EM")
    if seller["trading_name"]:
        _cbc(_cac(party, "PartyName"), "Name", seller["trading_name"])
    _address(
        party,
        street=seller["street"],
        more="",
        line3="",
        city=seller["city"],
        postal_code=seller["postal_code"],
        country=seller["country"],
    )
    if with_vat_id:
        tax_scheme = _cac(party, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", seller["vat_id"])
        _tax_scheme(tax_scheme)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", seller["name"])
    if seller["registration_id"]:
        _cbc(legal, "CompanyID", seller["registration_id"])
    _cbc(_cac(party, "Contact"), "ElectronicMail", seller["email"])


def _buyer(root, customer: Customer, *, with_vat_id: bool) -> None:
    party = _cac(_cac(root, "AccountingCustomerParty"), "Party")
    if customer.peppol_id:
        _cbc(party, "EndpointID", customer.peppol_id, schemeID=customer.peppol_scheme)
    elif customer.billing_email:
        _cbc(party, "EndpointID", customer.billing_email, schemeID="EM")
    _cbc(_cac(party, "PartyIdentification"), "ID", customer.client_id)
    _cbc(_cac(party, "PartyName"), "Name", customer.name)
    _address(
        party,
        street=customer.street_line1,
        more=customer.street_line2,
        line3=customer.street_line3,
        city=customer.city,
        postal_code=customer.postal_code,
        country=customer.country.code,
    )
    if with_vat_id and customer.vat_id:
        tax_scheme = _cac(party, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", customer.vat_id)
        _tax_scheme(tax_scheme)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", customer.legal_name or customer.name)
    if customer.legal_registration_id:
        _cbc(legal, "CompanyID", customer.legal_registration_id)
    if customer.billing_email:
        _cbc(_cac(party, "Contact"), "ElectronicMail", customer.billing_email)


def _tax_category(parent, name: str, *, category: str, rate: Decimal, reason: str = "", code: str = "") -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category)
    if category != VatCategory.NOT_SUBJECT:  # BR-O-05, BR-O-09: no rate for O
        _cbc(element, "Percent", _percent(rate))
    if code:
        _cbc(element, "TaxExemptionReasonCode", code)
    if reason:
        _cbc(element, "TaxExemptionReason", reason)
    _tax_scheme(element)


def _line(root, tag: str, quantity_tag: str, number: int, line: Line, currency: str) -> None:
    element = _cac(root, tag)
    _cbc(element, "ID", number)
    _cbc(element, quantity_tag, _decimal(line.quantity), unitCode=line.unit_code)
    _amount(element, "LineExtensionAmount", line.amount, currency)
    item = _cac(element, "Item")
    _cbc(item, "Name", line.name)
    _tax_category(item, "ClassifiedTaxCategory", category=line.vat_category, rate=line.tax_rate)
    price = _cac(element, "Price")
    _cbc(price, "PriceAmount", _decimal(line.unit_price), currencyID=currency)


def _document(
    *,
    root_ns: str,
    number: str,
    issue_date: date,
    due_date: date | None,
    type_code: str,
    note: str,
    invoice: Invoice,
    lines: list[Line],
    subtotal: Decimal,
    tax: Decimal,
    total: Decimal,
    payable: Decimal,
    pdf: bytes | None,
) -> bytes:
    credit = root_ns == CREDIT_NOTE_NS
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}", nsmap={None: root_ns, "cac": CAC, "cbc": CBC}
    )
    customer = invoice.customer
    currency = invoice.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", number)
    _cbc(root, "IssueDate", issue_date.isoformat())
    if due_date is not None and not credit:
        _cbc(root, "DueDate", due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", type_code)
    if note:
        _cbc(root, "Note", note)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", invoice.buyer_reference or customer.buyer_reference or customer.client_id)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", invoice.period.isoformat())
    last_day = calendar.monthrange(invoice.period.year, invoice.period.month)[1]
    _cbc(period, "EndDate", invoice.period.replace(day=last_day).isoformat())
    if credit:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", invoice.number)
        _cbc(reference, "IssueDate", _day(invoice.issued_at).isoformat())
    if pdf is not None:
        attachment = _cac(root, "AdditionalDocumentReference")
        _cbc(attachment, "ID", number)
        _cbc(attachment, "DocumentDescription", "The document as PDF")
        _cbc(
            _cac(attachment, "Attachment"),
            "EmbeddedDocumentBinaryObject",
            base64.b64encode(pdf).decode("ascii"),
            mimeCode="application/pdf",
            filename=f"{number}.pdf",
        )
    categories = {line.vat_category for line in lines}
    with_vat_ids = VatCategory.NOT_SUBJECT not in categories  # BR-O-02: no VAT identifiers beside O
    _seller(root, with_vat_id=with_vat_ids)
    _buyer(root, customer, with_vat_id=with_vat_ids)
    if VatCategory.INTRA_COMMUNITY in categories:  # BR-IC-12: the country delivered to
        location = _cac(_cac(root, "Delivery"), "DeliveryLocation")
        address = _cac(location, "Address")
        _cbc(_cac(address, "Country"), "IdentificationCode", customer.country.code)
    if not credit:
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", SEPA_CREDIT_TRANSFER if currency == "EUR" else CREDIT_TRANSFER)
        _cbc(means, "PaymentID", number)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", settings.SELLER["iban"])
        _cbc(account, "Name", settings.SELLER["name"])
        if settings.SELLER["bic"]:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", settings.SELLER["bic"])
        if due_date is not None:
            _cbc(_cac(root, "PaymentTerms"), "Note", f"Due on {due_date:%d %b %Y}, quoting {number}.")
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", tax, currency)
    for group in vat_breakdown(lines, tax):
        subtotal_element = _cac(tax_total, "TaxSubtotal")
        _amount(subtotal_element, "TaxableAmount", group.taxable, currency)
        _amount(subtotal_element, "TaxAmount", group.tax, currency)
        _tax_category(
            subtotal_element,
            "TaxCategory",
            category=group.category,
            rate=group.rate,
            reason=group.exemption_reason,
            code=group.exemption_code,
        )
    totals = _cac(root, "LegalMonetaryTotal")
    _amount(totals, "LineExtensionAmount", subtotal, currency)
    _amount(totals, "TaxExclusiveAmount", subtotal, currency)
    _amount(totals, "TaxInclusiveAmount", total, currency)
    if payable != total:
        _amount(totals, "PrepaidAmount", total - payable, currency)
    _amount(totals, "PayableAmount", payable, currency)
    line_tag, quantity_tag = ("CreditNoteLine", "CreditedQuantity") if credit else ("InvoiceLine", "InvoicedQuantity")
    for number_, line in enumerate(lines, start=1):
        _line(root, line_tag, quantity_tag, number_, line, currency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_ubl(invoice: Invoice, *, pdf: bytes | None = None) -> bytes:
    """The issued invoice as a UBL 2.1 Invoice (Peppol BIS Billing 3.0), its PDF embedded when given."""
    items = list(invoice.items.all())
    return _document(
        root_ns=INVOICE_NS,
        number=invoice.number,
        issue_date=_day(invoice.issued_at),
        due_date=invoice.due_date,
        type_code=COMMERCIAL_INVOICE,
        note="",
        invoice=invoice,
        lines=_item_lines(items),
        subtotal=invoice.subtotal,
        tax=invoice.tax,
        total=invoice.total,
        payable=invoice.total,
        pdf=pdf,
    )


def credit_note_ubl(note: CreditNote, *, pdf: bytes | None = None) -> bytes:
    """The credit note as a UBL 2.1 CreditNote referring to its invoice (BT-25), its PDF embedded when given."""
    invoice = note.invoice
    return _document(
        root_ns=CREDIT_NOTE_NS,
        number=note.number,
        issue_date=_day(note.issued_at),
        due_date=None,
        type_code=CREDIT_NOTE,
        note=note.reason,
        invoice=invoice,
        lines=_credit_lines(note, list(invoice.items.all())),
        subtotal=note.subtotal,
        tax=note.tax,
        total=note.total,
        payable=note.total,
        pdf=pdf,
    )


def _sum(elements) -> Decimal:
    return sum((Decimal(element.text) for element in elements), ZERO)


def ubl_problems(xml: bytes) -> list[str]:
    """The EN 16931 rules a document breaks, among those that decide whether it is whole: mandatory terms, the
    sums (BR-CO-10 to BR-CO-17), the VAT breakdown per category and rate (BR-S-08 and its siblings), the VAT
    identifiers each category needs, and O never beside another category. The official validator
    (tests/einvoice/en16931/) checks every rule in the tests; this runs at issue, so a broken document is never
    stored or sent."""
    root = etree.fromstring(xml)
    ns = {"cac": CAC, "cbc": CBC}

    def text(path: str) -> str:
        return (root.findtext(path, namespaces=ns) or "").strip()

    def amount(path: str) -> Decimal:
        value = text(path)
        return Decimal(value) if value else ZERO

    problems = []
    mandatory = {
        "BR-01": "cbc:CustomizationID",
        "BR-02": "cbc:ID",
        "BR-03": "cbc:IssueDate",
        "BR-05": "cbc:DocumentCurrencyCode",
        "BR-06": "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "BR-07": "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "BR-09": "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
        "BR-11": "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
    }
    problems += [f"{rule}: {path.split('/')[-1]} is missing" for rule, path in mandatory.items() if not text(path)]
    lines = root.findall("cac:InvoiceLine", ns) or root.findall("cac:CreditNoteLine", ns)
    if not lines:
        problems.append("BR-16: the document has no line")
    line_sum = _sum(line.find("cbc:LineExtensionAmount", ns) for line in lines)
    net = amount("cac:LegalMonetaryTotal/cbc:LineExtensionAmount")
    tax_exclusive = amount("cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount")
    tax_inclusive = amount("cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount")
    tax = amount("cac:TaxTotal/cbc:TaxAmount")
    if line_sum != net:
        problems.append(f"BR-CO-10: the lines add up to {line_sum}, the document says {net}")
    if tax_exclusive != net:
        problems.append(f"BR-CO-13: the total without VAT {tax_exclusive} is not the lines' {net}")
    if tax_inclusive != tax_exclusive + tax:
        problems.append(f"BR-CO-15: the total with VAT {tax_inclusive} is not {tax_exclusive} + {tax}")
    payable = amount("cac:LegalMonetaryTotal/cbc:PayableAmount")
    if payable != tax_inclusive - amount("cac:LegalMonetaryTotal/cbc:PrepaidAmount"):
        problems.append(f"BR-CO-16: the amount due {payable} is not the total with VAT less what was paid")

    by_line: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in lines:
        category = line.find("cac:Item/cac:ClassifiedTaxCategory", ns)
        key = (category.findtext("cbc:ID", namespaces=ns), category.findtext("cbc:Percent", default="", namespaces=ns))
        by_line[key] += Decimal(line.findtext("cbc:LineExtensionAmount", namespaces=ns))
    subtotals = root.findall("cac:TaxTotal/cac:TaxSubtotal", ns)
    if _sum(subtotal.find("cbc:TaxAmount", ns) for subtotal in subtotals) != tax:
        problems.append(f"BR-CO-14: the VAT breakdown does not add up to the VAT total {tax}")
    breakdown = {}
    for subtotal in subtotals:
        category = subtotal.find("cac:TaxCategory", ns)
        code = category.findtext("cbc:ID", namespaces=ns)
        percent = category.findtext("cbc:Percent", default="", namespaces=ns)
        taxable = Decimal(subtotal.findtext("cbc:TaxableAmount", namespaces=ns))
        group_tax = Decimal(subtotal.findtext("cbc:TaxAmount", namespaces=ns))
        breakdown[(code, percent)] = taxable
        if taxable != by_line.get((code, percent), ZERO):
            problems.append(
                f"BR-{code}-08: the {code} {percent or '-'} % breakdown's taxable amount {taxable} is not "
                f"its lines' {by_line.get((code, percent), ZERO)}"
            )
        expected = round_amount(taxable * Decimal(percent or 0) / 100)
        if abs(group_tax - expected) >= 1:
            problems.append(f"BR-CO-17: the {code} {percent or '-'} % tax {group_tax} is not {expected}")
        reason = category.findtext("cbc:TaxExemptionReason", namespaces=ns) or category.findtext(
            "cbc:TaxExemptionReasonCode", namespaces=ns
        )
        if code in {"E", "AE", "K", "G", "O"} and not reason:
            problems.append(f"BR-{code}-10: the {code} breakdown gives no exemption reason")
    for key in set(by_line) - set(breakdown):
        problems.append(f"BR-CO-18: the lines of category {key[0]} at {key[1] or '-'} % have no VAT breakdown")
    categories = {code for code, _ in by_line}
    if "O" in categories and len(categories) > 1:
        problems.append("BR-O-11: category O cannot be beside another category on one document")
    seller_vat = text("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID")
    if categories & {"S", "Z", "E", "AE", "K", "G"} and not seller_vat:
        problems.append("BR-S-02: the seller's VAT identifier is missing")
    buyer_vat = text("cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID")
    buyer_registration = text("cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID")
    if "AE" in categories and not (buyer_vat or buyer_registration):
        problems.append("BR-AE-02: reverse charge needs the buyer's VAT identifier")
    if "K" in categories and not buyer_vat:
        problems.append("BR-IC-02: an intra-community supply needs the buyer's VAT identifier")
    return problems
