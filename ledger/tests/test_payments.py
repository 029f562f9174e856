from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from billing_project.errors import DomainError
from ledger.models import Account, Adjustment, Allocation, Invoice, Payment, Transaction
from ledger.selectors import customer_balance, customer_statement
from ledger.services import credit
from ledger.services.credit import FIRST_BATCH, apply_customer_credit, available_credit
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.journal import cash_account
from ledger.services.payments import DuplicatePayment, adjustment_record, payment_record, refund_record

pytestmark = pytest.mark.django_db
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def issued(customer, amount):
    invoice = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Service", "quantity": D(1), "unit_price": D(amount)}]
    )
    return invoice_issue(actor=None, invoice=invoice, send=False)


def pay(customer, amount, reference):
    return payment_record(
        actor=None, customer=customer, amount=D(amount), received_at=RECEIVED, bank_reference=reference
    )


@pytest.fixture
def customer(priced_customer):
    customer, _ = priced_customer
    return customer  # tax 20%: an invoice of x bills 1.2x


def test_a_payment_goes_to_the_oldest_open_invoices_first(customer):
    first, second = issued(customer, 100), issued(customer, 50)  # 120.00 and 60.00

    payment = pay(customer, "150.00", "BANK-1")

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.amount_paid, first.paid_at is not None) == (Invoice.Status.PAID, D("120.00"), True)
    assert (second.status, second.amount_paid, second.outstanding) == (Invoice.Status.ISSUED, D("30.00"), D("30.00"))
    assert payment.unallocated == D("0.00")
    assert customer_balance(customer) == D("30.00")
    assert cash_account("EUR").balance == D("150.00")


def test_an_excess_stays_as_credit_and_pays_the_next_invoice(customer):
    pay(customer, "100.00", "BANK-1")
    assert (available_credit(customer), customer_balance(customer)) == (D("100.00"), D("-100.00"))

    invoice = issued(customer, 50)  # 60.00

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (Invoice.Status.PAID, D("60.00"))
    assert available_credit(customer) == D("40.00")
    assert customer_balance(customer) == D("-40.00")


def test_the_same_bank_line_cannot_be_booked_twice(customer):
    pay(customer, "10.00", "BANK-1")

    with pytest.raises(DuplicatePayment, match="already booked"):
        pay(customer, "10.00", " BANK-1 ")
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYMENT).count() == 1


@pytest.mark.parametrize(("amount", "message"), [("0", "positive"), ("-5", "positive"), ("1.001", "two decimal")])
def test_a_bad_amount_is_refused(customer, amount, message):
    with pytest.raises(DomainError, match=message):
        pay(customer, amount, "BANK-X")
    assert not Transaction.objects.exists()


def test_a_refund_pays_back_credit_and_no_more(customer):
    pay(customer, "100.00", "BANK-1")

    with pytest.raises(DomainError, match="has EUR\xa0100.00 of credit"):
        refund_record(actor=None, customer=customer, amount=D("100.01"), reason="Closing the account")
    refund_record(actor=None, customer=customer, amount=D("60.00"), reason="Closing the account")

    assert (available_credit(customer), customer_balance(customer)) == (D("40.00"), D("-40.00"))
    assert cash_account("EUR").balance == D("40.00")


def test_a_credit_note_on_a_paid_invoice_becomes_credit(customer):
    invoice = issued(customer, 100)
    pay(customer, "120.00", "BANK-1")

    note = credit_note_issue(actor=None, invoice=invoice, reason="Discount agreed", amount=D("24.00"))

    invoice.refresh_from_db()
    assert (invoice.status, note.unallocated) == (Invoice.Status.PAID, D("24.00"))
    assert (available_credit(customer), customer_balance(customer)) == (D("24.00"), D("-24.00"))


def test_adjustments_need_a_reason_and_move_the_balance_both_ways(customer):
    with pytest.raises(DomainError, match="reason"):
        adjustment_record(actor=None, customer=customer, direction="debit", amount=D(5), reason=" ")

    adjustment_record(actor=None, customer=customer, direction=Adjustment.Direction.DEBIT, amount=D(5), reason="Fee")
    adjustment_record(actor=None, customer=customer, direction=Adjustment.Direction.CREDIT, amount=D(2), reason="Oops")

    assert customer_balance(customer) == D("3.00")
    assert Account.objects.get(code="adjustments:EUR").balance == D("-3.00")


def test_the_statement_lists_every_movement_with_the_balance_after(customer):
    issued(customer, 100)
    pay(customer, "50.00", "BANK-1")
    adjustment_record(actor=None, customer=customer, direction="credit", amount=D(10), reason="Goodwill")

    statement = customer_statement(customer)

    assert [(line.kind, line.amount, line.balance_after) for line in statement] == [
        ("charge", D("120.00"), D("120.00")),
        ("payment", D("-50.00"), D("70.00")),
        ("adjustment", D("-10.00"), D("60.00")),
    ]
    assert statement[1].reference == "BANK-1"


