"""UN/CEFACT Cross Industry Invoice (D16B) in the Factur-X EN 16931 profile: the business terms (terms.py) in
CII's elements, the Factur-X PDF that carries it, and the same documents read back for the checks made before one
is stored (rules.py, schema.py).

A credit note is a CII document of type 381 with positive amounts and the invoice it corrects (BT-25, BT-26). The
PDF is not embedded in the XML as in UBL: in Factur-X the XML is embedded in the PDF (`facturx_pdf`).
"""

from decimal import Decimal
from io import BytesIO

import facturx
from lxml import etree
from pypdf import PdfReader

from ledger.einvoice import rules
from ledger.einvoice.pdfa import pdfa3
from ledger.einvoice.schema import CII_EN16931, schema_problems
from ledger.einvoice.terms import Document, Line, Party, credit_note_terms, invoice_terms
from ledger.einvoice.ubl import percent, plain_decimal
from ledger.models import CreditNote, Invoice
from ledger.vat import VatCategory

GUIDELINE_ID = "urn:cen.eu:en16931:2017"  # BT-24: the Factur-X EN 16931 (Comfort) profile
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NS = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
VAT_REGISTRATION = "VA"  # the scheme of a VAT identifier (BT-31, BT-48)


def _rsm(parent, name: str):
    return etree.SubElement(parent, f"{{{RSM}}}{name}")


def _ram(parent, name: str, text=None, **attributes):
    element = etree.SubElement(parent, f"{{{RAM}}}{name}", **attributes)
    if text is not None:
        element.text = str(text)
    return element


def _amount(parent, name: str, value: Decimal, currency: str | None = None):
    return _ram(parent, name, f"{value:.2f}", **({"currencyID": currency} if currency else {}))


def _date(parent, name: str, day, namespace: str = UDT) -> None:
    element = etree.SubElement(_ram(parent, name), f"{{{namespace}}}DateTimeString", format="102")
    element.text = f"{day:%Y%m%d}"


