"""Payments to a chosen invoice, and moving a payment's money between the open invoices of its customer
(ledger.services.payments: payment_record's `invoice`, payment_reallocate)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection

from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from catalog.services import customer_update
from catalog.tests.factories import CustomerFactory
from ledger.models import Allocation, CreditNote, Invoice, Leg, Payment, Transaction
from ledger.selectors import customer_balance, payment_allocated_invoices
from ledger.services import invoices as invoice_services
from ledger.services.credit import available_credit
from ledger.services.invoices import credit_note_issue, invoice_cancel, invoice_create_manual, invoice_issue
from ledger.services.payments import payment_reallocate, payment_record
from ledger.services.reconciliation import ledger_reconcile
from ledger.tests.test_concurrency import run_at_once

pytestmark = pytest.mark.django_db
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def draft(customer, amount) -> Invoice:
    return invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Checks", "quantity": D(1), "unit_price": D(amount)}]
    )


def issued(customer, amount) -> Invoice:
    return invoice_issue(actor=None, invoice=draft(customer, amount), send=False)


def pay(customer, amount, reference="BANK-1", *, invoice=None, actor=None) -> Payment:
    return payment_record(
        actor=actor,
        customer=customer,
        amount=D(amount),
        received_at=RECEIVED,
        bank_reference=reference,
        invoice=invoice,
    )


def state(invoice: Invoice) -> tuple[str, D]:
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid


def allocations_of(payment: Payment) -> list[tuple[str, D]]:
    return [(a.invoice.number, a.amount) for a in payment.allocations.select_related("invoice").order_by("pk")]


def assert_allocations_add_up(customer) -> None:
    """Every payment's allocations and unallocated part make its amount, every invoice's allocations its
    amount_paid, credit never idles beside an open invoice, and the journal reconciles."""
    for payment in Payment.objects.filter(customer=customer):
        assert sum((a.amount for a in payment.allocations.all()), payment.unallocated) == payment.amount
    open_total = D(0)
    for invoice in Invoice.objects.filter(customer=customer):
        assert sum((a.amount for a in invoice.allocations.all()), D(0)) == invoice.amount_paid
        if invoice.status in Invoice.OPEN:
            open_total += invoice.outstanding
    assert min(open_total, available_credit(customer)) == 0
    assert open_total - available_credit(customer) == customer_balance(customer)
    assert ledger_reconcile().balanced


@pytest.fixture
def northwind(db):
    """A USD customer without tax (the demo's Northwind)."""
    return CustomerFactory(client_id="NORTHWIND-002", name="Northwind Trading", currency="USD")


@pytest.fixture
def two_open(northwind):
    """INV-…-000001 (older) and INV-…-000002 (newer), both 191.18 USD and open."""
    return issued(northwind, "191.18"), issued(northwind, "191.18")


# --- A payment to a chosen invoice --------------------------------------------------------------------------------


def test_without_a_choice_the_payment_still_pays_the_oldest_invoice(northwind, two_open):
    older, newer = two_open

    pay(northwind, "191.18")

    assert state(older) == (Invoice.Status.PAID, D("191.18"))
    assert state(newer) == (Invoice.Status.ISSUED, D("0.00"))


def test_a_payment_for_the_newer_invoice_pays_it_and_leaves_the_older_open(northwind, two_open):
    older, newer = two_open

    payment = pay(northwind, "191.18", invoice=newer)

    assert state(newer) == (Invoice.Status.PAID, D("191.18"))
    assert newer.paid_at is not None
    assert state(older) == (Invoice.Status.ISSUED, D("0.00"))
    assert allocations_of(payment) == [(newer.number, D("191.18"))]
    assert payment.unallocated == D("0.00")
    assert_allocations_add_up(northwind)


def test_what_the_chosen_invoice_does_not_need_goes_to_the_oldest_then_stays_as_credit(northwind, two_open):
    older, newer = two_open

    payment = pay(northwind, "400.00", invoice=newer)

    assert allocations_of(payment) == [(newer.number, D("191.18")), (older.number, D("191.18"))]
    assert (state(older)[0], state(newer)[0]) == (Invoice.Status.PAID, Invoice.Status.PAID)
    assert payment.unallocated == D("17.64") == available_credit(northwind)
    assert_allocations_add_up(northwind)


def test_a_part_payment_of_the_chosen_invoice_leaves_it_open_and_the_older_untouched(northwind, two_open):
    older, newer = two_open

    pay(northwind, "100.00", invoice=newer)

    newer.refresh_from_db()
    assert (newer.status, newer.outstanding) == (Invoice.Status.ISSUED, D("91.18"))
    assert state(older) == (Invoice.Status.ISSUED, D("0.00"))


def _other_customers(northwind, two_open):
    return issued(CustomerFactory(currency="USD"), "191.18")


def _draft(northwind, two_open):
    return draft(northwind, "50.00")


def _paid(northwind, two_open):
    pay(northwind, "191.18", "EARLIER")
    return two_open[0]


def _void(northwind, two_open):
    credit_note_issue(actor=None, invoice=two_open[1], reason="Billed twice")
    return two_open[1]


def _cancelled(northwind, two_open):
    return invoice_cancel(actor=None, invoice=draft(northwind, "50.00"))


def _in_another_currency(northwind, two_open):
    customer_update(actor=None, customer=northwind, currency="EUR")  # the invoice stays in USD
    northwind.refresh_from_db()
    return two_open[1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_other_customers, r"INV-\d{4}-000003 belongs to another customer\."),
        (_draft, r"Draft invoice for .+, \w+ \d{4} is draft, not open\."),
        (_paid, r"INV-\d{4}-000001 is paid, not open\."),
        (_void, r"INV-\d{4}-000002 is void, not open\."),
        (_cancelled, r"Draft invoice for .+, \w+ \d{4} is cancelled, not open\."),
        (_in_another_currency, r"INV-\d{4}-000002 is in USD, not EUR\."),
    ],
    ids=["another customer's", "draft", "paid", "void", "cancelled", "another currency"],
)
def test_a_payment_to_an_invoice_that_cannot_take_it_is_refused_naming_the_field(northwind, two_open, make, message):
    invoice = make(northwind, two_open)
    payments, transactions = Payment.objects.count(), Transaction.objects.count()

    with pytest.raises(DomainError) as refused:
        pay(northwind, "191.18", "BANK-NEW", invoice=invoice)

    assert list(refused.value.fields) == ["invoice"]
    assert re.fullmatch(message, refused.value.fields["invoice"][0]), refused.value.fields
    assert (Payment.objects.count(), Transaction.objects.count()) == (payments, transactions)