# --- Credit applied without reading the customer's history ------------------------------------------------------


def test_with_no_open_invoice_credit_is_neither_read_nor_locked(customer):
    for number in range(5):
        pay(customer, "10.00", f"BANK-{number}")  # all of it stays as credit

    with CaptureQueriesContext(connection) as queries:
        assert apply_customer_credit(customer=customer, actor=None) == []

    assert len(queries) == 1, [query["sql"] for query in queries]
    assert '"ledger_invoice"' in queries[0]["sql"] and '"ledger_payment"' not in queries[0]["sql"]


def cost_of_one_payment(customer, reference: str, monkeypatch) -> tuple[int, int]:
    """The queries one payment_record makes, and the rows it loads into models."""
    loaded = []
    from_db = Model.from_db.__func__

    def counted(cls, db, field_names, values):
        loaded.append(cls)
        return from_db(cls, db, field_names, values)

    with monkeypatch.context() as patch, CaptureQueriesContext(connection) as queries:
        patch.setattr(Model, "from_db", classmethod(counted))
        pay(customer, "10.00", reference)
    return len(queries), len(loaded)


@pytest.mark.parametrize("open_invoices", [0, 3], ids=["all credit", "set against open invoices"])
def test_a_payment_costs_the_same_however_many_came_before(customer, open_invoices, monkeypatch):
    for _ in range(open_invoices):
        issued(customer, 1000)  # 1,200.00 each: more than all the payments below
    for number in range(2):
        pay(customer, "10.00", f"EARLY-{number}")
    few = cost_of_one_payment(customer, "AFTER-FEW", monkeypatch)
    for number in range(3 * FIRST_BATCH):  # more than a batch of credit (or of spent payments) before it
        pay(customer, "10.00", f"MORE-{number}")

    assert cost_of_one_payment(customer, "AFTER-MANY", monkeypatch) == few  # (queries, rows loaded)
    expected_credit = D("0.00") if open_invoices else D("10.00") * (4 + 3 * FIRST_BATCH)
    assert available_credit(customer) == expected_credit
    assert Allocation.objects.filter(invoice__customer=customer).count() == (
        4 + 3 * FIRST_BATCH if open_invoices else 0
    )


def test_credit_read_in_batches_pays_the_oldest_payments_and_credit_notes_first(customer, monkeypatch):
    monkeypatch.setattr(credit, "FIRST_BATCH", 2)
    monkeypatch.setattr(credit, "LAST_BATCH", 3)
    paid = issued(customer, 100)  # 120.00
    pay(customer, "120.00", "PAYS-IT")
    note = credit_note_issue(actor=None, invoice=paid, reason="Discount", amount=D("24.00"))  # 24.00 of credit
    day = timedelta(hours=1)  # hours, not days: a receipt is dated at most a day ahead
    # Booked out of date order, two at the same time: the oldest (then the lowest id) pays first.
    for reference, received_at in [
        ("LATE", note.issued_at + 2 * day),
        ("OLDEST", note.issued_at - 3 * day),
        ("SAME-DAY-1", note.issued_at - day),
        ("SAME-DAY-2", note.issued_at - day),
        ("OLD", note.issued_at - 2 * day),
        ("LATER", note.issued_at + 3 * day),
        ("LATEST", note.issued_at + 4 * day),
    ]:
        payment_record(
            actor=None, customer=customer, amount=D("10.00"), received_at=received_at, bank_reference=reference
        )

    invoice = issued(customer, 60)  # 72.00: 40.00 of payments, the note's 24.00, then 8.00 of LATE

    allocations = Allocation.objects.filter(invoice=invoice).select_related("payment", "credit_note").order_by("id")
    assert [(a.payment.bank_reference if a.payment else a.credit_note.number, a.amount) for a in allocations] == [
        ("OLDEST", D("10.00")),
        ("OLD", D("10.00")),
        ("SAME-DAY-1", D("10.00")),
        ("SAME-DAY-2", D("10.00")),
        (note.number, D("24.00")),
        ("LATE", D("8.00")),
    ]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.outstanding) == (Invoice.Status.PAID, D("0.00"))
    assert available_credit(customer) == D("22.00") == -customer_balance(customer)

    refund_record(actor=None, customer=customer, amount=D("12.00"), reason="Closing")  # LATE's 2.00, then LATER

    left = dict(Payment.objects.filter(bank_reference__startswith="LATE").values_list("bank_reference", "unallocated"))
    assert left == {"LATE": D("0.00"), "LATER": D("0.00"), "LATEST": D("10.00")}
