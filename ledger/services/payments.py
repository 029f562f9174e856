"""Payments, refunds of credit and manual adjustments, each posted to the journal."""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.models import User
from billing_project.billing_time import check_booking_time
from billing_project.errors import Conflict, DomainError
from billing_project.formatting import money
from billing_project.money import check_bound, round_amount
from catalog.models import Customer
from catalog.services import refuse_other_currency
from ledger.locks import lock_customer, lock_invoice, lock_invoices, lock_payment
from ledger.models import Adjustment, Allocation, Invoice, Payment, Refund, Transaction
from ledger.selectors import payment_allocated_invoices
from ledger.services.credit import (
    allocate_payment,
    apply_customer_credit,
    available_credit,
    credit_sources,
    move_allocated_payment,
)
from ledger.services.journal import Entry, adjustments_account, cash_account, receivable_account, transaction_post
from ledger.services.monthly_totals import monthly_totals_on_payment, monthly_totals_on_refund


class DuplicatePayment(Conflict):
    code = "duplicate_payment"


def _check_amount(amount: Decimal) -> None:
    if amount <= 0:
        raise DomainError("The amount must be positive.", fields={"amount": ["Must be greater than zero."]})
    if amount != round_amount(amount):
        raise DomainError("Amounts have two decimal places.", fields={"amount": ["At most two decimal places."]})
    check_bound(amount, kind="amount", field="amount", label="amount")


def _check_customer_invoice(invoice: Invoice, *, customer: Customer, field: str) -> None:
    if invoice.customer_id != customer.pk:
        raise DomainError(
            f"{invoice} is not an invoice of {customer.name}.",
            fields={field: [f"{invoice} belongs to another customer."]},
        )


def _check_payable(invoice: Invoice, *, currency: str, field: str) -> None:
    label = str(invoice)
    if invoice.status not in Invoice.OPEN:
        raise DomainError(
            f"Invoice {label} is {invoice.get_status_display().lower()}; only an issued or overdue invoice takes "
            "a payment.",
            code="invoice_not_open",
            fields={field: [f"{label} is {invoice.get_status_display().lower()}, not open."]},
        )
    if invoice.currency != currency:
        raise DomainError(
            f"Invoice {label} is in {invoice.currency}; the payment is in {currency}.",
            code="currency_mismatch",
            fields={field: [f"{label} is in {invoice.currency}, not {currency}."]},
        )


