"""UBL 2.1 Invoice and CreditNote following Peppol BIS Billing 3.0: the business terms (terms.py) in UBL's
elements, and the same documents read back for the checks made before one is stored (rules.py, schema.py)."""

import base64
from decimal import Decimal

from lxml import etree

from ledger.einvoice import rules
from ledger.einvoice.schema import UBL_CREDIT_NOTE, UBL_INVOICE, schema_problems
from ledger.einvoice.terms import Document, Line, Party, credit_note_terms, invoice_terms
from ledger.models import CreditNote, Invoice
from ledger.vat import VatCategory

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS = {"cac": CAC, "cbc": CBC}


def _cac(parent, name: str):
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent, name: str, text, **attributes):
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", **attributes)
    element.text = str(text)
    return element


def _amount(parent, name: str, value: Decimal, currency: str):
    return _cbc(parent, name, f"{value:.2f}", currencyID=currency)


def plain_decimal(value: Decimal) -> str:
    """Quantities and prices as plain decimals, without trailing zeros or an exponent."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(rate: Decimal) -> str:
    return f"{rate * 100:.2f}"


def _address(parent, party: Party) -> None:
    address = _cac(parent, "PostalAddress")
    if party.street:
        _cbc(address, "StreetName", party.street)
    if party.more:
        _cbc(address, "AdditionalStreetName", party.more)
    if party.city:
        _cbc(address, "CityName", party.city)
    if party.postal_code:
        _cbc(address, "PostalZone", party.postal_code)
    if party.line3:
        _cbc(_cac(address, "AddressLine"), "Line", party.line3)
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)


def _tax_scheme(parent) -> None:
    _cbc(_cac(parent, "TaxScheme"), "ID", "VAT")


def _party(root, role: str, party: Party) -> None:
    element = _cac(_cac(root, role), "Party")
    if party.endpoint_id:
        _cbc(element, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.identifier:
        _cbc(_cac(element, "PartyIdentification"), "ID", party.identifier)
    if party.trading_name:
        _cbc(_cac(element, "PartyName"), "Name", party.trading_name)
    _address(element, party)
    if party.vat_id:
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _tax_scheme(tax_scheme)
    legal = _cac(element, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.legal_name)
    if party.registration_id:
        _cbc(legal, "CompanyID", party.registration_id)
    if party.email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", party.email)


def _tax_category(parent, name: str, *, category: str, rate: Decimal, reason: str = "", code: str = "") -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category)
    if category != VatCategory.NOT_SUBJECT:  # BR-O-05, BR-O-09: no rate for O
        _cbc(element, "Percent", percent(rate))
    if code:
        _cbc(element, "TaxExemptionReasonCode", code)
    if reason:
        _cbc(element, "TaxExemptionReason", reason)
    _tax_scheme(element)


def _line(root, tag: str, quantity_tag: str, number: int, line: Line, currency: str) -> None:
    element = _cac(root, tag)
    _cbc(element, "ID", number)
    _cbc(element, quantity_tag, plain_decimal(line.quantity), unitCode=line.unit_code)
    _amount(element, "LineExtensionAmount", line.amount, currency)
    item = _cac(element, "Item")
    _cbc(item, "Name", line.name)
    _tax_category(item, "ClassifiedTaxCategory", category=line.vat_category, rate=line.tax_rate)
    price = _cac(element, "Price")
    _cbc(price, "PriceAmount", plain_decimal(line.unit_price), currencyID=currency)


def ubl_xml(document: Document) -> bytes:
    """The document as UBL 2.1 (an Invoice, or a CreditNote when it is one)."""
    credit = document.credit
    root_ns = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}", nsmap={None: root_ns, "cac": CAC, "cbc": CBC}
    )
    currency = document.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", document.number)
    _cbc(root, "IssueDate", document.issue_date.isoformat())
    if document.due_date is not None:
        _cbc(root, "DueDate", document.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", document.type_code)
    if document.note:
        _cbc(root, "Note", document.note)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", document.buyer_reference)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", document.period_start.isoformat())
    _cbc(period, "EndDate", document.period_end.isoformat())
    if document.preceding_number:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", document.preceding_number)
        if document.preceding_date:
            _cbc(reference, "IssueDate", document.preceding_date.isoformat())
    if document.pdf is not None:
        attachment = _cac(root, "AdditionalDocumentReference")
        _cbc(attachment, "ID", document.number)
        _cbc(attachment, "DocumentDescription", "The document as PDF")
        _cbc(
            _cac(attachment, "Attachment"),
            "EmbeddedDocumentBinaryObject",
            base64.b64encode(document.pdf).decode("ascii"),
            mimeCode="application/pdf",
            filename=document.pdf_name,
        )
    _party(root, "AccountingSupplierParty", document.seller)
    _party(root, "AccountingCustomerParty", document.buyer)
    if document.delivery_country:  # BR-IC-12: the country delivered to
        address = _cac(_cac(_cac(root, "Delivery"), "DeliveryLocation"), "Address")
        _cbc(_cac(address, "Country"), "IdentificationCode", document.delivery_country)
    if document.payment is not None:
        payment = document.payment
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", payment.means_code)
        _cbc(means, "PaymentID", payment.reference)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", payment.iban)
        _cbc(account, "Name", payment.account_name)
        if payment.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", payment.bic)
        if payment.terms:
            _cbc(_cac(root, "PaymentTerms"), "Note", payment.terms)
    tax_total = _cac(root, "TaxTotal")
    _amount(tax_total, "TaxAmount", document.tax, currency)
    for group in document.breakdown:
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
    _amount(totals, "LineExtensionAmount", document.subtotal, currency)
    _amount(totals, "TaxExclusiveAmount", document.subtotal, currency)
    _amount(totals, "TaxInclusiveAmount", document.total, currency)
    if document.payable != document.total:
        _amount(totals, "PrepaidAmount", document.total - document.payable, currency)
    _amount(totals, "PayableAmount", document.payable, currency)
    line_tag, quantity_tag = ("CreditNoteLine", "CreditedQuantity") if credit else ("InvoiceLine", "InvoicedQuantity")
    for number, line in enumerate(document.lines, start=1):
        _line(root, line_tag, quantity_tag, number, line, currency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_ubl(invoice: Invoice, *, pdf: bytes | None = None) -> bytes:
    """The issued invoice as a UBL 2.1 Invoice (Peppol BIS Billing 3.0), its PDF embedded when given."""
    return ubl_xml(invoice_terms(invoice, pdf=pdf))


def credit_note_ubl(note: CreditNote, *, pdf: bytes | None = None) -> bytes:
    """The credit note as a UBL 2.1 CreditNote referring to its invoice (BT-25), its PDF embedded when given."""
    return ubl_xml(credit_note_terms(note, pdf=pdf))


def read(root: etree._Element) -> rules.Reading:
    """The document read back for the checks (rules.py)."""

    def text(path: str, element=root) -> str:
        return (element.findtext(path, namespaces=NS) or "").strip()

    supplier = "cac:AccountingSupplierParty/cac:Party/"
    customer = "cac:AccountingCustomerParty/cac:Party/"
    mandatory = {
        "BR-01": "cbc:CustomizationID",
        "BR-02": "cbc:ID",
        "BR-03": "cbc:IssueDate",
        "BR-05": "cbc:DocumentCurrencyCode",
        "BR-06": supplier + "cac:PartyLegalEntity/cbc:RegistrationName",
        "BR-07": customer + "cac:PartyLegalEntity/cbc:RegistrationName",
        "BR-09": supplier + "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
        "BR-11": customer + "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
    }
    lines = root.findall("cac:InvoiceLine", NS) or root.findall("cac:CreditNoteLine", NS)
    groups = []
    for subtotal in root.iterfind("cac:TaxTotal/cac:TaxSubtotal", NS):
        category = subtotal.find("cac:TaxCategory", NS)
        groups.append(
            rules.TaxGroup(
                category=text("cbc:ID", category),
                percent=text("cbc:Percent", category),
                taxable=rules.decimal(text("cbc:TaxableAmount", subtotal)),
                tax=rules.decimal(text("cbc:TaxAmount", subtotal)),
                reason=text("cbc:TaxExemptionReason", category) or text("cbc:TaxExemptionReasonCode", category),
            )
        )
    totals = "cac:LegalMonetaryTotal/"
    return rules.Reading(
        mandatory={rule: (path.split("/")[-1], text(path)) for rule, path in mandatory.items()},
        lines=[
            (
                text("cac:Item/cac:ClassifiedTaxCategory/cbc:ID", line),
                text("cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", line),
                rules.decimal(text("cbc:LineExtensionAmount", line)),
            )
            for line in lines
        ],
        net=rules.decimal(text(totals + "cbc:LineExtensionAmount")),
        tax_exclusive=rules.decimal(text(totals + "cbc:TaxExclusiveAmount")),
        tax_inclusive=rules.decimal(text(totals + "cbc:TaxInclusiveAmount")),
        tax=rules.decimal(text("cac:TaxTotal/cbc:TaxAmount")),
        prepaid=rules.decimal(text(totals + "cbc:PrepaidAmount")),
        payable=rules.decimal(text(totals + "cbc:PayableAmount")),
        groups=groups,
        seller_vat=text(supplier + "cac:PartyTaxScheme/cbc:CompanyID"),
        buyer_vat=text(customer + "cac:PartyTaxScheme/cbc:CompanyID"),
        buyer_registration=text(customer + "cac:PartyLegalEntity/cbc:CompanyID"),
    )


def ubl_problems(xml: bytes) -> list[str]:
    """The rules the UBL document breaks: its XML schema (UBL 2.1), then the EN 16931 checks of rules.py."""
    root = etree.fromstring(xml)
    kind = UBL_CREDIT_NOTE if root.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote" else UBL_INVOICE
    return schema_problems(root, kind) + rules.problems(read(root))
