"""E-invoices made once at issue for customers who receive them, in both syntaxes, stored beside the PDF: the UBL
and the Factur-X PDF; emailed as the customer chose, served by the API; a document that breaks a rule refuses the
issue and nothing changes."""

import base64
from decimal import Decimal as D
from io import BytesIO

import pytest
from django.core import mail
from facturx import get_facturx_xml_from_pdf
from lxml import etree
from pypdf import PdfReader

from billing_project.tests.pdf_checks import page_fonts
from catalog.models import EinvoiceDelivery
from ledger.einvoice.cii import RAM, cii_problems, cii_xml
from ledger.einvoice.terms import invoice_terms
from ledger.einvoice.ubl import CAC, CBC, ubl_problems, ubl_xml
from ledger.models import CreditNote, Invoice, Transaction
from ledger.services import invoices
from ledger.services.billing import billing_config_update
from ledger.services.invoices import EinvoiceInvalid, credit_note_issue, invoice_issue
from tests.einvoice.test_documents import amounts, customer_in, pdf_of, usage_invoice

pytestmark = pytest.mark.django_db
NS = {"cac": CAC, "cbc": CBC, "ram": RAM}
PDFAID = "{http://www.aiim.org/pdfa/ns/id/}"


def einvoice_customer(delivery=EinvoiceDelivery.UBL, **fields):
    customer = customer_in("NL", einvoice_delivery=delivery, **fields)
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    return customer


def read(file) -> bytes:
    with file.open("rb") as stored:
        return stored.read()


def page_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def test_issue_stores_a_valid_ubl_with_the_pdf_embedded_and_emails_it(en16931, django_capture_on_commit_callbacks):
    draft = usage_invoice(einvoice_customer(), issue=False)

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=draft)

    xml = read(invoice.einvoice)
    assert en16931(xml) == []
    assert (amounts(xml)["total"], amounts(xml)["lines"]) == (invoice.total, [i.amount for i in invoice.items.all()])
    embedded = etree.fromstring(xml).findtext(
        "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", namespaces=NS
    )
    assert base64.b64decode(embedded) == pdf_of(invoice)
    (message,) = mail.outbox
    assert [name for name, *_ in message.attachments] == [f"{invoice.number}.pdf", f"{invoice.number}.xml"]
    assert message.attachments[0][1] == pdf_of(invoice)


def test_issue_stores_a_factur_x_pdf_whose_xml_validates_and_whose_pages_are_the_pdfs(
    en16931, django_capture_on_commit_callbacks
):
    draft = usage_invoice(einvoice_customer(EinvoiceDelivery.FACTURX), issue=False)

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=draft)

    facturx = read(invoice.facturx)
    filename, xml = get_facturx_xml_from_pdf(facturx, check_xsd=True)
    assert filename == "factur-x.xml"
    assert en16931(xml) == []
    found = amounts(xml)
    assert (found["subtotal"], found["tax"], found["total"]) == (invoice.subtotal, invoice.tax, invoice.total)
    assert found["lines"] == [item.amount for item in invoice.items.all()]
    assert page_text(facturx) == page_text(pdf_of(invoice))
    assert b"pdfaid" in PdfReader(BytesIO(facturx)).xmp_metadata.stream.get_data()
    # Both syntaxes are made for every e-invoice customer; the email carries the one it chose.
    assert en16931(read(invoice.einvoice)) == []
    (message,) = mail.outbox
    assert [(name, content) for name, content, _ in message.attachments] == [(f"{invoice.number}.pdf", facturx)]


