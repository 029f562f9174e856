"""Orders, expenses and settlements written straight to their tables, with the times a test needs.

The reports read rows; how the services would have written them is the orders app's tests' business. Times are
given in the billing time zone (UTC in the tests) as "YYYY-MM-DD HH:MM".
"""

import itertools
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from billing_project.billing_time import billing_zone
from orders.models import Expense, Order, PayoutBatch, RevenueShareAgreement, Settlement
from orders.tests.factories import OrderTypeFactory

_numbers = itertools.count(1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=billing_zone())


def make_order(
    customer,
    *,
    fee: str = "1000.00",
    base_charge: str = "0.00",
    partner=None,
    status: str = Order.Status.STARTED,
    created: str = "2026-01-10 09:00",
    ended: str | None = None,
    order_type=None,
) -> Order:
    """An order created (and started) at `created`; a final status ends it at `ended`."""
    created_at = at(created)
    times = {"completed_at": None, "failed_at": None, "cancelled_at": None}
    field = {Order.Status.COMPLETED: "completed_at", Order.Status.FAILED: "failed_at"}.get(status)
    if status == Order.Status.CANCELLED:
        field = "cancelled_at"
    if field:
        times[field] = at(ended)
    order = Order.objects.create(
        number=f"ORD-T-{next(_numbers):06d}",
        customer=customer,
        partner=partner,
        order_type=order_type or OrderTypeFactory(),
        status=status,
        currency=customer.currency,
        fee=Decimal(fee),
        base_charge=Decimal(base_charge),
        start_date=created_at.date(),
        due_date=created_at.date(),
        started_at=created_at,
        reason="Test" if status in (Order.Status.FAILED, Order.Status.CANCELLED) else "",
        **times,
    )
    Order.objects.filter(pk=order.pk).update(created_at=created_at)  # auto_now_add set it to now
    order.created_at = created_at
    return order


def make_expense(order: Order, amount: str, *, user, reverses: Expense | None = None) -> Expense:
    return Expense.objects.create(
        order=order,
        amount=Decimal(amount),
        currency=order.currency,
        date=date(2026, 1, 15),
        payee="Registry",
        category=Expense.Category.REGISTRAR_FEE,
        reverses=reverses,
        reason="Entered twice" if reverses else "",
        created_by=user,
    )


def make_settlement(
    order: Order, amount: str, *, status: str = Settlement.Status.CALCULATED, sequence: int = 1, user=None
):
    """A settlement of `amount` for the order's partner (minimal: the calculation is not the report's concern).
    A paid one hangs on a payout batch made by `user`."""
    agreement = RevenueShareAgreement.objects.filter(partner=order.partner).first()
    if agreement is None:
        agreement = RevenueShareAgreement.objects.create(
            partner=order.partner, percentage=Decimal("30.00"), valid_from=date(2020, 1, 1)
        )
    now = timezone.now()
    payout = None
    if status == Settlement.Status.PAID:
        payout = PayoutBatch.objects.create(
            number=f"PAY-T-{next(_numbers):06d}",
            partner=order.partner,
            currency=order.currency,
            cut_off=now.date(),
            total=Decimal(amount),
            iban="GB33BUKB20201555555555",
            created_by=user,
        )
    return Settlement.objects.create(
        order=order,
        partner=order.partner,
        agreement=agreement,
        sequence=sequence,
        currency=order.currency,
        net=Decimal("0.00"),
        percentage=agreement.percentage,
        share=max(Decimal(amount), Decimal("0.00")),
        amount=Decimal(amount),
        calculation={},
        status=status,
        calculated_at=now,
        approved_at=now if status in (Settlement.Status.APPROVED, Settlement.Status.PAID) else None,
        voided_at=now if status == Settlement.Status.VOID else None,
        payout=payout,
        paid_at=now if payout else None,
    )
