from datetime import date
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.core import mail
from pypdf import PdfReader

from approvals.services import approval_submit
from billing_project.errors import DomainError
from billing_project.formatting import day
from billing_project.tests.pdf_checks import page_fonts
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import Account, Invoice, InvoiceItem, Transaction
from ledger.services.billing import billing_config_update
from ledger.services.invoices import (
    InvoiceNotEditable,
    NothingToBill,
    credit_note_issue,
    invoice_add_line,
    invoice_cancel,
    invoice_create_draft,
    invoice_create_manual,
    invoice_issue,
    invoice_regenerate,
)
from ledger.services.journal import receivable_account

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)


def lines(invoice):
    return [(i.source, i.quantity, i.unit_price, i.amount, i.tax_amount) for i in invoice.items.order_by("position")]


def test_allowance_crossing_a_price_change(import_usage):
    """DESIGN.md's example: 1,000 free, 0.05 until the 15th, 0.04 after; 700 on the 10th, 900 on the 20th."""
    customer = CustomerFactory(client_id="ACME")
    service = ServiceFactory(code="kyc_check", name="KYC check")
    early = PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.05"),
        included_quantity=D(1000),
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 10, 15),
    )
    PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.04"),
        included_quantity=D(1000),
        monthly_fee=D(10),
        valid_from=date(2026, 10, 16),
    )
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    import_usage(customer, service, [(900, "2026-10-20T09:00:00Z"), (700, "2026-10-10T09:00:00Z")])

    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    assert lines(invoice) == [
        ("fee", D(1), D(10), D("10.00"), D("2.00")),
        ("included", D(1000), D(0), D("0.00"), D("0.00")),
        ("usage", D(600), D("0.04"), D("24.00"), D("4.80")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("34.00"), D("6.80"), D("40.80"))
    assert early.unit_price == D("0.05")


def test_tax_is_rounded_half_up_per_line_and_summed(priced_customer, import_usage):
    customer, service = priced_customer
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.1"))
    invoice = invoice_create_manual(
        actor=None,
        customer=customer,
        period=OCTOBER,
        lines=[
            {"description": "Setup", "quantity": D(1), "unit_price": D("0.05")},
            {"description": "Extra", "quantity": D(1), "unit_price": D("0.05")},
            {"description": "Half cents", "quantity": D(3), "unit_price": D("0.125")},
        ],
    )

    # 0.005 rounds up to 0.01 on each line: 0.02 + 0.04, where tax on the subtotal would be 0.05.
    assert [item.tax_amount for item in invoice.items.order_by("position")] == [D("0.01"), D("0.01"), D("0.04")]
    assert invoice.items.order_by("position").last().amount == D("0.38")
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("0.48"), D("0.06"), D("0.54"))


def test_a_mid_month_new_agreement_bills_its_full_fee_and_its_usage(import_usage):
    customer = CustomerFactory()
    service = ServiceFactory()
    PriceAgreementFactory(
        customer=customer, service=service, unit_price=D("1.5"), monthly_fee=D(30), valid_from=date(2026, 10, 15)
    )
    import_usage(customer, service, [(2, "2026-10-20T09:00:00Z")])

    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    assert lines(invoice) == [("fee", D(1), D(30), D("30.00"), D("0.00")), ("usage", D(2), D("1.5"), D("3.00"), D(0))]
    assert invoice.total == D("33.00")


def test_a_customer_without_usage_or_fee_gets_no_draft_when_asked_for_one(priced_customer):
    customer, _ = priced_customer

    with pytest.raises(NothingToBill) as refusal:
        invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    assert refusal.value.code == "nothing_to_bill" and refusal.value.fields == {
        "period": ["Nothing to bill for this month."]
    }
    assert not Invoice.objects.exists()


@pytest.fixture
def within_allowance(import_usage):
    """ZERO-1: no fee, 1,000 checks a month included, 10 used in October: an invoice of 0.00, one included line."""
    customer = CustomerFactory(client_id="ZERO-1")
    service = ServiceFactory(code="kyc_check", name="KYC check")
    PriceAgreementFactory(
        customer=customer, service=service, unit_price=D("0.5"), included_quantity=D(1000), valid_from=date(2026, 1, 1)
    )
    import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
    return customer