def _party(parent, role: str, party: Party) -> None:
    element = _ram(parent, role)
    if party.identifier:
        _ram(element, "ID", party.identifier)
    _ram(element, "Name", party.legal_name)
    if party.registration_id or party.trading_name:
        legal = _ram(element, "SpecifiedLegalOrganization")
        if party.registration_id:
            _ram(legal, "ID", party.registration_id)
        if party.trading_name:
            _ram(legal, "TradingBusinessName", party.trading_name)
    if party.email:
        _ram(_ram(_ram(element, "DefinedTradeContact"), "EmailURIUniversalCommunication"), "URIID", party.email)
    address = _ram(element, "PostalTradeAddress")
    if party.postal_code:
        _ram(address, "PostcodeCode", party.postal_code)
    if party.street:
        _ram(address, "LineOne", party.street)
    if party.more:
        _ram(address, "LineTwo", party.more)
    if party.line3:
        _ram(address, "LineThree", party.line3)
    if party.city:
        _ram(address, "CityName", party.city)
    _ram(address, "CountryID", party.country)
    if party.endpoint_id:
        _ram(_ram(element, "URIUniversalCommunication"), "URIID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.vat_id:
        _ram(_ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID=VAT_REGISTRATION)


def _line(parent, number: int, line: Line) -> None:
    element = _ram(parent, "IncludedSupplyChainTradeLineItem")
    _ram(_ram(element, "AssociatedDocumentLineDocument"), "LineID", number)
    _ram(_ram(element, "SpecifiedTradeProduct"), "Name", line.name)
    price = _ram(_ram(element, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
    _ram(price, "ChargeAmount", plain_decimal(line.unit_price))
    delivery = _ram(element, "SpecifiedLineTradeDelivery")
    _ram(delivery, "BilledQuantity", plain_decimal(line.quantity), unitCode=line.unit_code)
    settlement = _ram(element, "SpecifiedLineTradeSettlement")
    tax = _ram(settlement, "ApplicableTradeTax")
    _ram(tax, "TypeCode", "VAT")
    _ram(tax, "CategoryCode", line.vat_category)
    if line.vat_category != VatCategory.NOT_SUBJECT:  # BR-O-05: no rate for O
        _ram(tax, "RateApplicablePercent", percent(line.tax_rate))
    _amount(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", line.amount)


def cii_xml(document: Document) -> bytes:
    """The document as a Cross Industry Invoice (type 380, or 381 for a credit note)."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
    context = _rsm(root, "ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)
    header = _rsm(root, "ExchangedDocument")
    _ram(header, "ID", document.number)
    _ram(header, "TypeCode", document.type_code)
    _date(header, "IssueDateTime", document.issue_date)
    if document.note:
        _ram(_ram(header, "IncludedNote"), "Content", document.note)
    transaction = _rsm(root, "SupplyChainTradeTransaction")
    for number, line in enumerate(document.lines, start=1):
        _line(transaction, number, line)

    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", document.buyer_reference)
    _party(agreement, "SellerTradeParty", document.seller)
    _party(agreement, "BuyerTradeParty", document.buyer)
    delivery = _ram(transaction, "ApplicableHeaderTradeDelivery")
    if document.delivery_country:  # BR-IC-12: the country delivered to
        _ram(_ram(_ram(delivery, "ShipToTradeParty"), "PostalTradeAddress"), "CountryID", document.delivery_country)

    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    payment = document.payment
    if payment is not None:
        _ram(settlement, "PaymentReference", payment.reference)
    _ram(settlement, "InvoiceCurrencyCode", document.currency)
    if payment is not None:
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", payment.means_code)
        account = _ram(means, "PayeePartyCreditorFinancialAccount")
        _ram(account, "IBANID", payment.iban)
        _ram(account, "AccountName", payment.account_name)
        if payment.bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.bic)
    for group in document.breakdown:
        tax = _ram(settlement, "ApplicableTradeTax")
        _amount(tax, "CalculatedAmount", group.tax)
        _ram(tax, "TypeCode", "VAT")
        if group.exemption_reason:
            _ram(tax, "ExemptionReason", group.exemption_reason)
        _amount(tax, "BasisAmount", group.taxable)
        _ram(tax, "CategoryCode", group.category)
        if group.exemption_code:
            _ram(tax, "ExemptionReasonCode", group.exemption_code)
        if group.category != VatCategory.NOT_SUBJECT:
            _ram(tax, "RateApplicablePercent", percent(group.rate))
    period = _ram(settlement, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", document.period_start)
    _date(period, "EndDateTime", document.period_end)
    if document.due_date is not None or (payment is not None and payment.terms):
        terms = _ram(settlement, "SpecifiedTradePaymentTerms")
        if payment is not None and payment.terms:
            _ram(terms, "Description", payment.terms)
        if document.due_date is not None:
            _date(terms, "DueDateDateTime", document.due_date)
    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _amount(totals, "LineTotalAmount", document.subtotal)
    _amount(totals, "TaxBasisTotalAmount", document.subtotal)
    _amount(totals, "TaxTotalAmount", document.tax, document.currency)
    _amount(totals, "GrandTotalAmount", document.total)
    if document.payable != document.total:
        _amount(totals, "TotalPrepaidAmount", document.total - document.payable)
    _amount(totals, "DuePayableAmount", document.payable)
    if document.preceding_number:
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", document.preceding_number)
        if document.preceding_date:
            _date(reference, "FormattedIssueDateTime", document.preceding_date, namespace=QDT)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_cii(invoice: Invoice) -> bytes:
    """The issued invoice as a Cross Industry Invoice, type 380."""
    return cii_xml(invoice_terms(invoice))


def credit_note_cii(note: CreditNote) -> bytes:
    """The credit note as a Cross Industry Invoice, type 381, referring to its invoice."""
    return cii_xml(credit_note_terms(note))


def facturx_pdf(pdf: bytes, xml: bytes, *, lang: str = "en-GB") -> bytes:
    """The PDF with the CII XML embedded as factur-x.xml, a PDF/A-3 file: factur-x's generate_from_binary
    attaches the XML (checking it against the Factur-X EN 16931 schema again, and raising when it breaks it) and
    writes the XMP metadata that declares PDF/A-3, under the PDF's own title and author; pdfa.pdfa3 adds the sRGB
    output intent and the metadata PDF/A asks for besides. The fonts are embedded already (ledger/pdf.py). Only
    the file's catalogue, metadata and attachments change; the pages are the same."""
    info = PdfReader(BytesIO(pdf)).metadata or {}
    title, author = info.get("/Title", ""), info.get("/Author", "")
    metadata = {"title": title, "author": author, "subject": f"{title} from {author}, with its Factur-X XML"}
    return pdfa3(
        facturx.generate_from_binary(
            pdf, xml, flavor="factur-x", level=CII_EN16931, check_xsd=True, pdf_metadata=metadata, lang=lang
        )
    )


def read(root: etree._Element) -> rules.Reading:
    """The document read back for the checks (rules.py)."""

    def text(path: str, element=root) -> str:
        return (element.findtext(path, namespaces=NS) or "").strip()

    transaction = "rsm:SupplyChainTradeTransaction/"
    seller = transaction + "ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/"
    buyer = transaction + "ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/"
    settlement = transaction + "ram:ApplicableHeaderTradeSettlement/"
    totals = settlement + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    mandatory = {
        "BR-01": (
            "GuidelineSpecifiedDocumentContextParameter",
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        ),
        "BR-02": ("ID", "rsm:ExchangedDocument/ram:ID"),
        "BR-03": ("IssueDateTime", "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"),
        "BR-05": ("InvoiceCurrencyCode", settlement + "ram:InvoiceCurrencyCode"),
        "BR-06": ("seller's Name", seller + "ram:Name"),
        "BR-07": ("buyer's Name", buyer + "ram:Name"),
        "BR-09": ("seller's CountryID", seller + "ram:PostalTradeAddress/ram:CountryID"),
        "BR-11": ("buyer's CountryID", buyer + "ram:PostalTradeAddress/ram:CountryID"),
    }
    line_tax = "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/"
    lines = [
        (
            text(line_tax + "ram:CategoryCode", line),
            text(line_tax + "ram:RateApplicablePercent", line),
            rules.decimal(
                text(
                    "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
                    "ram:LineTotalAmount",
                    line,
                )
            ),
        )
        for line in root.iterfind(transaction + "ram:IncludedSupplyChainTradeLineItem", NS)
    ]
    groups = [
        rules.TaxGroup(
            category=text("ram:CategoryCode", tax),
            percent=text("ram:RateApplicablePercent", tax),
            taxable=rules.decimal(text("ram:BasisAmount", tax)),
            tax=rules.decimal(text("ram:CalculatedAmount", tax)),
            reason=text("ram:ExemptionReason", tax) or text("ram:ExemptionReasonCode", tax),
        )
        for tax in root.iterfind(settlement + "ram:ApplicableTradeTax", NS)
    ]
    grand_total = rules.decimal(text(totals + "ram:GrandTotalAmount"))
    tax_basis = rules.decimal(text(totals + "ram:TaxBasisTotalAmount"))
    return rules.Reading(
        mandatory={rule: (name, text(path)) for rule, (name, path) in mandatory.items()},
        lines=lines,
        net=rules.decimal(text(totals + "ram:LineTotalAmount")),
        tax_exclusive=tax_basis,
        tax_inclusive=grand_total,
        tax=rules.decimal(text(totals + "ram:TaxTotalAmount")),
        prepaid=rules.decimal(text(totals + "ram:TotalPrepaidAmount")),
        payable=rules.decimal(text(totals + "ram:DuePayableAmount")),
        groups=groups,
        seller_vat=text(seller + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        buyer_vat=text(buyer + "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        buyer_registration=text(buyer + "ram:SpecifiedLegalOrganization/ram:ID"),
    )


def cii_problems(xml: bytes) -> list[str]:
    """The rules the CII document breaks: its XML schema (Factur-X EN 16931), then the checks of rules.py."""
    root = etree.fromstring(xml)
    return schema_problems(root, CII_EN16931) + rules.problems(read(root))