# --- Moving a payment between invoices ----------------------------------------------------------------------------


@pytest.fixture
def wrongly_allocated(northwind, two_open):
    """The reported case: 191.18 meant for the newer invoice, set against the older one."""
    older, newer = two_open
    return pay(northwind, "191.18"), older, newer


def test_a_wrong_allocation_moves_to_the_right_invoice_and_the_journal_stays_as_it_was(
    northwind, wrongly_allocated, finance_user
):
    payment, older, newer = wrongly_allocated
    legs, balance = Leg.objects.count(), customer_balance(northwind)

    moved = payment_reallocate(actor=finance_user, payment=payment, invoice=newer, from_invoice=older)

    assert (moved.invoice, moved.amount) == (newer, D("191.18"))
    assert state(newer) == (Invoice.Status.PAID, D("191.18"))
    assert state(older) == (Invoice.Status.ISSUED, D("0.00"))
    assert older.paid_at is None
    payment.refresh_from_db()
    assert payment.unallocated == D("0.00")
    # Every allocation is kept: the move is a negative row on the invoice left and a new one on the invoice reached.
    assert allocations_of(payment) == [
        (older.number, D("191.18")),
        (older.number, D("-191.18")),
        (newer.number, D("191.18")),
    ]
    assert payment_allocated_invoices(payment) == [(newer, D("191.18"))]
    assert (Leg.objects.count(), customer_balance(northwind)) == (legs, balance)
    assert_allocations_add_up(northwind)


