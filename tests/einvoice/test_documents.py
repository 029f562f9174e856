"""E-invoices in both syntaxes, UBL (ledger/einvoice/ubl.py) and CII (ledger/einvoice/cii.py), checked by the
official EN 16931 rules (tests/einvoice/en16931/), and their amounts read back with an XML parser against the
invoice's or credit note's."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.einvoice.cii import credit_note_cii, invoice_cii
from ledger.einvoice.ubl import CAC, CBC, credit_note_ubl, invoice_ubl
from ledger.models import CreditNote, Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import credit_note_issue, invoice_create_draft, invoice_issue
from ledger.vat import VatCategory
from orders.services.orders import order_create
from orders.tests.factories import OrderTypeFactory
from usage.models import Upload
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
NS = {"cac": CAC, "cbc": CBC}
RAM = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


def customer_in(country: str, **fields):
    defaults = {
        "street_line1": "Keizersgracht 1",
        "postal_code": "1015 CJ",
        "city": "Amsterdam",
        "country": country,
    }
    return CustomerFactory(**{**defaults, **fields})


def import_usage(customer, service, events):
    upload = usage_import_events(
        actor=None,
        events=[
            {"serviceName": service.code, "clientId": customer.client_id, "quantity": str(q), "serviceTime": t}
            for q, t in events
        ],
        received_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert upload.status == Upload.Status.IMPORTED, upload.errors


def priced_usage(customer, *, usage=True, service=None) -> None:
    """October's prices and usage for `customer`, nothing billed yet. Fee 100.00 a month, 1,000 checks included,
    0.05 until the 15th and 0.04 after: 1,200 checks on the 12th and 600 on the 20th are 1,000 free, 200 at 0.05 and
    600 at 0.04 (DESIGN.md)."""
    service = service or ServiceFactory(code=f"kyc_{customer.client_id.lower()}", name="KYC check", unit_code="C62")
    PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.05"),
        included_quantity=D("1000"),
        monthly_fee=D("100.00"),
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 10, 15),
    )
    PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.04"),
        included_quantity=D("1000"),
        monthly_fee=D("100.00"),
        valid_from=date(2026, 10, 16),
    )
    if usage:
        import_usage(customer, service, [(1200, "2026-10-12T10:00:00Z"), (600, "2026-10-20T10:00:00Z")])


def usage_invoice(customer, *, usage=True, issue=True) -> Invoice:
    """Issued October invoice of `priced_usage`."""
    priced_usage(customer, usage=usage)
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    return invoice_issue(actor=None, invoice=invoice, send=False) if issue else invoice


def pdf_of(document) -> bytes:
    with document.pdf.open("rb") as pdf:
        return pdf.read()


def both(document, pdf: bytes | None = None) -> dict[str, bytes]:
    """The invoice's or credit note's e-invoice in each syntax."""
    if isinstance(document, CreditNote):
        return {"ubl": credit_note_ubl(document, pdf=pdf), "cii": credit_note_cii(document)}
    return {"ubl": invoice_ubl(document, pdf=pdf), "cii": invoice_cii(document)}


def ubl_amounts(root) -> dict:
    totals = root.find("cac:LegalMonetaryTotal", NS)
    lines = root.findall("cac:InvoiceLine", NS) or root.findall("cac:CreditNoteLine", NS)
    return {
        "subtotal": D(totals.findtext("cbc:TaxExclusiveAmount", namespaces=NS)),
        "tax": D(root.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=NS)),
        "total": D(totals.findtext("cbc:TaxInclusiveAmount", namespaces=NS)),
        "payable": D(totals.findtext("cbc:PayableAmount", namespaces=NS)),
        "lines": [D(line.findtext("cbc:LineExtensionAmount", namespaces=NS)) for line in lines],
        "categories": [line.findtext("cac:Item/cac:ClassifiedTaxCategory/cbc:ID", namespaces=NS) for line in lines],
        "breakdown": {
            subtotal.findtext("cac:TaxCategory/cbc:ID", namespaces=NS): (
                D(subtotal.findtext("cbc:TaxableAmount", namespaces=NS)),
                D(subtotal.findtext("cbc:TaxAmount", namespaces=NS)),
            )
            for subtotal in root.iterfind("cac:TaxTotal/cac:TaxSubtotal", NS)
        },
        "currencies": {element.get("currencyID") for element in root.iter() if element.get("currencyID")},
        "preceding": root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS),
        "type": root.findtext("cbc:InvoiceTypeCode", namespaces=NS)
        or root.findtext("cbc:CreditNoteTypeCode", namespaces=NS),
    }


def cii_amounts(root) -> dict:
    settlement = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement", RAM)
    totals = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", RAM)
    lines = root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", RAM)
    line_settlement = "ram:SpecifiedLineTradeSettlement/"
    return {
        "subtotal": D(totals.findtext("ram:TaxBasisTotalAmount", namespaces=RAM)),
        "tax": D(totals.findtext("ram:TaxTotalAmount", namespaces=RAM)),
        "total": D(totals.findtext("ram:GrandTotalAmount", namespaces=RAM)),
        "payable": D(totals.findtext("ram:DuePayableAmount", namespaces=RAM)),
        "lines": [
            D(
                line.findtext(
                    line_settlement + "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
                    namespaces=RAM,
                )
            )
            for line in lines
        ],
        "categories": [
            line.findtext(line_settlement + "ram:ApplicableTradeTax/ram:CategoryCode", namespaces=RAM) for line in lines
        ],
        "breakdown": {
            tax.findtext("ram:CategoryCode", namespaces=RAM): (
                D(tax.findtext("ram:BasisAmount", namespaces=RAM)),
                D(tax.findtext("ram:CalculatedAmount", namespaces=RAM)),
            )
            for tax in settlement.iterfind("ram:ApplicableTradeTax", RAM)
        },
        "currencies": {
            settlement.findtext("ram:InvoiceCurrencyCode", namespaces=RAM),
            *(element.get("currencyID") for element in root.iter() if element.get("currencyID")),
        },
        "preceding": settlement.findtext("ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=RAM),
        "type": root.findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=RAM),
    }


def amounts(xml: bytes) -> dict:
    """The document's amounts, categories and references, read with an XML parser, whichever its syntax."""
    root = etree.fromstring(xml)
    return cii_amounts(root) if root.tag == f"{{{RAM['rsm']}}}CrossIndustryInvoice" else ubl_amounts(root)