@pytest.mark.parametrize("document", ["invoice", "credit note"])
def test_the_factur_x_pdf_is_a_pdf_a_3_file(en16931, document):
    invoice = usage_invoice(einvoice_customer(EinvoiceDelivery.FACTURX))
    issued = invoice
    if document == "credit note":
        issued = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("12.00"))

    pdf = read(issued.facturx)

    reader = PdfReader(BytesIO(pdf))
    # ISO 19005-3 6.2.11.4: every font the pages use is embedded, a TrueType program; no base-14 Helvetica.
    fonts = page_fonts(pdf)
    assert fonts and set(fonts.values()) == {"/FontFile2"}, fonts
    # 6.2.4.3: the pages' DeviceRGB colours have a PDF/A output intent with an RGB ICC profile.
    (intent,) = reader.trailer["/Root"]["/OutputIntents"]
    intent = intent.get_object()
    profile = intent["/DestOutputProfile"].get_object()
    icc = profile.get_data()
    assert (intent["/Type"], intent["/S"], profile["/N"]) == ("/OutputIntent", "/GTS_PDFA1", 3)
    assert (icc[12:16], icc[16:20], icc[36:40]) == (b"mntr", b"RGB ", b"acsp")  # a display profile, RGB, an ICC file
    # 6.6.4: the XMP declares PDF/A-3B; the information dictionary says what the XMP says, under the PDF's title.
    xmp = reader.xmp_metadata
    packet = etree.fromstring(xmp.stream.get_data())
    assert (packet.findtext(f".//{PDFAID}part"), packet.findtext(f".//{PDFAID}conformance")) == ("3", "B")
    title = PdfReader(BytesIO(pdf_of(issued))).metadata.title
    assert title.startswith(("Invoice ", "Credit note ")) and issued.number in title
    info = reader.metadata
    assert info.title == xmp.dc_title["x-default"] == title
    assert (info.author, info.subject) == (xmp.dc_creator[0], xmp.dc_description["x-default"])
    assert (info.creator, info.producer) == (xmp.xmp_creator_tool, xmp.pdf_producer)
    assert (info["/CreationDate"], info["/ModDate"]) == (
        f"D:{xmp.xmp_create_date:%Y%m%d%H%M%S}+00'00'",  # pypdf gives the XMP's dates in UTC
        f"D:{xmp.xmp_modify_date:%Y%m%d%H%M%S}+00'00'",
    )
    assert "/Keywords" not in info and "/Trapped" not in info  # no XMP counterpart
    # 6.1.2, 6.1.3: the header at byte zero, a file identifier, no encryption.
    assert pdf.startswith(b"%PDF-1.7\n%") and pdf.find(b"%PDF-", 1) == -1
    assert len(reader.trailer["/ID"]) == 2 and "/Encrypt" not in reader.trailer
    # 6.8: the XML is an associated file, and still comes out and validates.
    (spec,) = reader.trailer["/Root"]["/AF"]
    assert spec.get_object()["/AFRelationship"] == "/Data"
    filename, xml = get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml" and en16931(xml) == []
    assert page_text(pdf) == page_text(pdf_of(issued))


def test_pdf_only_customers_are_issued_as_before(django_capture_on_commit_callbacks):
    customer = customer_in("NL")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    draft = usage_invoice(customer, issue=False)

    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=draft)

    assert invoice.status == Invoice.Status.ISSUED and invoice.pdf
    assert not invoice.einvoice and not invoice.facturx
    (message,) = mail.outbox
    assert [name for name, *_ in message.attachments] == [f"{invoice.number}.pdf"]


def test_a_credit_note_is_stored_in_both_syntaxes_at_issue(en16931):
    invoice = usage_invoice(einvoice_customer(EinvoiceDelivery.FACTURX))

    note = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("12.00"))

    ubl = read(note.einvoice)
    _, cii = get_facturx_xml_from_pdf(read(note.facturx), check_xsd=True)
    for xml in (ubl, cii):
        assert en16931(xml) == []
        found = amounts(xml)
        assert (found["total"], found["tax"], found["type"], found["preceding"]) == (
            D("12.00"),
            D("2.00"),
            "381",
            invoice.number,
        )
    assert page_text(read(note.facturx)) == page_text(pdf_of(note))


def off_by_a_cent(xml: bytes) -> bytes:
    """The document with its first line's net amount 0.01 too high: BR-CO-10 (lines add up to the total)."""
    root = etree.fromstring(xml)
    for path in ("cac:InvoiceLine/cbc:LineExtensionAmount", "cac:CreditNoteLine/cbc:LineExtensionAmount"):
        amount = root.find(path, NS)
        if amount is not None:
            break
    else:
        amount = root.find(".//ram:LineTotalAmount", NS)
    amount.text = str(D(amount.text) + D("0.01"))
    return etree.tostring(root)


