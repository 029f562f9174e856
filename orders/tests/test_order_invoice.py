"""An order's invoice (kind `order`): drafted with the order, one per order, issued, paid and credited through the
ledger's services; the payment status derived from it; cancelling and failing an order; month-end leaving it be."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.test import Client

from accounts.roles import Role
from approvals.services import approval_submit
from billing_project.errors import DomainError
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import Invoice, InvoiceItem
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue, invoice_regenerate
from ledger.services.journal import receivable_account
from ledger.services.payments import payment_record
from ledger.services.reconciliation import ledger_differences
from orders.models import Order
from orders.selectors import PaymentStatus, order_payment_status
from orders.services.billing import (
    InvoiceInTheWay,
    NothingToInvoice,
    OrderAlreadyInvoiced,
    order_credit,
    order_invoice_create,
)
from orders.services.orders import order_create, order_transition, order_update
from orders.tests.factories import OrderTypeFactory

pytestmark = pytest.mark.django_db
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
Status = Order.Status


@pytest.fixture
def customer(db):
    customer = CustomerFactory(client_id="ACME-001", name="Acme Ltd", currency="EUR")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    return customer


@pytest.fixture
def order_type(db):
    return OrderTypeFactory(name="UK company formation", default_fee=D("1000.00"), default_base_charge=D("120.00"))


@pytest.fixture
def order(customer, order_type, finance_user):
    return order_create(actor=finance_user, customer=customer, order_type=order_type)


def fresh(order: Order) -> Order:
    return Order.objects.select_related("invoice").get(pk=order.pk)


def issued(order: Order) -> Invoice:
    return invoice_issue(actor=None, invoice=fresh(order).invoice)


def pay(order: Order, amount: str, reference: str):
    return payment_record(
        actor=None, customer=order.customer, amount=D(amount), received_at=RECEIVED, bank_reference=reference
    )


def status_of(order: Order) -> PaymentStatus:
    return order_payment_status(fresh(order))


# --- The draft --------------------------------------------------------------------------------------------------


def test_a_new_order_gets_a_draft_with_the_fee_taxed_and_the_base_charge_untaxed(order, finance_user):
    invoice = order.invoice

    assert (invoice.kind, invoice.status, invoice.number, invoice.currency) == ("order", "draft", None, "EUR")
    assert [(i.source, i.quantity, i.amount, i.tax_rate, i.tax_amount) for i in invoice.items.all()] == [
        ("order_fee", D("1"), D("1000.00"), D("0.2"), D("200.00")),
        ("disbursement", D("1"), D("120.00"), D("0"), D("0.00")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("1120.00"), D("200.00"), D("1320.00"))
    assert invoice.created_by == finance_user and fresh(order).invoice == invoice
    assert status_of(order) == PaymentStatus.UNBILLED


def test_a_line_of_zero_is_left_out_and_an_order_with_nothing_to_bill_gets_no_invoice(customer, order_type):
    base_only = order_create(actor=None, customer=customer, order_type=order_type, fee=D("0"))
    nothing = order_create(actor=None, customer=customer, order_type=order_type, fee=D("0"), base_charge=D("0"))

    assert [item.source for item in base_only.invoice.items.all()] == ["disbursement"]
    assert base_only.invoice.total == D("120.00")
    assert fresh(nothing).invoice is None
    with pytest.raises(NothingToInvoice, match="no fee and no base charge"):
        order_invoice_create(actor=None, order=nothing)
    assert Invoice.objects.count() == 1


def test_an_exempt_customer_is_not_taxed_on_the_fee(customer, order_type):
    billing_config_update(actor=None, customer=customer, tax_exempt=True, tax_exempt_reason="Reverse charge")

    order = order_create(actor=None, customer=customer, order_type=order_type)

    assert (order.invoice.tax, order.invoice.total) == (D("0.00"), D("1120.00"))


def test_a_second_invoice_is_refused_by_the_service_and_by_the_database(order, customer, order_type):
    with pytest.raises(OrderAlreadyInvoiced, match="already billed on invoice"):
        order_invoice_create(actor=None, order=order)
    issued(order)
    with pytest.raises(OrderAlreadyInvoiced):
        order_invoice_create(actor=None, order=order)
    assert Invoice.objects.filter(kind="order").count() == 1

    other = order_create(actor=None, customer=customer, order_type=order_type)
    other.invoice = order.invoice
    with pytest.raises(IntegrityError), transaction.atomic():
        other.save(update_fields=["invoice"])


def test_an_order_made_without_an_invoice_is_billed_later_from_its_page(customer, order_type):
    order = order_create(actor=None, customer=customer, order_type=order_type, fee=D("0"), base_charge=D("0"))
    order_update(actor=None, order=order, fee=D("500.00"))

    invoice = order_invoice_create(actor=None, order=order)

    assert (invoice.kind, invoice.total, fresh(order).invoice) == ("order", D("600.00"), invoice)


def test_a_cancelled_order_reopened_is_billed_again_on_a_new_invoice(order, make_user):
    first = order.invoice
    order_transition(actor=None, order=order, to_status=Status.CANCELLED, reason="Client withdrew")
    admin = make_user(Role.ADMIN)
    order_transition(actor=admin, order=order, to_status=Status.STARTED, reason="Client came back")

    second = order_invoice_create(actor=admin, order=order)

    first.refresh_from_db()
    assert first.status == "cancelled" and second.status == "draft" and fresh(order).invoice == second
    assert order.history.filter(invoice_id=first.pk).exists()


def test_changing_the_terms_changes_the_draft_and_is_refused_once_it_is_issued(order):
    order_update(actor=None, order=order, fee=D("800.00"), base_charge=D("0"))
    invoice = fresh(order).invoice
    assert [(i.source, i.amount, i.tax_amount) for i in invoice.items.all()] == [
        ("order_fee", D("800.00"), D("160.00"))
    ]
    assert invoice.total == D("960.00")

    issued(order)
    with pytest.raises(InvoiceInTheWay, match="only while the invoice is a draft"):
        order_update(actor=None, order=order, fee=D("900.00"))
    assert fresh(order).fee == D("800.00")


def test_regenerating_the_draft_keeps_the_base_charge_untaxed(order):
    invoice = invoice_regenerate(actor=None, invoice=order.invoice)

    assert [(i.source, i.tax_amount) for i in invoice.items.all()] == [
        ("order_fee", D("200.00")),
        ("disbursement", D("0.00")),
    ]
    assert invoice.total == D("1320.00")


# --- Issue, month-end -------------------------------------------------------------------------------------------


def test_issue_numbers_it_in_the_invoice_series_posts_the_charge_and_sends_the_pdf(
    order, customer, mailoutbox, django_capture_on_commit_callbacks
):
    manual = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(10)}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = issued(order)
        second = invoice_issue(actor=None, invoice=manual)

    year = first.issued_at.year
    assert (first.number, second.number) == (f"INV-{year}-000001", f"INV-{year}-000002")
    assert first.status == "issued" and first.pdf.name.endswith(f"{first.number}.pdf")
    assert receivable_account(customer).balance == D("1332.00")
    assert ledger_differences()[0] == []
    assert [message.subject.split(" from ")[0] for message in mailoutbox] == [
        f"Invoice {first.number}",
        f"Invoice {second.number}",
    ]
    assert mailoutbox[0].attachments[0][0] == f"{first.number}.pdf"
    assert status_of(order) == PaymentStatus.UNPAID


def test_month_end_bills_usage_beside_an_order_invoice_of_the_same_month_and_leaves_it_alone(customer, order_type):
    service = ServiceFactory(code="kyc_check")
    PriceAgreementFactory(customer=customer, service=service, monthly_fee=D("99"), valid_from=date(2026, 1, 1))
    with time_machine.travel(datetime(2026, 10, 15, 12, tzinfo=UTC), tick=False):
        order = order_create(actor=None, customer=customer, order_type=order_type)
        invoice_issue(actor=None, invoice=order.invoice)
    order_invoice = fresh(order).invoice
    assert order_invoice.period == date(2026, 10, 1)

    run = month_end.month_end_run(actor=None, period=date(2026, 10, 1))

    usage = Invoice.objects.get(kind="usage")
    assert (run.invoices_created, run.already_invoiced) == (1, 0)
    assert (usage.period, usage.total) == (date(2026, 10, 1), D("118.80"))
    assert [i.source for i in usage.items.all()] == ["fee"]
    again = month_end.month_end_run(actor=None, period=date(2026, 10, 1))
    assert (again.invoices_created, again.already_invoiced) == (0, 1)
    order_invoice.refresh_from_db()
    assert (order_invoice.status, order_invoice.total, order_invoice.billing_run) == ("issued", D("1320.00"), None)


# --- Payment status ---------------------------------------------------------------------------------------------


def test_payment_status_follows_real_payments_and_a_full_credit_note(order):
    assert status_of(order) == PaymentStatus.UNBILLED
    issued(order)
    assert status_of(order) == PaymentStatus.UNPAID

    pay(order, "500.00", "BANK-1")
    assert status_of(order) == PaymentStatus.PARTLY_PAID
    pay(order, "820.00", "BANK-2")
    assert status_of(order) == PaymentStatus.PAID
    assert fresh(order).invoice.status == "paid"

    order_credit(actor=None, order=order, amount=None, reason="Refund in full")
    invoice = fresh(order).invoice
    assert (invoice.status, invoice.amount_paid) == ("void", D("1320.00"))
    assert status_of(order) == PaymentStatus.REFUNDED
    assert receivable_account(order.customer).balance == D("-1320.00")  # the customer's credit, to refund


def test_a_partial_credit_after_payment_leaves_it_paid_and_one_before_makes_less_owed(order, customer, order_type):
    issued(order)
    pay(order, "1320.00", "BANK-1")
    order_credit(actor=None, order=order, amount=D("120.00"), reason="Goodwill")
    assert status_of(order) == PaymentStatus.PAID

    other = order_create(actor=None, customer=customer, order_type=order_type)
    issued(other)
    assert status_of(other) == PaymentStatus.PARTLY_PAID  # the 120.00 credit paid part of it


def test_an_issued_invoice_voided_before_any_payment_leaves_the_order_unbilled(order):
    issued(order)
    credit_note_issue(actor=None, invoice=fresh(order).invoice, reason="Billed by mistake")

    assert status_of(order) == PaymentStatus.UNBILLED


# --- Cancelling and failing -------------------------------------------------------------------------------------


def test_cancelling_an_order_cancels_its_draft(order):
    order_transition(actor=None, order=order, to_status=Status.CANCELLED, reason="Client withdrew")

    invoice = fresh(order).invoice
    assert invoice.status == "cancelled" and invoice.number is None
    assert status_of(order) == PaymentStatus.UNBILLED


def test_cancelling_an_order_voids_its_issued_invoice_with_a_full_credit_note_and_the_journal_balances(order):
    issued(order)
    pay(order, "500.00", "BANK-1")

    order_transition(actor=None, order=order, to_status=Status.CANCELLED, reason="Client withdrew")

    invoice = fresh(order).invoice
    (note,) = invoice.credit_notes.all()
    assert invoice.status == "void" and note.full
    assert (note.total, note.subtotal, note.tax) == (D("1320.00"), D("1120.00"), D("200.00"))
    assert note.reason == f"Order {order.number} cancelled: Client withdrew"
    assert receivable_account(order.customer).balance == D("-500.00")
    assert status_of(order) == PaymentStatus.REFUNDED
    differences, _, transactions = ledger_differences()
    assert differences == [] and transactions == 3


def test_a_refused_credit_note_leaves_the_order_open(order, monkeypatch):
    issued(order)

    def refuse(**kwargs):
        raise DomainError("The credit note series is closed.")

    monkeypatch.setattr("orders.services.billing.credit_note_issue", refuse)
    with pytest.raises(DomainError, match="series is closed"):
        order_transition(actor=None, order=order, to_status=Status.CANCELLED, reason="Client withdrew")

    assert fresh(order).status == Status.STARTED and fresh(order).invoice.status == "issued"


def test_an_invoice_in_approval_stops_the_cancellation_until_it_is_a_draft_again(order, people):
    billing_config_update(actor=None, customer=order.customer, approval_rule="cs_or_sales")
    approval_submit(actor=people["finance"], target=fresh(order).invoice)

    with pytest.raises(InvoiceInTheWay, match="withdraw or revert its approval"):
        order_transition(actor=None, order=order, to_status=Status.CANCELLED, reason="Client withdrew")

    assert fresh(order).status == Status.STARTED
    assert fresh(order).invoice.status == "pending_approval"


def test_a_failed_orders_partial_refund_is_a_partial_credit_note_off_the_fee(order):
    issued(order)
    pay(order, "1320.00", "BANK-1")
    order_transition(actor=None, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=None, order=order, to_status=Status.FAILED, reason="Registrar refused")

    note = order_credit(actor=None, order=order, amount=D("600.00"), reason="Half the fee back")

    assert (note.total, note.subtotal, note.tax, note.full) == (D("600.00"), D("500.00"), D("100.00"), False)
    assert fresh(order).invoice.status == "paid" and status_of(order) == PaymentStatus.PAID
    with pytest.raises(DomainError, match="at most EUR\xa0600.00") as refused:
        order_credit(actor=None, order=order, amount=D("650.00"), reason="More")
    assert refused.value.fields["amount"]
    rest = order_credit(actor=None, order=order, amount=D("720.00"), reason="All the rest")
    assert (rest.subtotal, rest.tax, rest.full) == (D("620.00"), D("100.00"), True)
    assert fresh(order).invoice.status == "void" and status_of(order) == PaymentStatus.REFUNDED
    assert ledger_differences()[0] == []


def test_partial_credits_on_the_invoice_come_off_the_taxed_fee_first_then_the_untaxed_base_charge(order):
    issued(order)  # fee 1,000.00 + 200.00 tax, base charge 120.00 untaxed

    first = order_credit(actor=None, order=order, amount=D("700.00"), reason="Part of the fee")
    invoice = fresh(order).invoice  # straight through the ledger: the order's own credit stops at the fee
    second = credit_note_issue(actor=None, invoice=invoice, amount=D("600.00"), reason="The rest and some base")

    assert (first.subtotal, first.tax) == (D("583.33"), D("116.67"))
    assert (second.subtotal, second.tax) == (D("516.67"), D("83.33"))  # 500.00 at 20 % and 100.00 untaxed
    assert first.tax + second.tax == fresh(order).invoice.tax
    assert ledger_differences()[0] == []


def test_one_partial_credit_beyond_the_fee_takes_no_more_tax_than_the_invoice_charged(order):
    issued(order)

    note = credit_note_issue(actor=None, invoice=fresh(order).invoice, amount=D("1300.00"), reason="Nearly all")

    assert (note.subtotal, note.tax) == (D("1100.00"), D("200.00"))
    assert ledger_differences()[0] == []


def test_an_order_without_an_issued_invoice_has_nothing_to_credit(order):
    with pytest.raises(DomainError, match="no issued invoice"):
        order_credit(actor=None, order=order, amount=D("10.00"), reason="Goodwill")


# --- The order page and the API ---------------------------------------------------------------------------------


def page_of(user, order: Order):
    client = Client()
    client.force_login(user)
    return client, client.get(f"/admin/orders/order/{order.pk}/change/")


def test_the_page_shows_the_money_to_finance_and_customer_success_but_not_operations(order, make_user):
    issued(order)
    pay(order, "500.00", "BANK-1")
    order.customer.csm = make_user(Role.CUSTOMER_SUCCESS)
    order.customer.save()

    for user in (make_user(Role.FINANCE), order.customer.csm):
        _, response = page_of(user, order)
        html = response.content.decode()
        assert "Payment status" in html and "Partly paid" in html, user
        assert fresh(order).invoice.number in html and "still owed EUR\xa0820.00" in html
        assert "BANK-1" in html and "EUR\xa0500.00" in html
    _, response = page_of(make_user(Role.OPERATIONS), order)
    html = response.content.decode()
    assert response.status_code == 200 and "Payment status" not in html and "BANK-1" not in html


def test_finance_creates_the_invoice_and_credits_from_the_page(customer, order_type, finance_user):
    order = order_create(actor=finance_user, customer=customer, order_type=order_type, fee=D("0"), base_charge=D("0"))
    order_update(actor=finance_user, order=order, base_charge=D("75.00"))
    client, _ = page_of(finance_user, order)

    client.post(f"/admin/orders/order/{order.pk}/create-invoice/")
    invoice = fresh(order).invoice
    assert invoice.total == D("75.00")
    invoice_issue(actor=None, invoice=invoice)
    client.post(
        f"/admin/orders/order/{order.pk}/credit/",
        {"_form_submitted": "on", "amount": "25.00", "reason": "Courier not needed"},
    )

    assert [(n.total, n.tax) for n in fresh(order).invoice.credit_notes.all()] == [(D("25.00"), D("0.00"))]


def test_the_api_shows_payment_status_and_the_invoice_with_its_payments(order, client_for, make_user):
    issued(order)
    pay(order, "500.00", "BANK-1")

    body = client_for(make_user(Role.SALES)).get(f"/api/orders/{order.pk}").json()

    assert body["payment_status"] == "partly_paid"
    invoice = body["invoice"]
    assert (invoice["number"], invoice["status"], invoice["total"], invoice["amount_paid"]) == (
        fresh(order).invoice.number,
        "issued",
        "1320.00",
        "500.00",
    )
    assert (invoice["currency"], invoice["outstanding"]) == ("EUR", "820.00")
    assert [(p["reference"], p["amount"]) for p in invoice["payments"]] == [("BANK-1", "500.00")]


def test_the_api_hides_payment_status_from_operations(order, client_for, make_user):
    body = client_for(make_user(Role.OPERATIONS)).get(f"/api/orders/{order.pk}").json()

    assert (body["payment_status"], body["invoice"]) == (None, None)


def test_the_api_bills_an_order_once_and_credits_it(customer, order_type, client_for, finance_user):
    order = order_create(actor=None, customer=customer, order_type=order_type, fee=D("0"), base_charge=D("0"))
    order_update(actor=None, order=order, fee=D("100.00"))
    api = client_for(finance_user)

    created = api.post(f"/api/orders/{order.pk}/invoice", format="json")
    again = api.post(f"/api/orders/{order.pk}/invoice", format="json")

    assert created.status_code == 201 and created.json()["invoice"]["total"] == "120.00"
    assert again.status_code == 409 and again.json()["error"]["code"] == "order_invoiced"
    issued(order)
    credited = api.post(f"/api/orders/{order.pk}/credit", {"reason": "Cancelled by us"}, format="json")
    assert credited.status_code == 200, credited.content
    assert (credited.json()["invoice"]["status"], credited.json()["payment_status"]) == ("void", "unbilled")


def test_operations_may_not_bill_or_credit_through_the_api(order, client_for, make_user):
    api = client_for(make_user(Role.OPERATIONS))

    assert api.post(f"/api/orders/{order.pk}/invoice", format="json").status_code == 403
    assert api.post(f"/api/orders/{order.pk}/credit", {"reason": "x"}, format="json").status_code == 403


def test_the_order_invoice_is_named_in_its_items_description(order):
    assert [item.description for item in order.invoice.items.all()] == [
        f"UK company formation, order {order.number}: fee",
        f"UK company formation, order {order.number}: base charge (disbursement, no tax)",
    ]
    assert InvoiceItem.Source.DISBURSEMENT in InvoiceItem.UNTAXED_SOURCES
