"""Payments, refunds of credit and manual adjustments, each posted to the journal."""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.models import User
from billing_project.errors import Conflict, DomainError
from billing_project.money import round_amount
from catalog.models import Customer
from ledger.models import Adjustment, Payment, Refund, Transaction
from ledger.services.credit import apply_customer_credit, available_credit, credit_sources
from ledger.services.journal import Entry, adjustments_account, cash_account, receivable_account, transaction_post


class DuplicatePayment(Conflict):
    code = "duplicate_payment"


def _check_amount(amount: Decimal) -> None:
    if amount <= 0:
        raise DomainError("The amount must be positive.", fields={"amount": ["Must be greater than zero."]})
    if amount != round_amount(amount):
        raise DomainError("Amounts have two decimal places.", fields={"amount": ["At most two decimal places."]})


def _lock_customer(customer: Customer) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer.pk)


@transaction.atomic
def payment_record(
    *,
    actor: User | None,
    customer: Customer,
    amount: Decimal,
    received_at: datetime,
    bank_reference: str,
    method: str = Payment.Method.BANK_TRANSFER,
    note: str = "",
) -> Payment:
    """Book a received payment and set it against the oldest open invoices; any excess stays as credit.

    The bank reference is unique per customer, so the same bank line cannot be booked twice.
    """
    _check_amount(amount)
    if method not in Payment.Method.values:
        raise DomainError(f"Unknown payment method {method!r}.", fields={"method": ["Choose a listed method."]})
    bank_reference = bank_reference.strip()
    if not bank_reference:
        raise DomainError("Give the bank line's reference.", fields={"bank_reference": ["This field is required."]})
    customer = _lock_customer(customer)
    if Payment.objects.filter(customer=customer, bank_reference=bank_reference).exists():
        raise DuplicatePayment(
            f"A payment with bank reference {bank_reference!r} is already booked for {customer.client_id}.",
            fields={"bank_reference": ["Already booked for this customer."]},
        )
    payment = Payment(
        customer=customer,
        method=method,
        amount=amount,
        currency=customer.currency,
        received_at=received_at,
        bank_reference=bank_reference,
        unallocated=amount,
        note=note,
        created_by=actor,
    )
    payment._history_user = actor
    try:
        with transaction.atomic():
            payment.save()
    except IntegrityError as error:
        raise DuplicatePayment(
            f"Bank reference {bank_reference!r} is already booked for {customer.client_id}."
        ) from error
    transaction_post(
        kind=Transaction.Kind.PAYMENT,
        entries=[
            Entry(cash_account(customer.currency), debit=amount),
            Entry(receivable_account(customer), credit=amount),
        ],
        description=f"Payment {bank_reference} ({payment.get_method_display()})",
        reference=bank_reference,
        customer=customer,
        source=payment,
        actor=actor,
    )
    if apply_customer_credit(customer=customer, actor=actor):
        payment.refresh_from_db()  # its credit went to invoices
    return payment


@transaction.atomic
def refund_record(
    *,
    actor: User | None,
    customer: Customer,
    amount: Decimal,
    reason: str,
    reference: str = "",
    method: str = Payment.Method.BANK_TRANSFER,
) -> Refund:
    """Pay back part of the customer's credit (unallocated payments and credit-note excess, oldest first)."""
    _check_amount(amount)
    if not reason.strip():
        raise DomainError("Give the reason for the refund.", fields={"reason": ["This field is required."]})
    customer = _lock_customer(customer)
    credit = available_credit(customer)
    if amount > credit:
        raise DomainError(
            f"{customer.client_id} has {credit} {customer.currency} of credit; a refund cannot exceed it.",
            code="insufficient_credit",
            fields={"amount": [f"At most {credit}."]},
        )
    left = amount
    for source in credit_sources(customer):
        taken = min(left, source.unallocated)
        source.unallocated -= taken
        source._history_user = actor
        source.save(update_fields=["unallocated"])
        left -= taken
        if left == 0:
            break
    refund = Refund(
        customer=customer,
        amount=amount,
        currency=customer.currency,
        method=method,
        reference=reference,
        reason=reason.strip(),
        created_by=actor,
    )
    refund._history_user = actor
    refund.save()
    transaction_post(
        kind=Transaction.Kind.REFUND,
        entries=[
            Entry(receivable_account(customer), debit=amount),
            Entry(cash_account(customer.currency), credit=amount),
        ],
        description=f"Refund of credit: {refund.reason}",
        reference=reference,
        customer=customer,
        source=refund,
        actor=actor,
    )
    return refund


@transaction.atomic
def adjustment_record(
    *, actor: User | None, customer: Customer, direction: str, amount: Decimal, reason: str
) -> Adjustment:
    """A manual correction of what the customer owes, against the adjustments account; the reason is required."""
    _check_amount(amount)
    if not reason.strip():
        raise DomainError("An adjustment needs a reason.", fields={"reason": ["This field is required."]})
    if direction not in Adjustment.Direction.values:
        raise DomainError("Direction is debit or credit.", fields={"direction": ["Choose debit or credit."]})
    customer = _lock_customer(customer)
    adjustment = Adjustment(
        customer=customer,
        direction=direction,
        amount=amount,
        currency=customer.currency,
        reason=reason.strip(),
        created_by=actor,
    )
    adjustment._history_user = actor
    adjustment.save()
    receivable, other = receivable_account(customer), adjustments_account(customer.currency)
    if direction == Adjustment.Direction.DEBIT:
        entries = [Entry(receivable, debit=amount), Entry(other, credit=amount)]
    else:
        entries = [Entry(other, debit=amount), Entry(receivable, credit=amount)]
    transaction_post(
        kind=Transaction.Kind.ADJUSTMENT,
        entries=entries,
        description=f"Adjustment: {adjustment.reason}",
        reference=f"ADJ-{adjustment.pk}",
        customer=customer,
        source=adjustment,
        actor=actor,
    )
    return adjustment