def _lock_payable_invoice(invoice: Invoice, *, customer: Customer, field: str) -> Invoice:
    """The invoice, locked (the caller holds its customer's lock), once it is known to be one of the customer's
    that takes a payment in the customer's currency."""
    _check_customer_invoice(invoice, customer=customer, field=field)
    invoice = lock_invoice(invoice)
    _check_payable(invoice, currency=customer.currency, field=field)
    return invoice


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
    invoice: Invoice | None = None,
    currency: str | None = None,
) -> Payment:
    """Book a received payment and set it against the oldest open invoices; any excess stays as credit.

    With `invoice` (an open invoice of the customer, e.g. the one the remittance names) the payment pays that
    invoice first; what it does not need goes to the oldest open invoices as usual, so credit never sits idle
    beside an invoice that is still owed. The bank reference is unique per customer, so the same bank line
    cannot be booked twice. A payment is in the customer's currency: `currency`, when given, must be that one.
    """
    _check_amount(amount)
    check_booking_time(received_at, field="received_at", label="date received")
    if currency is not None:
        refuse_other_currency(customer, currency)
    if method not in Payment.Method.values:
        raise DomainError(f"Unknown payment method {method!r}.", fields={"method": ["Choose a listed method."]})
    bank_reference = bank_reference.strip()
    if not bank_reference:
        raise DomainError("Give the bank line's reference.", fields={"bank_reference": ["This field is required."]})
    customer = lock_customer(customer)
    if invoice is not None:
        invoice = _lock_payable_invoice(invoice, customer=customer, field="invoice")
    if Payment.objects.filter(customer=customer, bank_reference=bank_reference).exists():
        raise DuplicatePayment(
            f"A payment with bank reference {bank_reference!r} is already booked for {customer.name}.",
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
        raise DuplicatePayment(f"Bank reference {bank_reference!r} is already booked for {customer.name}.") from error
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
    monthly_totals_on_payment(payment)
    if invoice is not None:
        allocate_payment(payment=payment, invoice=invoice, amount=min(amount, invoice.outstanding), actor=actor)
    if apply_customer_credit(customer=customer, actor=actor):
        payment.refresh_from_db()  # its credit went to invoices
    return payment


@transaction.atomic
def payment_reallocate(
    *,
    actor: User | None,
    payment: Payment,
    invoice: Invoice,
    from_invoice: Invoice | None = None,
    amount: Decimal | None = None,
) -> Allocation:
    """Set a payment's money against a chosen open invoice of its customer: its unallocated part, or (with
    `from_invoice`) what it had set against another invoice, e.g. one it was wrongly allocated to. Returns the
    new allocation.

    `amount` defaults to as much as fits: what is available, up to what the invoice still owes. Allocations are
    never changed: a move writes a negative allocation on the invoice left and a positive one on the invoice
    reached, and each invoice's status follows (the one left is open again). The journal does not move: the
    customer's receivable account already holds the payment, whichever invoice it settles. Any credit then
    beside an open invoice goes to the oldest first, as always.
    """
    if amount is not None:
        _check_amount(amount)
    customer = lock_customer(payment.customer)
    _check_customer_invoice(invoice, customer=customer, field="invoice")
    if from_invoice is not None:
        _check_customer_invoice(from_invoice, customer=customer, field="from_invoice")
        if from_invoice.pk == invoice.pk:
            raise DomainError(
                f"The payment is already set against {invoice}; choose another invoice to move it to.",
                fields={"invoice": ["Choose another invoice than the one the money leaves."]},
            )
    # The customer (held), its invoices by primary key, then the payment: ledger/locks.py's order.
    locked = {row.pk: row for row in lock_invoices(filter(None, [invoice, from_invoice]))}
    invoice = locked[invoice.pk]
    payment = lock_payment(payment)
    _check_payable(invoice, currency=payment.currency, field="invoice")
    if from_invoice is None:
        available = payment.unallocated
        if available <= 0:
            raise DomainError(
                f"Payment {payment.bank_reference} has nothing unallocated; say which invoice to move it from.",
                code="nothing_to_move",
                fields={"from_invoice": ["The payment is fully allocated: choose the invoice to move it from."]},
            )
    else:
        from_invoice = locked[from_invoice.pk]
        label, state = str(from_invoice), from_invoice.get_status_display().lower()
        available = {row.pk: held for row, held in payment_allocated_invoices(payment)}.get(from_invoice.pk)
        if available is None:
            raise DomainError(
                f"Payment {payment.bank_reference} is not set against {label}.",
                code="nothing_to_move",
                fields={"from_invoice": [f"Nothing of this payment is on {label}."]},
            )
        if from_invoice.status not in {*Invoice.OPEN, Invoice.Status.PAID}:
            # Its full credit note gave the customer back, as credit, what was paid on it.
            raise DomainError(
                f"Invoice {label} is {state}; its credit note already returned what was paid on it as credit.",
                code="invoice_not_open",
                fields={"from_invoice": [f"{label} is {state}."]},
            )
    if amount is None:
        amount = min(available, invoice.outstanding)
    elif amount > available:
        where = "unallocated" if from_invoice is None else f"on {str(from_invoice)}"
        raise DomainError(
            f"Payment {payment.bank_reference} has {money(available, payment.currency)} {where}; no more can be moved.",
            fields={"amount": [f"At most {money(available, payment.currency)}."]},
        )
    elif amount > invoice.outstanding:
        raise DomainError(
            f"{invoice} owes {money(invoice.outstanding, payment.currency)}; no more can be set against it.",
            fields={"amount": [f"At most {money(invoice.outstanding, payment.currency)}."]},
        )
    if from_invoice is None:
        allocation = allocate_payment(payment=payment, invoice=invoice, amount=amount, actor=actor)
    else:
        allocation = move_allocated_payment(
            payment=payment, from_invoice=from_invoice, to_invoice=invoice, amount=amount, actor=actor
        )
    apply_customer_credit(customer=customer, actor=actor)
    return allocation


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
    customer = lock_customer(customer)
    credit = available_credit(customer)
    if amount > credit:
        raise DomainError(
            f"{customer.name} has {money(credit, customer.currency)} of credit; a refund cannot exceed it.",
            code="insufficient_credit",
            fields={"amount": [f"At most {money(credit, customer.currency)}."]},
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
    monthly_totals_on_refund(refund)
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
    customer = lock_customer(customer)
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