def test_a_month_within_the_allowance_gets_no_draft_saying_how_to_get_one(within_allowance):
    with pytest.raises(NothingToBill) as refusal:
        invoice_create_draft(actor=None, customer=within_allowance, period=OCTOBER)

    assert refusal.value.message == (
        "ZERO-1 has nothing to bill for 2026-10 (no fee, and no usage beyond its allowance): no invoice is made. To "
        "send a 0.00 invoice, tick “Send a 0.00 invoice when there is nothing to bill” in its billing configuration."
    )
    assert not Invoice.objects.exists()


def test_with_send_zero_invoices_the_month_gets_a_zero_invoice_that_issues_as_paid(
    within_allowance, django_capture_on_commit_callbacks
):
    billing_config_update(actor=None, customer=within_allowance, send_zero_invoices=True)

    invoice = invoice_create_draft(actor=None, customer=within_allowance, period=OCTOBER)
    assert lines(invoice) == [("included", D(10), D(0), D("0.00"), D("0.00"))]
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoice_issue(actor=None, invoice=invoice)

    assert (invoice.status, invoice.total) == (Invoice.Status.PAID, D("0.00")) and invoice.number
    assert [message.subject for message in mail.outbox] == [f"Invoice {invoice.number} from {settings.SELLER['name']}"]


def test_a_zero_draft_made_while_asked_for_is_not_issued_once_the_option_is_off(within_allowance):
    billing_config_update(actor=None, customer=within_allowance, send_zero_invoices=True)
    draft = invoice_create_draft(actor=None, customer=within_allowance, period=OCTOBER)
    billing_config_update(actor=None, customer=within_allowance, send_zero_invoices=False)

    with pytest.raises(NothingToBill, match=f"cancel draft #{draft.pk}"):
        invoice_issue(actor=None, invoice=draft)
    with pytest.raises(NothingToBill, match=f"cancel draft #{draft.pk}"):
        approval_submit(actor=None, target=draft)

    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.Status.DRAFT, None)
    assert invoice_cancel(actor=None, invoice=draft).status == Invoice.Status.CANCELLED


def test_a_manual_invoice_of_zero_is_still_issued(priced_customer):
    customer, _ = priced_customer
    invoice = invoice_create_manual(actor=None, customer=customer)

    assert invoice_issue(actor=None, invoice=invoice, send=False).status == Invoice.Status.PAID


def test_a_second_usage_draft_for_the_same_month_is_refused(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(4, "2026-10-02T09:00:00Z")])
    invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    with pytest.raises(DomainError, match="already has a usage invoice"):
        invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    assert Invoice.objects.count() == 1


def test_regenerate_rates_again_and_keeps_manual_lines(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(4, "2026-10-02T09:00:00Z")])
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    invoice_add_line(actor=None, invoice=invoice, description="Onboarding", quantity=D(1), unit_price=D(100))
    import_usage(customer, service, [(6, "2026-10-03T09:00:00Z")])

    invoice = invoice_regenerate(actor=None, invoice=invoice)

    assert [(s, q, a) for s, q, _, a, _ in lines(invoice)] == [
        ("usage", D(10), D("5.00")),
        ("manual", D(1), D("100.00")),
    ]
    assert invoice.total == D("126.00")


