"""UBL e-invoices (ledger/einvoice/ubl.py) checked by the official EN 16931 rules (tests/einvoice/en16931/), and
their amounts read back with an XML parser against the invoice's."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from lxml import etree

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.einvoice.ubl import CAC, CBC, credit_note_ubl, invoice_ubl
from ledger.models import Invoice
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


def usage_invoice(customer, *, usage=True, issue=True) -> Invoice:
    """Issued October invoice. Fee 100.00 a month, 1,000 checks included, 0.05 until the 15th and 0.04 after:
    1,200 checks on the 12th and 600 on the 20th are 1,000 free, 200 at 0.05 and 600 at 0.04 (DESIGN.md)."""
    service = ServiceFactory(code=f"kyc_{customer.client_id.lower()}", name="KYC check", unit_code="C62")
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
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    return invoice_issue(actor=None, invoice=invoice, send=False) if issue else invoice


def pdf_of(document) -> bytes:
    with document.pdf.open("rb") as pdf:
        return pdf.read()


def amounts(xml: bytes) -> dict:
    root = etree.fromstring(xml)
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
    }


def assert_same_amounts(xml: bytes, invoice: Invoice) -> dict:
    found = amounts(xml)
    items = list(invoice.items.all())
    assert (found["subtotal"], found["tax"], found["total"]) == (invoice.subtotal, invoice.tax, invoice.total)
    assert found["payable"] == invoice.total
    assert found["lines"] == [item.amount for item in items]
    assert found["categories"] == [item.vat_category for item in items]
    assert found["currencies"] == {invoice.currency}
    return found


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

    xml = invoice_ubl(invoice, pdf=pdf_of(invoice))

    assert en16931(xml) == []
    found = assert_same_amounts(xml, invoice)
    assert found["breakdown"] == {"S": (D("134.00"), D("26.80"))}
    assert invoice.total == D("160.80")
    root = etree.fromstring(xml)
    assert root.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == invoice.number
    assert root.findtext("cbc:DueDate", namespaces=NS) == invoice.due_date.isoformat()
    assert root.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) == "2026-10-31"
    assert root.find("cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", NS) is not None


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

    xml = invoice_ubl(invoice)

    assert en16931(xml) == []
    found = assert_same_amounts(xml, invoice)
    assert found["breakdown"] == {"E": (D("134.00"), D("0.00"))}
    reason = etree.fromstring(xml).findtext(
        "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason", namespaces=NS
    )
    assert reason == "Financial services exempt under Article 135(1)"


def test_eu_customer_with_a_vat_id_in_another_country_is_reverse_charge(en16931):
    customer = customer_in("DE", vat_id="DE136695976", city="Berlin", postal_code="10117")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0"))
    invoice = usage_invoice(customer)
    assert {item.vat_category for item in invoice.items.all()} == {VatCategory.REVERSE_CHARGE}

    xml = invoice_ubl(invoice)

    assert en16931(xml) == []
    found = assert_same_amounts(xml, invoice)
    assert found["breakdown"] == {"AE": (D("134.00"), D("0.00"))}


def test_zero_usage_fee_only_invoice(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer, usage=False)
    assert [item.amount for item in invoice.items.all() if item.amount] == [D("100.00")]

    xml = invoice_ubl(invoice)

    assert en16931(xml) == []
    assert_same_amounts(xml, invoice)
    assert invoice.total == D("120.00")


def test_partial_and_full_credit_notes_refer_to_their_invoice(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    partial = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("50.00"))
    rest = credit_note_issue(actor=None, invoice=invoice, reason="Contract ended")
    assert rest.full

    for note in (partial, rest):
        xml = credit_note_ubl(note, pdf=pdf_of(note))

        assert en16931(xml) == []
        found = amounts(xml)
        assert (found["subtotal"], found["tax"], found["total"]) == (note.subtotal, note.tax, note.total)
        assert sum(found["lines"]) == note.subtotal
        root = etree.fromstring(xml)
        assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
        reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
        assert reference.findtext("cbc:ID", namespaces=NS) == invoice.number


def test_first_full_credit_note_repeats_the_invoice_lines(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    note = credit_note_issue(actor=None, invoice=invoice, reason="Billed in error")

    xml = credit_note_ubl(note)

    assert en16931(xml) == []
    found = amounts(xml)
    assert found["lines"] == [item.amount for item in invoice.items.all()]
    assert (found["subtotal"], found["tax"], found["total"]) == (invoice.subtotal, invoice.tax, invoice.total)


def test_order_invoice_with_a_disbursement_line(en16931, finance_user):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    order_type = OrderTypeFactory(name="Company formation", default_fee=D("1000.00"), default_base_charge=D("120.00"))
    order = order_create(actor=finance_user, customer=customer, order_type=order_type)
    invoice = invoice_issue(actor=None, invoice=order.invoice, send=False)
    items = list(invoice.items.all())
    assert [(item.source, item.vat_category, item.vat_exemption_code) for item in items] == [
        ("order_fee", "S", ""),
        ("disbursement", "E", "VATEX-EU-79-C"),
    ]

    xml = invoice_ubl(invoice)

    assert en16931(xml) == []
    found = assert_same_amounts(xml, invoice)
    assert found["breakdown"] == {"S": (D("1000.00"), D("200.00")), "E": (D("120.00"), D("0.00"))}
    assert invoice.total == D("1320.00")


def test_the_validator_catches_a_line_amount_off_by_a_cent(en16931):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    invoice = usage_invoice(customer)
    root = etree.fromstring(invoice_ubl(invoice))
    amount = root.find("cac:InvoiceLine/cbc:LineExtensionAmount", NS)
    amount.text = str(D(amount.text) + D("0.01"))

    fatal = en16931(etree.tostring(root))

    assert any(rule.startswith("BR-CO-10") for rule in fatal), fatal
