"""Orders that end with a partner settlement, for the settlement page and API tests: DESIGN.md's example (fee
1,000.00 + 20 % tax, base charge 120.00, paid in full, 150.00 of expenses, a 30 % agreement: share 291.00)."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_issue
from ledger.services.payments import payment_record
from orders.models import Expense, Order, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.expenses import expense_record
from orders.services.orders import order_create, order_transition
from orders.tests.factories import OrderTypeFactory


def example_order(
    maker, *, partner=None, percentage: str = "30", currency: str = "EUR", end: bool = True, order_type=None
) -> Order:
    """The example order, made and ended by `maker` (so `maker` may not approve its settlement)."""
    customer = CustomerFactory(currency=currency)
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    if partner is None:
        partner = PartnerFactory()
        revenue_share_agreement_create(
            actor=None, partner=partner, percentage=D(percentage), valid_from=date(2026, 1, 1)
        )
    order_type = order_type or OrderTypeFactory(
        name="UK company formation", default_fee=D("1000.00"), default_base_charge=D("120.00")
    )
    order = order_create(actor=maker, customer=customer, order_type=order_type, partner=partner)
    invoice_issue(actor=None, invoice=order.invoice)
    payment_record(
        actor=None,
        customer=customer,
        amount=D("1320.00"),
        received_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        bank_reference=f"BANK-{order.number}",
    )
    for amount, category in (("120.00", Expense.Category.REGISTRAR_FEE), ("30.00", Expense.Category.COURIER)):
        expense_record(
            actor=maker,
            order=order,
            amount=D(amount),
            date=date(2026, 11, 2),
            payee="Companies House",
            category=category,
        )
    order = order_transition(actor=maker, order=order, to_status=Order.Status.IN_PROGRESS)
    if end:
        order = order_transition(actor=maker, order=order, to_status=Order.Status.COMPLETED)
    return order


def settlement_of(order: Order) -> Settlement:
    """The order's newest settlement."""
    return Settlement.objects.filter(order=order).order_by("-sequence").first()