def test_each_row_of_a_move_is_in_the_history_with_who_moved_it(wrongly_allocated, finance_user):
    payment, older, newer = wrongly_allocated

    payment_reallocate(actor=finance_user, payment=payment, invoice=newer, from_invoice=older)

    versions = Allocation.history.order_by("history_id")
    assert [(v.invoice_id, v.amount, v.history_type, v.history_user) for v in versions] == [
        (older.pk, D("191.18"), "+", None),  # booked by a job, no user
        (older.pk, D("-191.18"), "+", finance_user),
        (newer.pk, D("191.18"), "+", finance_user),
    ]
    older_states = [(v.status, v.amount_paid) for v in older.history.order_by("history_date", "history_id")]
    assert older_states[-2:] == [(Invoice.Status.PAID, D("191.18")), (Invoice.Status.ISSUED, D("0.00"))]
    assert older.history.latest().history_user == finance_user


def test_an_invoice_left_past_its_due_date_is_overdue_again(wrongly_allocated):
    payment, older, newer = wrongly_allocated
    Invoice.objects.filter(pk=older.pk).update(due_date=billing_today() - timedelta(days=3))

    payment_reallocate(actor=None, payment=payment, invoice=newer, from_invoice=older)

    assert state(older) == (Invoice.Status.OVERDUE, D("0.00"))


def test_part_of_an_allocation_moves_and_both_invoices_stay_open(northwind, wrongly_allocated):
    payment, older, newer = wrongly_allocated

    payment_reallocate(actor=None, payment=payment, invoice=newer, from_invoice=older, amount=D("91.18"))

    assert state(older) == (Invoice.Status.ISSUED, D("100.00"))
    assert state(newer) == (Invoice.Status.ISSUED, D("91.18"))
    assert payment_allocated_invoices(payment) == [(older, D("100.00")), (newer, D("91.18"))]
    assert_allocations_add_up(northwind)


def test_without_an_amount_as_much_moves_as_the_invoice_still_owes(northwind, wrongly_allocated):
    payment, older, newer = wrongly_allocated
    pay(northwind, "150.00", "BANK-2", invoice=newer)  # newer owes 41.18 now

    payment_reallocate(actor=None, payment=payment, invoice=newer, from_invoice=older)

    assert state(newer) == (Invoice.Status.PAID, D("191.18"))
    assert state(older) == (Invoice.Status.ISSUED, D("150.00"))  # 41.18 left it
    assert_allocations_add_up(northwind)


def test_a_move_back_and_forth_keeps_every_row_and_ends_where_it_started(northwind, wrongly_allocated):
    payment, older, newer = wrongly_allocated

    payment_reallocate(actor=None, payment=payment, invoice=newer, from_invoice=older)
    payment_reallocate(actor=None, payment=payment, invoice=older, from_invoice=newer)

    assert (state(older), state(newer)) == ((Invoice.Status.PAID, D("191.18")), (Invoice.Status.ISSUED, D("0.00")))
    there, back = D("191.18"), D("-191.18")
    assert [amount for _, amount in allocations_of(payment)] == [there, back, there, back, there]
    assert_allocations_add_up(northwind)


@pytest.fixture
def credit_beside_an_open_invoice(northwind, monkeypatch):
    """A payment's unallocated credit next to an open invoice: data from before credit was set against every
    invoice at issue can look like this (today issue settles it at once, so it is set up by skipping that)."""
    payment = pay(northwind, "300.00", "BANK-EARLY")
    with monkeypatch.context() as patch:
        patch.setattr(invoice_services, "apply_customer_credit", lambda **kwargs: [])
        older, newer = issued(northwind, "191.18"), issued(northwind, "191.18")
    return payment, older, newer


def test_the_unallocated_part_of_a_payment_goes_to_a_chosen_invoice(northwind, credit_beside_an_open_invoice):
    payment, older, newer = credit_beside_an_open_invoice

    payment_reallocate(actor=None, payment=payment, invoice=newer)

    assert state(newer) == (Invoice.Status.PAID, D("191.18"))
    # What is left is no longer idle beside an open invoice: it goes to the oldest, as everywhere.
    assert state(older) == (Invoice.Status.ISSUED, D("108.82"))
    payment.refresh_from_db()
    assert payment.unallocated == D("0.00")
    assert allocations_of(payment) == [(newer.number, D("191.18")), (older.number, D("108.82"))]
    assert_allocations_add_up(northwind)


