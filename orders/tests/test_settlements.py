"""Partner settlements (DESIGN.md, "Settlements"): the worked example to the cent, agreements, approval with
maker-checker, correcting settlements, recalculation that is idempotent, and the ledger that stays balanced."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from approvals.models import ApprovalRequest
from approvals.services import ApprovalNotAllowed, approval_approve, approval_reject, request_for
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import Transaction
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_issue
from ledger.services.journal import payable_account
from ledger.services.payments import payment_record
from ledger.services.reconciliation import ledger_differences
from orders.models import Expense, Order, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.billing import order_credit
from orders.services.expenses import expense_record, expense_reverse
from orders.services.orders import order_create, order_transition, orders_complete
from orders.services.settlements import order_settle, settlement_explanation
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
def partner(db):
    return PartnerFactory(name="Formation Partners LLP")


@pytest.fixture
def formation(db):
    return OrderTypeFactory(name="UK company formation", default_fee=D("1000.00"), default_base_charge=D("120.00"))


@pytest.fixture
def general_agreement(partner):
    return revenue_share_agreement_create(actor=None, partner=partner, percentage=D("30"), valid_from=date(2026, 1, 1))


@pytest.fixture
def checker(make_user):
    return make_user(Role.FINANCE, email="checker@countinghouse.example")


@pytest.fixture
def order(customer, partner, formation, finance_user, general_agreement):
    """DESIGN.md's example up to its end: billed 1,320.00 (fee 1,000.00 + 20 % tax, base charge 120.00), paid in
    full, with 120.00 (registrar) + 30.00 (courier) of expenses, in progress."""
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    pay(order, "1320.00", "BANK-1")
    spend(order, finance_user, "120.00", Expense.Category.REGISTRAR_FEE)
    spend(order, finance_user, "30.00", Expense.Category.COURIER)
    return order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)


def pay(order: Order, amount: str, reference: str):
    return payment_record(
        actor=None, customer=order.customer, amount=D(amount), received_at=RECEIVED, bank_reference=reference
    )


def spend(order: Order, actor, amount: str, category: str) -> Expense:
    return expense_record(
        actor=actor, order=order, amount=D(amount), date=date(2026, 11, 2), payee="Companies House", category=category
    )


def settlements(order: Order) -> list[Settlement]:
    return list(Settlement.objects.filter(order=order).order_by("sequence"))


def live(order: Order) -> list[Settlement]:
    return [settlement for settlement in settlements(order) if settlement.status != Settlement.Status.VOID]


def approve(settlement: Settlement, actor) -> Settlement:
    approval_approve(actor=actor, request=request_for(settlement), comment="Checked")
    settlement.refresh_from_db()
    return settlement


def payable(partner) -> D:
    """What we owe the partner: the credit balance of its payable (balances are debit positive)."""
    return -payable_account(partner, "EUR").balance


# --- DESIGN.md's example ------------------------------------------------------------------------------------------


def test_the_completed_example_order_gives_the_partner_291(order, finance_user):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    (settlement,) = settlements(order)
    assert (settlement.net, settlement.share, settlement.amount) == (D("970.00"), D("291.00"), D("291.00"))
    assert settlement.status == Settlement.Status.CALCULATED
    assert settlement.sequence == 1
    calculation = settlement.calculation
    assert calculation["fee_received"] == "1000.00"
    assert calculation["base_charge_received"] == "120.00"
    assert calculation["expenses"] == "150.00"
    assert calculation["agreement"]["percentage"] == "30.00"
    assert calculation["agreement"]["order_type"] is None
    assert request_for(settlement).status == ApprovalRequest.Status.PENDING


def test_failed_with_500_of_the_fee_credited_gives_141(order, finance_user):
    order_credit(actor=finance_user, order=order, amount=D("600.00"), reason="Filing refused: half the fee back")
    order_transition(actor=finance_user, order=order, to_status=Status.FAILED, reason="Registrar refused the name")

    (settlement,) = settlements(order)
    assert (settlement.net, settlement.share) == (D("470.00"), D("141.00"))
    assert settlement.calculation["fee_credited"] == "500.00"


def test_a_credit_note_counts_once_whether_it_came_before_or_after_the_payment(
    customer, partner, formation, finance_user, general_agreement
):
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    order_credit(actor=finance_user, order=order, amount=D("600.00"), reason="Half the fee back")
    pay(order, "720.00", "BANK-720")  # what is left to pay after the credit note
    spend(order, finance_user, "150.00", Expense.Category.REGISTRAR_FEE)
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.FAILED, reason="Registrar refused")

    assert settlements(order)[0].share == D("141.00")


def test_a_partly_paid_invoice_counts_what_was_paid_split_between_fee_and_base_charge(
    customer, partner, formation, finance_user, general_agreement
):
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    pay(order, "660.00", "BANK-HALF")
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    calculation = settlements(order)[0].calculation
    # 660 of 1,320: 600.00 towards the fee with its tax (500.00 without), 60.00 towards the base charge.
    assert (calculation["fee_received_with_tax"], calculation["fee_received"]) == ("600.00", "500.00")
    assert calculation["base_charge_received"] == "60.00"
    assert settlements(order)[0].share == D("168.00")


def test_expenses_beyond_what_was_received_give_a_zero_share_not_a_negative_one(
    customer, partner, formation, finance_user, general_agreement
):
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    spend(order, finance_user, "200.00", Expense.Category.NOTARY)  # nothing invoiced, nothing received
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    (settlement,) = settlements(order)
    assert (settlement.net, settlement.share, settlement.amount) == (D("0.00"), D("0.00"), D("0.00"))


def test_a_type_specific_agreement_beats_the_general_one(order, partner, formation, finance_user):
    revenue_share_agreement_create(
        actor=None, partner=partner, order_type=formation, percentage=D("50"), valid_from=date(2026, 6, 1)
    )
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    (settlement,) = settlements(order)
    assert settlement.share == D("485.00")
    assert settlement.calculation["agreement"]["order_type"] == "UK company formation"


def test_no_agreement_in_force_no_settlement_and_the_order_says_why(order, general_agreement, finance_user):
    general_agreement.valid_to = date(2026, 3, 31)
    general_agreement.save()
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    assert settlements(order) == []
    why = settlement_explanation(Order.objects.get(pk=order.pk))
    assert "no revenue-share agreement" in why.reason
    assert "Formation Partners LLP" in why.reason


def test_an_order_without_a_partner_has_no_settlement(customer, formation, finance_user, general_agreement):
    order = order_create(actor=finance_user, customer=customer, order_type=formation)
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)

    assert settlements(order) == []
    assert "has no partner" in settlement_explanation(Order.objects.get(pk=order.pk)).reason


def test_a_cancelled_order_is_never_settled(customer, partner, formation, finance_user, general_agreement):
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    order_transition(actor=finance_user, order=order, to_status=Status.CANCELLED, reason="Client withdrew")

    assert settlements(order) == []


# --- Approval -----------------------------------------------------------------------------------------------------


def test_another_finance_user_approves_and_the_share_is_posted_to_the_partners_payable(
    order, partner, finance_user, checker
):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    (settlement,) = settlements(order)

    with pytest.raises(ApprovalNotAllowed, match="someone else must decide"):
        approval_approve(actor=finance_user, request=request_for(settlement))
    assert payable(partner) == D("0.00")

    settlement = approve(settlement, checker)
    assert settlement.status == Settlement.Status.APPROVED
    assert settlement.approved_by == checker
    posting = settlement.ledger_transaction
    assert posting.kind == Transaction.Kind.SETTLEMENT
    assert payable(partner) == D("291.00")
    assert ledger_differences()[0] == []


def test_a_rejected_settlement_is_void_and_a_recalculation_makes_a_new_one(order, finance_user, checker):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    (settlement,) = settlements(order)
    approval_reject(actor=checker, request=request_for(settlement), comment="The courier was ours, not the order's")
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.VOID

    courier = Expense.objects.get(order=order, category=Expense.Category.COURIER)
    expense_reverse(actor=checker, expense=courier, reason="Our own courier")

    (again,) = live(order)
    assert (again.sequence, again.share) == (2, D("300.00"))  # net 1,000.00 = 1,120.00 − 120.00
    assert not again.is_correction and again.kind_label == "Settlement #2"  # nothing was approved before it


# --- Corrections and recalculation --------------------------------------------------------------------------------


def test_a_refund_after_approval_makes_a_negative_correction_and_the_payable_follows(
    order, partner, finance_user, checker, admin_user
):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    approve(settlements(order)[0], checker)

    order_credit(actor=finance_user, order=order, amount=D("600.00"), reason="Goodwill: half the fee back")

    first, correction = settlements(order)
    assert (correction.sequence, correction.share, correction.amount) == (2, D("141.00"), D("-150.00"))
    assert correction.status == Settlement.Status.CALCULATED
    assert correction.is_correction and str(correction) == f"{order.number} · correction #2"
    approve(correction, checker)
    assert payable(partner) == D("141.00") == first.amount + correction.amount
    assert Transaction.objects.filter(kind=Transaction.Kind.SETTLEMENT).count() == 2
    assert ledger_differences()[0] == []


def test_an_expense_before_approval_recalculates_the_calculated_settlement_instead(order, finance_user, checker):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    (first,) = settlements(order)

    spend(order, checker, "70.00", Expense.Category.TRANSLATION)

    first.refresh_from_db()
    assert first.status == Settlement.Status.VOID
    assert request_for(first) is None  # its request was withdrawn
    (current,) = live(order)
    assert (current.sequence, current.share, current.amount) == (2, D("270.00"), D("270.00"))
    assert request_for(current).status == ApprovalRequest.Status.PENDING


def test_a_later_receipt_makes_a_positive_correction(customer, partner, formation, finance_user, checker):
    revenue_share_agreement_create(actor=None, partner=partner, percentage=D("30"), valid_from=date(2026, 1, 1))
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    approve(settlements(order)[0], checker)  # nothing received yet: 0.00

    pay(order, "1320.00", "BANK-LATE")

    first, correction = settlements(order)
    assert (first.amount, correction.amount) == (D("0.00"), D("336.00"))  # 30 % of 1,120.00


def test_recalculating_without_a_change_writes_nothing(order, finance_user, checker):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    assert order_settle(actor=checker, order=order) is None
    approve(settlements(order)[0], checker)
    assert order_settle(actor=checker, order=order) is None
    assert len(settlements(order)) == 1


def test_reopening_voids_a_settlement_not_yet_approved(order, finance_user, admin_user):
    order_transition(actor=finance_user, order=order, to_status=Status.COMPLETED)
    order_transition(actor=admin_user, order=order, to_status=Status.IN_PROGRESS, reason="Filed the wrong form")

    assert live(order) == []
    order_transition(actor=admin_user, order=order, to_status=Status.COMPLETED)
    (settlement,) = live(order)
    assert settlement.sequence == 2


# --- Bulk completion ----------------------------------------------------------------------------------------------


def started_orders(count: int, *, customer, partner, formation, actor) -> list[Order]:
    orders = []
    for _ in range(count):
        order = order_create(actor=actor, customer=customer, order_type=formation, partner=partner)
        invoice_issue(actor=None, invoice=order.invoice)
        orders.append(order_transition(actor=actor, order=order, to_status=Status.IN_PROGRESS))
    return orders


def test_a_bulk_completion_settles_every_order_in_queries_that_do_not_grow_with_them(
    customer, partner, formation, finance_user, general_agreement
):
    few = started_orders(2, customer=customer, partner=partner, formation=formation, actor=finance_user)
    many = started_orders(8, customer=customer, partner=partner, formation=formation, actor=finance_user)
    with CaptureQueriesContext(connection) as for_few:
        orders_complete(actor=finance_user, orders=few)
    with CaptureQueriesContext(connection) as for_many:
        completed, refused = orders_complete(actor=finance_user, orders=[*many, few[0]])

    assert len(for_many) <= len(for_few)  # the first run also reads the content types, cached after it
    assert len(completed) == 8
    assert refused == [f"{few[0].number} is completed; only an order in progress is completed."]
    for order in [*few, *many]:
        (settlement,) = settlements(order)
        assert settlement.share == D("0.00")  # issued, nothing paid yet
        assert request_for(settlement).status == ApprovalRequest.Status.PENDING
        assert Order.objects.get(pk=order.pk).status_history.last().to_status == Status.COMPLETED


def test_a_partial_credit_beyond_an_untaxed_fee_comes_off_the_base_charge(partner, formation, finance_user):
    customer = CustomerFactory(client_id="UNTAXED-1", currency="EUR")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0"))
    revenue_share_agreement_create(actor=None, partner=partner, percentage=D("30"), valid_from=date(2026, 1, 1))
    order = order_create(actor=finance_user, customer=customer, order_type=formation, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    pay(order, "1120.00", "BANK-UNTAXED")
    order_credit(actor=finance_user, order=order, amount=D("1100.00"), reason="Nearly all back")
    order_transition(actor=finance_user, order=order, to_status=Status.IN_PROGRESS)
    order_transition(actor=finance_user, order=order, to_status=Status.FAILED, reason="Registrar refused")

    calculation = settlements(order)[0].calculation
    assert (calculation["fee_credited"], calculation["base_charge_credited"]) == ("1000.00", "100.00")
    assert (calculation["fee_received"], calculation["base_charge_received"]) == ("0.00", "20.00")
    assert settlements(order)[0].share == D("6.00")