def assert_same_amounts(xml: bytes, invoice: Invoice) -> dict:
    found = amounts(xml)
    items = list(invoice.items.all())
    assert (found["subtotal"], found["tax"], found["total"]) == (invoice.subtotal, invoice.tax, invoice.total)
    assert found["payable"] == invoice.total
    assert found["lines"] == [item.amount for item in items]
    assert found["categories"] == [item.vat_category for item in items]
    assert found["currencies"] == {invoice.currency}
    assert found["type"] == "380"
    return found


def valid_in_both(en16931, document, pdf: bytes | None = None) -> dict[str, bytes]:
    documents = both(document, pdf)
    for syntax, xml in documents.items():
        assert (syntax, en16931(xml)) == (syntax, [])
    return documents


@pytest.mark.parametrize("currency", ["EUR", "GBP", "USD"])
def test_usage_invoice_with_fee_included_and_overage_at_two_prices_is_valid(en16931, currency):
    customer = customer_in("NL", currency=currency, vat_id="NL004495445B01")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    items = list(invoice.items.all())
    assert sorted((item.source, item.amount) for item in items) == [
        ("fee", D("100.00")),
        ("included", D("0.00")),
        ("usage", D("10.00")),
        ("usage", D("24.00")),
    ]
    assert {item.vat_category for item in items} == {VatCategory.STANDARD}
    assert invoice.total == D("160.80")

    documents = valid_in_both(en16931, invoice, pdf_of(invoice))

    for xml in documents.values():
        found = assert_same_amounts(xml, invoice)
        assert found["breakdown"] == {"S": (D("134.00"), D("26.80"))}
    ubl = etree.fromstring(documents["ubl"])
    assert ubl.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == invoice.number
    assert ubl.findtext("cbc:DueDate", namespaces=NS) == invoice.due_date.isoformat()
    assert ubl.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) == "2026-10-31"
    assert ubl.find("cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", NS) is not None
    settlement = etree.fromstring(documents["cii"]).find(
        "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement", RAM
    )
    assert settlement.findtext("ram:PaymentReference", namespaces=RAM) == invoice.number
    due = settlement.findtext("ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", namespaces=RAM)
    assert due == f"{invoice.due_date:%Y%m%d}"
    end = settlement.findtext("ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", namespaces=RAM)
    assert end == "20261031"


def test_tax_exempt_customer_is_e_with_its_reason(en16931):
    customer = customer_in("NL")
    billing_config_update(
        actor=None,
        customer=customer,
        tax_exempt=True,
        tax_exempt_reason="Financial services exempt under Article 135(1)",
        tax_exemption_code="VATEX-EU-135-1",
    )
    invoice = usage_invoice(customer)

    documents = valid_in_both(en16931, invoice)

    for xml in documents.values():
        found = assert_same_amounts(xml, invoice)
        assert found["breakdown"] == {"E": (D("134.00"), D("0.00"))}
    reason = "Financial services exempt under Article 135(1)"
    ubl_reason = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason"
    assert etree.fromstring(documents["ubl"]).findtext(ubl_reason, namespaces=NS) == reason
    cii_reason = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    cii = etree.fromstring(documents["cii"])
    assert cii.findtext(cii_reason + "ram:ExemptionReason", namespaces=RAM) == reason
    assert cii.findtext(cii_reason + "ram:ExemptionReasonCode", namespaces=RAM) == "VATEX-EU-135-1"