def test_an_amount_of_the_unallocated_part_goes_to_a_chosen_invoice(northwind, credit_beside_an_open_invoice):
    payment, older, newer = credit_beside_an_open_invoice

    payment_reallocate(actor=None, payment=payment, invoice=newer, amount=D("50.00"))

    # Then the rest, oldest first: the older invoice in full, the newer with the 58.82 left.
    assert allocations_of(payment) == [
        (newer.number, D("50.00")),
        (older.number, D("191.18")),
        (newer.number, D("58.82")),
    ]
    assert state(older) == (Invoice.Status.PAID, D("191.18"))
    assert state(newer) == (Invoice.Status.ISSUED, D("108.82"))
    assert_allocations_add_up(northwind)


def _move(payment, older, newer, **changes):
    arguments = {"payment": payment, "invoice": newer, "from_invoice": older} | changes
    return payment_reallocate(actor=None, **arguments)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda p, o, n: _move(p, o, issued(CustomerFactory(currency="USD"), "10.00")),
            "invoice",
            r"INV-\d{4}-\d{6} belongs to another customer\.",
        ),
        (lambda p, o, n: _move(p, o, o), "invoice", r"Choose another invoice than the one the money leaves\."),
        (
            lambda p, o, n: _move(p, n, o),
            "invoice",
            r"INV-\d{4}-000001 is paid, not open\.",
        ),
        (lambda p, o, n: _move(p, n, issued(o.customer, "5.00")), "from_invoice", r"Nothing of this payment is on .*"),
        (lambda p, o, n: _move(p, None, n), "from_invoice", r"The payment is fully allocated: .*"),
        (lambda p, o, n: _move(p, o, n, amount=D("191.19")), "amount", r"At most USD\xa0191\.18\."),
        (lambda p, o, n: _move(p, o, n, amount=D("0")), "amount", r"Must be greater than zero\."),
        (lambda p, o, n: _move(p, o, n, amount=D("1.001")), "amount", r"At most two decimal places\."),
        (
            lambda p, o, n: _move(p, o, draft(o.customer, "5.00")),
            "invoice",
            r"Draft invoice for .+, \w+ \d{4} is draft, not open\.",
        ),
    ],
    ids=[
        "to another customer's invoice",
        "to the same invoice",
        "to a paid invoice",
        "from an invoice it is not on",
        "nothing unallocated",
        "more than it holds",
        "zero",
        "three decimals",
        "to a draft",
    ],
)
def test_a_move_that_cannot_be_made_is_refused_naming_the_field_and_changes_nothing(
    wrongly_allocated, change, field, message
):
    payment, older, newer = wrongly_allocated
    allocations = list(Allocation.objects.values_list("pk", "invoice", "amount"))

    with pytest.raises(DomainError) as refused:
        change(payment, older, newer)

    assert list(refused.value.fields) == [field]
    assert re.fullmatch(message, refused.value.fields[field][0]), refused.value.fields
    assert list(Allocation.objects.values_list("pk", "invoice", "amount")) == allocations
    assert (state(older), state(newer)) == ((Invoice.Status.PAID, D("191.18")), (Invoice.Status.ISSUED, D("0.00")))


def test_no_more_moves_to_an_invoice_than_it_still_owes(northwind, credit_beside_an_open_invoice):
    payment, older, newer = credit_beside_an_open_invoice

    with pytest.raises(DomainError) as refused:
        payment_reallocate(actor=None, payment=payment, invoice=newer, amount=D("191.19"))

    assert refused.value.fields == {"amount": ["At most USD\xa0191.18."]}
    assert not Allocation.objects.exists()


