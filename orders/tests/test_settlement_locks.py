"""Settlements under real concurrency (DESIGN.md, "Settlements"): recalculation is idempotent. Several callers
settling one ended order at once, or settling it while a receipt, an expense or a credit note arrives, wait for
each other on the order's lock and leave one settlement per change; the unique constraints hold the same line
should a path ever forget the lock.

The threaded tests need PostgreSQL (SQLite runs one writer at a time, so these races cannot happen there); the
constraints themselves are checked on both.
"""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.roles import Role
from approvals.services import approval_approve, approval_reject, request_for
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_issue
from ledger.services.journal import payable_account
from ledger.services.payments import payment_record
from ledger.tests.test_concurrency import assert_chains_unbroken, run_at_once
from orders.models import Expense, Order, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.billing import order_credit
from orders.services.expenses import expense_record
from orders.services.orders import order_create, order_transition
from orders.services.settlements import _Inputs, order_settle
from orders.tests.factories import OrderTypeFactory

on_postgres = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent transactions need PostgreSQL; SQLite runs one writer at a time",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
Status = Order.Status
CALLERS = 6


def threaded(test):
    for mark in reversed(on_postgres):
        test = mark(test)
    return test


@pytest.fixture
def cast(make_user):
    return {
        "maker": make_user(Role.FINANCE, email="maker@countinghouse.example"),
        "checker": make_user(Role.FINANCE, email="checker@countinghouse.example"),
    }


@pytest.fixture
def ended(db, cast):
    """DESIGN.md's order for a partner at 30 %: billed 1,320.00, 660.00 of it paid, 150.00 of expenses, completed;
    its first settlement calculated (500.00 of the fee + 60.00 of the base charge − 150.00 = 410.00, × 30 % =
    123.00)."""
    customer = CustomerFactory(currency="EUR")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    partner = PartnerFactory(name="Formation Partners LLP")
    revenue_share_agreement_create(actor=None, partner=partner, percentage=D("30"), valid_from=date(2026, 1, 1))
    order_type = OrderTypeFactory(default_fee=D("1000.00"), default_base_charge=D("120.00"))
    order = order_create(actor=cast["maker"], customer=customer, order_type=order_type, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice, send=False)
    pay(order, "660.00", "BANK-HALF")
    spend(order, cast["maker"], "150.00")
    order_transition(actor=cast["maker"], order=order, to_status=Status.IN_PROGRESS)
    order = order_transition(actor=cast["maker"], order=order, to_status=Status.COMPLETED)
    (first,) = settlements(order)
    assert (first.status, first.share) == (Settlement.Status.CALCULATED, D("123.00"))
    return order


def pay(order: Order, amount: str, reference: str):
    return payment_record(
        actor=None, customer=order.customer, amount=D(amount), received_at=RECEIVED, bank_reference=reference
    )


def spend(order: Order, actor, amount: str) -> Expense:
    return expense_record(
        actor=actor, order=order, amount=D(amount), date=date(2026, 11, 2), payee="Courier", category="courier"
    )


def settlements(order: Order) -> list[Settlement]:
    return list(Settlement.objects.filter(order=order).order_by("sequence"))


def approve(settlement: Settlement, checker) -> None:
    approval_approve(actor=checker, request=request_for(settlement), comment="Checked")


def assert_settled_by_a_fresh_calculation(order: Order) -> Settlement:
    """One settlement per change, numbered 1, 2, …; at most one calculated; what the approved ones gave plus the
    calculated one is the share a fresh calculation gives; the partner's payable is what was approved."""
    order = Order.objects.select_related("partner", "order_type").get(pk=order.pk)
    rows = settlements(order)
    assert [row.sequence for row in rows] == list(range(1, len(rows) + 1))
    live = [row for row in rows if row.status != Settlement.Status.VOID]
    pending = [row for row in live if row.status == Settlement.Status.CALCULATED]
    assert len(pending) <= 1
    fresh = D(_Inputs([order]).calculate(order)["share"])
    assert live[-1].share == fresh, (live[-1].calculation, fresh)
    approved = sum((row.amount for row in live if row.status == Settlement.Status.APPROVED), D("0.00"))
    assert approved + sum((row.amount for row in pending), D("0.00")) == fresh
    assert -payable_account(order.partner, order.currency).balance == approved
    assert_chains_unbroken()
    return live[-1]


def no_errors(results: list) -> list:
    """A Settlement, or None when nothing changed; never an exception (an IntegrityError would be a 500)."""
    failures = [result for result in results if isinstance(result, Exception)]
    assert failures == [], failures
    return results


# --- the constraints themselves (both databases) ------------------------------------------------------------------