def test_eu_customer_with_a_vat_id_in_another_country_is_reverse_charge(en16931):
    customer = customer_in("DE", vat_id="DE136695976", city="Berlin", postal_code="10117")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0"))
    invoice = usage_invoice(customer)
    assert {item.vat_category for item in invoice.items.all()} == {VatCategory.REVERSE_CHARGE}

    documents = valid_in_both(en16931, invoice)

    for xml in documents.values():
        found = assert_same_amounts(xml, invoice)
        assert found["breakdown"] == {"AE": (D("134.00"), D("0.00"))}
    buyer_vat = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/"
    buyer_vat += "ram:SpecifiedTaxRegistration/ram:ID"
    assert etree.fromstring(documents["cii"]).findtext(buyer_vat, namespaces=RAM) == "DE136695976"


def test_zero_usage_fee_only_invoice(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer, usage=False)
    assert [item.amount for item in invoice.items.all() if item.amount] == [D("100.00")]
    assert invoice.total == D("120.00")

    for xml in valid_in_both(en16931, invoice).values():
        assert_same_amounts(xml, invoice)


def assert_credit_note(xml: bytes, note: CreditNote) -> dict:
    found = amounts(xml)
    assert (found["subtotal"], found["tax"], found["total"]) == (note.subtotal, note.tax, note.total)
    assert found["payable"] == note.total
    assert sum(found["lines"]) == note.subtotal
    assert sum(tax for _, tax in found["breakdown"].values()) == note.tax
    assert (found["type"], found["preceding"]) == ("381", note.invoice.number)
    return found


def test_partial_and_full_credit_notes_refer_to_their_invoice(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    partial = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("50.00"))
    rest = credit_note_issue(actor=None, invoice=invoice, reason="Contract ended")
    assert rest.full
    assert (partial.subtotal, partial.tax, rest.subtotal, rest.tax) == (D("41.67"), D("8.33"), D("92.33"), D("18.47"))

    for note in (partial, rest):
        for xml in valid_in_both(en16931, note, pdf_of(note)).values():
            found = assert_credit_note(xml, note)
            assert found["breakdown"] == {"S": (note.subtotal, note.tax)}


def test_first_full_credit_note_repeats_the_invoice_lines(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    note = credit_note_issue(actor=None, invoice=invoice, reason="Billed in error")

    for xml in valid_in_both(en16931, note).values():
        found = assert_credit_note(xml, note)
        assert found["lines"] == [item.amount for item in invoice.items.all()]
        assert (found["subtotal"], found["tax"], found["total"]) == (invoice.subtotal, invoice.tax, invoice.total)


def order_invoice(finance_user) -> Invoice:
    """An issued order invoice: fee 1,000.00 at 20 % and a base charge (disbursement) of 120.00: 1,320.00."""
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    order_type = OrderTypeFactory(name="Company formation", default_fee=D("1000.00"), default_base_charge=D("120.00"))
    order = order_create(actor=finance_user, customer=customer, order_type=order_type)
    return invoice_issue(actor=None, invoice=order.invoice, send=False)


def test_order_invoice_with_a_disbursement_line(en16931, finance_user):
    invoice = order_invoice(finance_user)
    items = list(invoice.items.all())
    assert [(item.source, item.vat_category, item.vat_exemption_code) for item in items] == [
        ("order_fee", "S", ""),
        ("disbursement", "E", "VATEX-EU-79-C"),
    ]
    assert invoice.total == D("1320.00")

    for xml in valid_in_both(en16931, invoice).values():
        found = assert_same_amounts(xml, invoice)
        assert found["breakdown"] == {"S": (D("1000.00"), D("200.00")), "E": (D("120.00"), D("0.00"))}


def test_credit_notes_on_an_order_invoice_take_the_taxed_fee_first_as_the_ledger_does(en16931, finance_user):
    invoice = order_invoice(finance_user)
    partial = credit_note_issue(actor=None, invoice=invoice, reason="Partly refunded", amount=D("60.00"))
    rest = credit_note_issue(actor=None, invoice=invoice, reason="Order cancelled")

    for xml in valid_in_both(en16931, partial).values():
        found = assert_credit_note(xml, partial)
        assert (found["categories"], found["breakdown"]) == (["S"], {"S": (D("50.00"), D("10.00"))})
    for xml in valid_in_both(en16931, rest).values():
        found = assert_credit_note(xml, rest)
        assert found["categories"] == ["S", "E"]
        assert found["breakdown"] == {"S": (D("950.00"), D("190.00")), "E": (D("120.00"), D("0.00"))}


def test_the_validator_catches_a_line_amount_off_by_a_cent(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    documents = both(invoice)
    ubl = etree.fromstring(documents["ubl"])
    ubl_amount = ubl.find("cac:InvoiceLine/cbc:LineExtensionAmount", NS)
    cii = etree.fromstring(documents["cii"])
    cii_amount = cii.find(".//ram:LineTotalAmount", RAM)
    for amount in (ubl_amount, cii_amount):
        amount.text = str(D(amount.text) + D("0.01"))

    for root in (ubl, cii):
        fatal = en16931(etree.tostring(root))
        assert any(rule.startswith("BR-CO-10") for rule in fatal), fatal
