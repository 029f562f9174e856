"""The UBL e-invoice made once at issue for customers who receive e-invoices, stored beside the PDF, attached to
the email and served by the API; a document that breaks a rule refuses the issue and nothing changes."""

import base64
from decimal import Decimal as D

import pytest
from django.core import mail
from lxml import etree

from catalog.models import EinvoiceDelivery
from ledger.einvoice.ubl import CAC, CBC, invoice_ubl, ubl_problems
from ledger.models import Invoice, Transaction
from ledger.services import invoices
from ledger.services.billing import billing_config_update
from ledger.services.invoices import EinvoiceInvalid, invoice_issue
from tests.einvoice.test_ubl import customer_in, pdf_of, usage_invoice

pytestmark = pytest.mark.django_db
NS = {"cac": CAC, "cbc": CBC}


def ubl_customer(**fields):
    customer = customer_in("NL", einvoice_delivery=EinvoiceDelivery.UBL, **fields)
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    return customer


def test_issue_stores_a_valid_ubl_with_the_pdf_embedded_and_emails_it(en16931, django_capture_on_commit_callbacks):
    draft = usage_invoice(ubl_customer(), issue=False)

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=draft)

    with invoice.einvoice.open("rb") as stored:
        xml = stored.read()
    assert en16931(xml) == []
    embedded = etree.fromstring(xml).findtext(
        "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", namespaces=NS
    )
    assert base64.b64decode(embedded) == pdf_of(invoice)
    (message,) = mail.outbox
    assert [name for name, *_ in message.attachments] == [f"{invoice.number}.pdf", f"{invoice.number}.xml"]


def test_pdf_only_customers_are_issued_as_before(django_capture_on_commit_callbacks):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    draft = usage_invoice(customer, issue=False)

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=draft)

    assert invoice.status == Invoice.Status.ISSUED and invoice.pdf and not invoice.einvoice
    (message,) = mail.outbox
    assert [name for name, *_ in message.attachments] == [f"{invoice.number}.pdf"]


def off_by_a_cent(xml: bytes) -> bytes:
    """The document with its first line's net amount 0.01 too high: BR-CO-10 (lines add up to the total)."""
    root = etree.fromstring(xml)
    amount = root.find("cac:InvoiceLine/cbc:LineExtensionAmount", NS)
    amount.text = str(D(amount.text) + D("0.01"))
    return etree.tostring(root)


def test_a_document_that_breaks_a_rule_refuses_the_issue_and_nothing_changes(monkeypatch):
    draft = usage_invoice(ubl_customer(), issue=False)
    # A fault in the generator: one line's amount a cent away from the invoice's.
    monkeypatch.setattr(invoices, "invoice_ubl", lambda invoice, pdf: off_by_a_cent(invoice_ubl(invoice, pdf=pdf)))

    with pytest.raises(EinvoiceInvalid) as refused:
        invoice_issue(actor=None, invoice=draft)

    assert "BR-CO-10" in refused.value.message
    draft.refresh_from_db()
    assert (draft.status, draft.number, bool(draft.pdf), bool(draft.einvoice)) == ("draft", None, False, False)
    assert not Transaction.objects.filter(customer=draft.customer).exists()


def test_the_product_checks_catch_a_line_amount_off_by_a_cent_as_the_validator_does(en16931):
    invoice = usage_invoice(ubl_customer())
    broken = off_by_a_cent(invoice_ubl(invoice))

    assert ubl_problems(invoice_ubl(invoice)) == []
    assert [problem.split(":")[0] for problem in ubl_problems(broken)] == ["BR-CO-10", "BR-S-08"]
    assert any(rule.startswith("BR-CO-10") for rule in en16931(broken))


def test_the_api_serves_the_stored_ubl(finance_user, client_for):
    invoice = usage_invoice(ubl_customer())
    pdf_only = customer_in("NL", client_id="PDF-ONLY")
    other = usage_invoice(pdf_only)
    api = client_for(finance_user)

    response = api.get(f"/api/invoices/{invoice.pk}/einvoice?syntax=ubl")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    with invoice.einvoice.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()
    assert api.get(f"/api/invoices/{invoice.pk}/einvoice?syntax=cii").status_code == 400
    assert api.get(f"/api/invoices/{other.pk}/einvoice").status_code == 404