def assert_nothing_changed(draft: Invoice) -> None:
    draft.refresh_from_db()
    assert (draft.status, draft.number, bool(draft.pdf), bool(draft.einvoice), bool(draft.facturx)) == (
        "draft",
        None,
        False,
        False,
        False,
    )
    assert not Transaction.objects.filter(customer=draft.customer).exists()


@pytest.mark.parametrize("syntax", ["ubl_xml", "cii_xml"])
def test_a_document_that_breaks_a_rule_refuses_the_issue_and_nothing_changes(monkeypatch, syntax):
    draft = usage_invoice(einvoice_customer(), issue=False)
    # A fault in one generator: one line's amount a cent away from the invoice's.
    make = getattr(invoices, syntax)
    monkeypatch.setattr(invoices, syntax, lambda document: off_by_a_cent(make(document)))

    with pytest.raises(EinvoiceInvalid) as refused:
        invoice_issue(actor=None, invoice=draft)

    assert refused.value.message.startswith(f"Draft invoice for {draft.customer.name}, October 2026 cannot be issued")
    assert f"{syntax[:3].upper()} BR-CO-10" in refused.value.message
    assert_nothing_changed(draft)
    assert not mail.outbox


def test_a_document_that_breaks_its_schema_refuses_the_issue(monkeypatch):
    draft = usage_invoice(einvoice_customer(EinvoiceDelivery.FACTURX), issue=False)

    def misspelt(document) -> bytes:
        root = etree.fromstring(cii_xml(document))
        root.find(".//ram:BuyerReference", NS).tag = f"{{{RAM}}}BuyerRef"
        return etree.tostring(root)

    monkeypatch.setattr(invoices, "cii_xml", misspelt)

    with pytest.raises(EinvoiceInvalid) as refused:
        invoice_issue(actor=None, invoice=draft)

    assert "CII XSD" in refused.value.message and "BuyerRef" in refused.value.message
    assert_nothing_changed(draft)


def test_a_credit_note_whose_document_breaks_a_rule_is_not_issued(monkeypatch):
    invoice = usage_invoice(einvoice_customer())
    monkeypatch.setattr(invoices, "ubl_xml", lambda document: off_by_a_cent(ubl_xml(document)))

    with pytest.raises(EinvoiceInvalid, match="BR-CO-10"):
        credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("12.00"))

    assert not CreditNote.objects.filter(invoice=invoice).exists()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_credited) == (Invoice.Status.ISSUED, D("0.00"))


def test_the_product_checks_catch_a_line_amount_off_by_a_cent_as_the_validator_does(en16931):
    invoice = usage_invoice(einvoice_customer())
    document = invoice_terms(invoice)

    for make, problems in ((ubl_xml, ubl_problems), (cii_xml, cii_problems)):
        broken = off_by_a_cent(make(document))
        assert problems(make(document)) == []
        assert [problem.split(":")[0] for problem in problems(broken)] == ["BR-CO-10", "BR-S-08"]
        assert any(rule.startswith("BR-CO-10") for rule in en16931(broken))


def test_the_api_serves_the_stored_ubl_and_factur_x(finance_user, client_for):
    invoice = usage_invoice(einvoice_customer())
    pdf_only = customer_in("NL", client_id="PDF-ONLY")
    other = usage_invoice(pdf_only)
    api = client_for(finance_user)

    ubl = api.get(f"/api/invoices/{invoice.pk}/einvoice?syntax=ubl")
    cii = api.get(f"/api/invoices/{invoice.pk}/einvoice?syntax=cii")

    assert (ubl.status_code, ubl["Content-Type"]) == (200, "application/xml")
    assert b"".join(ubl.streaming_content) == read(invoice.einvoice)
    assert (cii.status_code, cii["Content-Type"]) == (200, "application/pdf")
    assert b"".join(cii.streaming_content) == read(invoice.facturx)
    assert api.get(f"/api/invoices/{invoice.pk}/einvoice?syntax=xrechnung").status_code == 400
    assert api.get(f"/api/invoices/{other.pk}/einvoice").status_code == 404
    assert api.get(f"/api/invoices/{other.pk}/einvoice?syntax=cii").status_code == 404