def test_issue_numbers_posts_renders_and_emails_after_commit(
    priced_customer, import_usage, django_capture_on_commit_callbacks
):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-02T09:00:00Z")])
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice = invoice_issue(actor=None, invoice=invoice)
        assert mail.outbox == []
    for callback in callbacks:
        callback()

    year = invoice.issued_at.year
    assert invoice.number == f"INV-{year}-000001"
    assert (invoice.status, invoice.total) == (Invoice.Status.ISSUED, D("6.00"))
    assert (invoice.due_date - invoice.issued_at.date()).days in (13, 14, 15)  # net 14 days in the billing zone
    charge = Transaction.objects.get(kind=Transaction.Kind.CHARGE)
    assert sorted((leg.account.kind, leg.debit, leg.credit) for leg in charge.legs.all()) == [
        (Account.Kind.RECEIVABLE, D("6.00"), D("0.00")),
        (Account.Kind.REVENUE, D("0.00"), D("5.00")),
        (Account.Kind.TAX, D("0.00"), D("1.00")),
    ]
    assert receivable_account(customer).balance == D("6.00")
    text = "".join(page.extract_text() for page in PdfReader(invoice.pdf.open("rb")).pages)
    assert invoice.number in text and "Acme" in text and "EUR 6.00" in text
    with invoice.pdf.open("rb") as pdf:
        fonts = page_fonts(pdf.read())
    assert fonts and set(fonts.values()) == {"/FontFile2"}, fonts  # every font embedded, as PDF/A wants
    (message,) = mail.outbox
    assert message.to == [customer.billing_email]
    assert f": EUR\xa06.00, due on {day(invoice.due_date)}." in message.body
    assert message.attachments[0][0] == f"{invoice.number}.pdf"


def test_issuing_twice_gives_one_number_and_one_charge(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-02T09:00:00Z")])
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    first = invoice_issue(actor=None, invoice=invoice)
    again = invoice_issue(actor=None, invoice=invoice)

    assert first.number == again.number
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 1


def test_numbers_are_consecutive_per_year(priced_customer):
    customer, _ = priced_customer
    numbers = []
    for _ in range(3):
        invoice = invoice_create_manual(
            actor=None, customer=customer, lines=[{"description": "x", "quantity": D(1), "unit_price": D(1)}]
        )
        numbers.append(invoice_issue(actor=None, invoice=invoice).number)
    assert [int(number.rsplit("-", 1)[1]) for number in numbers] == [1, 2, 3]


def test_an_issued_invoice_cannot_be_edited_or_cancelled(priced_customer):
    customer, _ = priced_customer
    invoice = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "x", "quantity": D(1), "unit_price": D(1)}]
    )
    invoice_issue(actor=None, invoice=invoice)

    with pytest.raises(InvoiceNotEditable):
        invoice_add_line(actor=None, invoice=invoice, description="more", quantity=D(1), unit_price=D(1))
    with pytest.raises(InvoiceNotEditable):
        invoice_regenerate(actor=None, invoice=invoice)
    with pytest.raises(InvoiceNotEditable):
        invoice_cancel(actor=None, invoice=invoice)
    assert InvoiceItem.objects.filter(invoice=invoice).count() == 1


def test_a_cancelled_draft_is_not_issued(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(4, "2026-10-02T09:00:00Z")])
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    invoice_cancel(actor=None, invoice=invoice)

    with pytest.raises(InvoiceNotEditable):
        invoice_issue(actor=None, invoice=invoice)


def test_a_full_credit_note_voids_the_invoice_and_reverses_the_charge(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-02T09:00:00Z")])
    invoice = invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=customer, period=OCTOBER))

    note = credit_note_issue(actor=None, invoice=invoice, reason="Billed in error")

    invoice.refresh_from_db()
    assert note.number.startswith("CN-") and note.number.endswith("-000001")
    assert (note.subtotal, note.tax, note.total, note.full) == (D("5.00"), D("1.00"), D("6.00"), True)
    assert invoice.status == Invoice.Status.VOID
    assert receivable_account(customer).balance == D("0.00")
    text = "".join(page.extract_text() for page in PdfReader(note.pdf.open("rb")).pages)
    assert note.number in text and invoice.number in text
    with note.pdf.open("rb") as pdf:
        assert set(page_fonts(pdf.read()).values()) == {"/FontFile2"}


def test_a_partial_credit_note_reduces_what_is_owed(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-02T09:00:00Z")])
    invoice = invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=customer, period=OCTOBER))

    note = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("1.20"))

    invoice.refresh_from_db()
    assert (note.subtotal, note.tax, note.full) == (D("1.00"), D("0.20"), False)
    assert (invoice.status, invoice.outstanding) == (Invoice.Status.ISSUED, D("4.80"))
    assert receivable_account(customer).balance == D("4.80")
    with pytest.raises(DomainError, match="at most EUR\xa04.80"):
        credit_note_issue(actor=None, invoice=invoice, reason="Too much", amount=D("5.00"))