def test_a_payment_is_not_moved_off_a_void_invoice(northwind, wrongly_allocated):
    """Its full credit note already gave the customer, as credit, what was paid on it: moving the payment too
    would pay the other invoice twice over."""
    payment, older, newer = wrongly_allocated
    credit_note_issue(actor=None, invoice=older, reason="Billed twice")  # its credit pays the newer invoice
    third = issued(northwind, "20.00")

    with pytest.raises(DomainError) as refused:
        payment_reallocate(actor=None, payment=payment, invoice=third, from_invoice=older)

    assert refused.value.code == "invoice_not_open"
    assert refused.value.fields == {"from_invoice": [f"{older.number} is void."]}
    assert_allocations_add_up(northwind)


# --- At once, on PostgreSQL ---------------------------------------------------------------------------------------


def at_once_on_postgresql(test):
    """Each job in its own thread and connection (test_concurrency.run_at_once): SQLite serialises every writer."""
    skip = pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks and concurrent transactions need PostgreSQL"
    )
    return skip(pytest.mark.postgres(pytest.mark.django_db(transaction=True)(test)))


def assert_no_payment_left_negative_on_an_invoice() -> None:
    held: dict[tuple[int, int], D] = {}
    for payment_id, invoice_id, amount in Allocation.objects.values_list("payment_id", "invoice_id", "amount"):
        held[payment_id, invoice_id] = held.get((payment_id, invoice_id), D(0)) + amount
    assert all(amount >= 0 for amount in held.values()), held


@at_once_on_postgresql
def test_two_moves_of_the_same_allocation_at_once_move_it_once(northwind, two_open):
    older, newer = two_open
    third = issued(northwind, "191.18")
    payment = pay(northwind, "191.18")  # to the older invoice
    everything = {"from_invoice": older, "amount": D("191.18")}

    results = run_at_once(
        lambda: payment_reallocate(actor=None, payment=payment, invoice=newer, **everything),
        lambda: payment_reallocate(actor=None, payment=payment, invoice=third, **everything),
    )

    moved = [result for result in results if isinstance(result, Allocation)]
    refused = [result for result in results if not isinstance(result, Allocation)]
    assert len(moved) == 1, results
    assert [(type(error), error.code) for error in refused] == [(DomainError, "nothing_to_move")]
    assert payment_allocated_invoices(payment) == [(moved[0].invoice, D("191.18"))]
    assert state(older) == (Invoice.Status.ISSUED, D("0.00"))
    assert_allocations_add_up(northwind)


@at_once_on_postgresql
def test_moves_payments_credit_and_issue_at_once_on_one_customer_end_consistent(northwind, two_open):
    """Moves of one allocation to two invoices, a payment naming one of them, a credit note and a new invoice,
    all at once: nothing deadlocks or fails unexpectedly, and every sum and status holds."""
    older, newer = two_open
    third = issued(northwind, "50.00")
    payment = pay(northwind, "191.18")  # to the older invoice
    extra = draft(northwind, "30.00")

    results = run_at_once(
        lambda: payment_reallocate(actor=None, payment=payment, invoice=newer, from_invoice=older),
        lambda: payment_reallocate(actor=None, payment=payment, invoice=third, from_invoice=older),
        lambda: pay(northwind, "20.00", "BANK-AT-ONCE", invoice=third),
        lambda: credit_note_issue(actor=None, invoice=newer, reason="Discount", amount=D("10.00")),
        lambda: invoice_issue(actor=None, invoice=extra, send=False),
    )

    moves, payment_for_third, note, issue = results[:2], *results[2:]
    # Each move takes what is still on the older invoice and fits its target: both may, in part, or one only.
    assert any(isinstance(result, Allocation) for result in moves), results
    assert all(isinstance(result, Allocation) or result.code == "nothing_to_move" for result in moves), results
    # The payment naming the third invoice finds it paid when a move got there first.
    assert isinstance(payment_for_third, Payment) or payment_for_third.code == "invoice_not_open", results
    assert (type(note), type(issue)) == (CreditNote, Invoice), results
    for invoice in Invoice.objects.filter(customer=northwind):
        assert (invoice.status == Invoice.Status.PAID) == (invoice.outstanding == 0), (invoice, invoice.status)
    assert_no_payment_left_negative_on_an_invoice()
    assert_allocations_add_up(northwind)