def copy_of(settlement: Settlement, **changes) -> Settlement:
    fields = {
        field.attname: getattr(settlement, field.attname)
        for field in Settlement._meta.concrete_fields
        if not field.primary_key
    }
    return Settlement(**{**fields, **changes})


@pytest.mark.django_db
def test_the_database_refuses_a_second_settlement_for_the_same_change(ended):
    (first,) = settlements(ended)
    duplicate = copy_of(first, status=Settlement.Status.VOID, voided_at=first.calculated_at)

    with pytest.raises(IntegrityError, match="settlement_once_per_change|UNIQUE"), transaction.atomic():
        duplicate.save()
    assert settlements(ended) == [first]


@pytest.mark.django_db
def test_the_database_refuses_a_second_calculated_settlement_for_one_order(ended):
    (first,) = settlements(ended)
    second = copy_of(first, sequence=2)

    with pytest.raises(IntegrityError, match="settlement_one_calculated_per_order|UNIQUE"), transaction.atomic():
        second.save()
    assert settlements(ended) == [first]


# --- under real concurrency (PostgreSQL) --------------------------------------------------------------------------


@threaded
def test_settling_one_order_many_times_at_once_makes_one_new_settlement(ended, cast):
    (first,) = settlements(ended)
    approval_reject(actor=cast["checker"], request=request_for(first), comment="Recalculate it")

    results = no_errors(run_at_once(*[lambda: order_settle(actor=None, order=ended) for _ in range(CALLERS)]))

    made = [result for result in results if result is not None]
    assert len(made) == 1 and results.count(None) == CALLERS - 1
    assert [(row.sequence, row.status) for row in settlements(ended)] == [
        (1, Settlement.Status.VOID),
        (2, Settlement.Status.CALCULATED),
    ]
    assert assert_settled_by_a_fresh_calculation(ended).share == D("123.00")


@threaded
@pytest.mark.parametrize("approved_first", [False, True], ids=["calculated", "approved"])
@pytest.mark.parametrize("change", ["expense", "payment"])
def test_settling_while_a_change_arrives_makes_one_settlement_for_the_change(ended, cast, change, approved_first):
    if approved_first:
        approve(settlements(ended)[0], cast["checker"])
    changes = {
        "expense": lambda: spend(ended, cast["maker"], "50.00"),
        "payment": lambda: pay(ended, "660.00", "BANK-REST"),
    }

    results = run_at_once(changes[change], *[lambda: order_settle(actor=None, order=ended) for _ in range(CALLERS)])

    no_errors(results)
    # The change settles the order in its own transaction; the callers find nothing more to do, before or after.
    assert results[1:] == [None] * CALLERS
    rows = settlements(ended)
    assert len(rows) == 2
    expected = {"expense": D("108.00"), "payment": D("291.00")}[change]  # 30 % of 360.00, or of 970.00
    latest = assert_settled_by_a_fresh_calculation(ended)
    assert (latest.sequence, latest.share) == (2, expected)
    assert latest.amount == (expected - D("123.00") if approved_first else expected)


@threaded
@pytest.mark.parametrize("approved_first", [False, True], ids=["calculated", "approved"])
def test_a_payment_an_expense_and_a_credit_at_once_leave_the_books_reconciled_and_the_share_fresh(
    ended, cast, approved_first
):
    if approved_first:
        approve(settlements(ended)[0], cast["checker"])

    results = run_at_once(
        lambda: pay(ended, "300.00", "BANK-MORE"),
        lambda: spend(ended, cast["maker"], "40.00"),
        lambda: order_credit(actor=cast["maker"], order=ended, amount=D("120.00"), reason="Goodwill"),
        lambda: order_settle(actor=None, order=ended),
        lambda: order_settle(actor=None, order=ended),
    )

    no_errors(results)
    latest = assert_settled_by_a_fresh_calculation(ended)
    assert len(settlements(ended)) <= 1 + 3  # at most one new settlement per change
    # Whichever order the changes took: 1,320.00 billed, 120.00 credited off the fee, 960.00 paid, split 864.00
    # (fee with tax: 720.00 without) and 96.00 (base charge); less 190.00 of expenses: net 626.00, 30 % = 187.80.
    assert (latest.net, latest.share) == (D("626.00"), D("187.80"))
    order = Order.objects.select_related("partner", "order_type").get(pk=ended.pk)
    assert latest.calculation == _Inputs([order]).calculate(order)
    if latest.status == Settlement.Status.CALCULATED:
        approve(latest, cast["checker"])
    assert -payable_account(order.partner, "EUR").balance == D("187.80")
    assert_settled_by_a_fresh_calculation(ended)
