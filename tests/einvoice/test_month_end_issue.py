"""Month-end's auto-issue: the drafts of a chunk issued in one batch (`invoices_issue`), their PDFs and e-invoices
made after commit by a task and stored once; an e-invoice that breaks a rule still refuses its invoice's issue."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from facturx import get_facturx_xml_from_pdf
from lxml import etree

from billing_project.errors import Conflict
from catalog.models import EinvoiceDelivery
from catalog.tests.factories import PortalMembershipFactory, ServiceFactory
from ledger.models import BillingRun, Invoice, Transaction
from ledger.services import invoices, month_end
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_documents_store, invoice_documents_store_missing, invoices_issue
from ledger.services.reconciliation import ledger_differences
from ledger.services.revenue_totals import revenue_by_line
from ledger.tests.test_monthly_totals import assert_kept
from ledger.tests.test_revenue_totals import kept as service_revenue_kept
from tests.einvoice.test_documents import amounts, customer_in, pdf_of, priced_usage
from tests.einvoice.test_issue import NS, off_by_a_cent, read

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
OCTOBER = date(2026, 10, 1)


@pytest.fixture
def billed():
    """billed(client_id, delivery) -> a customer with `priced_usage`'s October (a fee, included units, usage at two
    prices), its bills issued at once by month-end (auto-issue), taxed at 20 %."""

    def make(client_id: str, delivery=EinvoiceDelivery.UBL, *, service=None):
        customer = customer_in("NL", client_id=client_id, einvoice_delivery=delivery)
        billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"), auto_issue=True)
        priced_usage(customer, service=service)
        return customer

    return make


def test_month_end_issues_in_one_batch_and_a_task_stores_valid_documents_after_commit(
    people, billed, en16931, django_capture_on_commit_callbacks
):
    ubl, facturx, pdf_only = billed("UBL"), billed("FACTURX", EinvoiceDelivery.FACTURX), billed("PDF", "pdf")

    with django_capture_on_commit_callbacks() as callbacks:
        run = month_end.month_end_run(actor=people["finance"], period=OCTOBER)

    issued = {invoice.customer_id: invoice for invoice in Invoice.objects.order_by("number")}
    assert [invoice.number for invoice in issued.values()] == [f"INV-2026-00000{n}" for n in (1, 2, 3)]
    assert {invoice.status for invoice in issued.values()} == {Invoice.Status.ISSUED}
    assert (run.invoices_issued, run.failures, run.status) == (3, [], "completed")
    assert not any(invoice.pdf or invoice.einvoice or invoice.facturx for invoice in issued.values())  # not yet
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 3
    assert ledger_differences()[0] == []
    assert_kept()
    assert service_revenue_kept() == revenue_by_line(Invoice.objects.all())

    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:  # the commit: the documents task runs (eagerly here), then the emails go
            callback()

    stored = {invoice.customer_id: invoice for invoice in Invoice.objects.all()}
    for invoice in stored.values():
        assert pdf_of(invoice).startswith(b"%PDF")
        history = invoice.history.order_by("history_id")
        assert [row.status for row in history] == ["draft", "issued", "issued"]  # made, issued, its files stored
        assert history.last().history_user == people["finance"]
    xml = read(stored[ubl.pk].einvoice)
    assert en16931(xml) == []
    # A fee of 100.00, 200 checks at 0.05 and 600 at 0.04 beyond the 1,000 included, 20 % tax.
    assert amounts(xml)["total"] == stored[ubl.pk].total == D("160.80")
    embedded = etree.fromstring(xml).findtext(
        "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", namespaces=NS
    )
    assert embedded  # the stored PDF, base64
    _, cii = get_facturx_xml_from_pdf(read(stored[facturx.pk].facturx), check_xsd=True)
    assert en16931(cii) == []
    assert amounts(cii)["lines"] == [item.amount for item in stored[facturx.pk].items.all()]
    assert not (stored[pdf_only.pk].einvoice or stored[pdf_only.pk].facturx)
    sent = {message.to[0]: [name for name, *_ in message.attachments] for message in mail.outbox}
    assert sent == {
        ubl.billing_email: [f"{issued[ubl.pk].number}.pdf", f"{issued[ubl.pk].number}.xml"],
        facturx.billing_email: [f"{issued[facturx.pk].number}.pdf"],
        pdf_only.billing_email: [f"{issued[pdf_only.pk].number}.pdf"],
    }


def test_an_einvoice_that_breaks_a_rule_leaves_only_its_invoice_a_draft_and_numbers_stay_gapless(
    people, billed, monkeypatch, django_capture_on_commit_callbacks
):
    first, broken, last = billed("FIRST"), billed("BROKEN"), billed("LAST")
    make = invoices.ubl_xml

    def ubl_xml(document):  # a fault in the generator for one buyer: a line amount a cent off
        return off_by_a_cent(make(document)) if document.buyer.identifier == "BROKEN" else make(document)

    monkeypatch.setattr(invoices, "ubl_xml", ubl_xml)

    with django_capture_on_commit_callbacks(execute=True):
        run = month_end.month_end_run(actor=people["finance"], period=OCTOBER)

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {first.pk: "issued", broken.pk: "draft", last.pk: "issued"}
    assert sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True)) == [
        "INV-2026-000001",
        "INV-2026-000002",
    ]
    assert run.invoices_issued == 2
    ((failure),) = run.failures
    assert (failure["stage"], failure["customers"]) == ("route", [broken.pk])
    assert "UBL BR-CO-10" in failure["error"] and "cannot be issued" in failure["error"]
    assert not Transaction.objects.filter(customer=broken).exists()
    assert all(invoice.einvoice for invoice in Invoice.objects.exclude(customer=broken))
    assert ledger_differences()[0] == []
    assert_kept()


def test_issuing_a_batch_takes_as_many_statements_for_twelve_invoices_as_for_three(people, billed):
    service = ServiceFactory(code="kyc", name="KYC check", unit_code="C62")  # one for all: revenue is kept per service
    customers = [billed(f"C{n:02}", EinvoiceDelivery.FACTURX if n % 2 else "pdf", service=service) for n in range(16)]
    drafts = []
    run = BillingRun.objects.create(period=OCTOBER, started_by=people["finance"], customer_count=len(customers))
    for customer in customers:
        month_end.month_end_bill(run=run, customer_ids=[customer.pk], actor=None)
        drafts.append(Invoice.objects.select_related("customer").get(customer=customer))
    invoices_issue(actor=None, invoices=drafts[:1])  # caches: content types, the chart's revenue accounts

    with CaptureQueriesContext(connection) as for_few:
        invoices_issue(actor=None, invoices=drafts[1:4])
    with CaptureQueriesContext(connection) as for_many:
        invoices_issue(actor=None, invoices=drafts[4:])

    assert len(for_many) == len(for_few)
    assert Invoice.objects.filter(status=Invoice.Status.ISSUED).count() == 16
    assert ledger_differences()[0] == []
    assert_kept()


def test_the_files_are_stored_and_emailed_once_however_often_the_task_runs(
    people, billed, django_capture_on_commit_callbacks
):
    customer = billed("TWICE", EinvoiceDelivery.FACTURX)
    with django_capture_on_commit_callbacks(execute=True):
        month_end.month_end_run(actor=people["finance"], period=OCTOBER)
    invoice = Invoice.objects.get(customer=customer)
    files = (invoice.pdf.name, invoice.einvoice.name, invoice.facturx.name)
    versions = invoice.history.count()

    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_documents_store(invoice_ids=[invoice.pk], actor=None) == 0

    invoice.refresh_from_db()
    assert (invoice.pdf.name, invoice.einvoice.name, invoice.facturx.name) == files
    assert invoice.history.count() == versions
    assert len(mail.outbox) == 1


def test_the_schedule_stores_the_files_a_lost_task_did_not(people, billed, django_capture_on_commit_callbacks):
    lost, old = billed("LOST"), billed("OLD")
    billed("RECENT")
    month_end.month_end_run(actor=people["finance"], period=OCTOBER)  # on-commit callbacks dropped: tasks lost
    now = timezone.now()
    Invoice.objects.filter(customer=lost).update(issued_at=now - timedelta(minutes=11))
    Invoice.objects.filter(customer=old).update(issued_at=now - timedelta(days=4))
    manual = invoices.invoice_create_manual(
        actor=None, customer=lost, lines=[{"description": "Set-up", "quantity": D(1), "unit_price": D(50)}]
    )
    Invoice.objects.filter(pk=manual.pk).update(
        number="INV-2026-000099", status="issued", issued_at=now - timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_documents_store_missing() == 1

    with_files = set(Invoice.objects.exclude(pdf="").values_list("customer_id", "kind"))
    assert with_files == {(lost.pk, Invoice.Kind.USAGE)}  # not the one just issued, too old, or not month-end's
    assert [message.to for message in mail.outbox] == [[lost.billing_email]]


def test_until_its_files_are_stored_an_issued_invoice_says_its_pdf_is_being_made(
    people, billed, client, django_capture_on_commit_callbacks
):
    customer = billed("WAITING")
    portal_user = PortalMembershipFactory(customer=customer).user
    with django_capture_on_commit_callbacks() as callbacks:
        month_end.month_end_run(actor=people["finance"], period=OCTOBER)
    invoice = Invoice.objects.get(customer=customer)
    client.force_login(people["finance"])

    page = client.get(reverse("admin:ledger_invoice_change", args=[invoice.pk])).content.decode()
    download = client.get(reverse("admin:ledger_invoice_download_pdf", args=[invoice.pk]), follow=True)
    client.force_login(portal_user)
    listed = client.get(reverse("portal:invoices")).content.decode()

    assert "Being made" in page
    assert [str(message) for message in download.context["messages"]] == [
        f"{invoice.number}: its PDF is being made, within minutes of its issue."
    ]
    assert "PDF being made" in listed
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    listed = client.get(reverse("portal:invoices")).content.decode()
    assert "PDF being made" not in listed and reverse("portal:invoice_pdf", args=[invoice.pk]) in listed


def test_one_invoice_whose_files_fail_keeps_no_other_from_its_files_and_cannot_be_sent_again_yet(
    people, billed, monkeypatch, django_capture_on_commit_callbacks
):
    first, failing, last = billed("FIRST", "pdf"), billed("FAILING", "pdf"), billed("LAST", "pdf")
    month_end.month_end_run(actor=people["finance"], period=OCTOBER)  # the task held back
    ids = list(Invoice.objects.order_by("pk").values_list("pk", flat=True))
    render = invoices.render_invoice_pdf

    def render_invoice_pdf(invoice, items, config):
        if invoice.customer_id == failing.pk:
            raise OSError("disk full")
        return render(invoice, items, config)

    monkeypatch.setattr(invoices, "render_invoice_pdf", render_invoice_pdf)
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_documents_store(invoice_ids=ids, actor=None) == 2

    with_files = set(Invoice.objects.exclude(pdf="").values_list("customer_id", flat=True))
    assert with_files == {first.pk, last.pk}
    assert sorted(message.to[0] for message in mail.outbox) == sorted([first.billing_email, last.billing_email])
    waiting = Invoice.objects.get(customer=failing)
    with pytest.raises(Conflict, match="PDF is being made"):
        invoices.invoice_send_again(actor=None, invoice=waiting)
