"""Order expenses (DESIGN.md, "Money of an order"): recorded with their receipt and posted to the ledger at once.

Recording one posts `expense`: the category's expense account is debited, and cash (paid now) or the suppliers'
payable (owed) is credited. An expense is never edited: `expense_reverse` records a reversing expense that posts
the opposite entry, once per expense. Locks: the customer, then the order (orders.locks), then the expense being
reversed; ledger accounts last, in `transaction_post`.
"""

from datetime import date as Date
from decimal import Decimal

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from accounts.models import User
from billing_project import money
from billing_project.billing_time import billing_today, check_booking_day
from billing_project.errors import DomainError
from ledger.models import Transaction
from ledger.services.journal import Entry, cash_account, expense_account, supplier_payable_account, transaction_post
from orders.files import check_upload
from orders.locks import lock_order
from orders.models import Expense, Order
from orders.services.settlements import settle_locked_orders
from orders.storage import expense_receipt_path, store, stored_files

RECEIPT_KINDS = ["pdf", "jpeg", "png"]
PAYEE_MAX_LENGTH = Expense._meta.get_field("payee").max_length
REFERENCE_MAX_LENGTH = Expense._meta.get_field("reference").max_length


def _refuse(message: str, *, field: str | None = None, code: str = "invalid") -> DomainError:
    return DomainError(message, code=code, fields={field: [message]} if field else None)


def _check_amount(amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise _refuse("Give the amount as a number with at most two decimal places.", field="amount")
    if amount <= 0:
        raise _refuse("The amount must be greater than zero.", field="amount", code="amount_not_positive")
    if amount != money.round_amount(amount):
        raise _refuse("The amount has at most two decimal places.", field="amount", code="amount_precision")
    money.check_bound(amount, kind="amount", field="amount", label="amount")


def _text(value: str, *, field: str, label: str, max_length: int, required: bool) -> str:
    value = (value or "").strip()
    if required and not value:
        raise _refuse(f"Give the {label}.", field=field, code="required")
    if len(value) > max_length:
        raise _refuse(f"The {label} is at most {max_length} characters.", field=field)
    return value


def _post(expense: Expense, *, actor: User | None) -> Expense:
    """Post the expense's entry (the opposite one for a reversal) and link it to the expense."""
    label = expense.get_category_display()
    cost = expense_account(expense.category, expense.currency, label=label)
    source = cash_account(expense.currency) if expense.paid else supplier_payable_account(expense.currency)
    amount = abs(expense.amount)
    if expense.is_reversal:
        entries = [Entry(source, debit=amount), Entry(cost, credit=amount)]
        description = f"Reversal of expense EXP-{expense.reverses_id} on {expense.order.number}: {expense.reason}"
    else:
        entries = [Entry(cost, debit=amount), Entry(source, credit=amount)]
        description = f"Expense on {expense.order.number}: {label}, {expense.payee}"
    posted = transaction_post(
        kind=Transaction.Kind.EXPENSE,
        entries=entries,
        description=description,
        reference=f"EXP-{expense.pk}",
        source=expense,
        actor=actor,
    )
    # The row was written a moment ago in this same database transaction; linking it is part of recording it.
    Expense.objects.filter(pk=expense.pk).update(ledger_transaction=posted)
    expense.ledger_transaction = posted
    return expense


@transaction.atomic
def expense_record(
    *,
    actor: User,
    order: Order,
    amount: Decimal,
    date: Date,
    payee: str,
    category: str,
    reference: str = "",
    receipt: UploadedFile | None = None,
    paid: bool = True,
    currency: str | None = None,
) -> Expense:
    """Record a cost of the order, in the order's currency (`currency`, if given, must be it), and post it."""
    order = lock_order(order)
    _check_amount(amount)
    if currency is not None and currency != order.currency:
        raise _refuse(
            f"{order.number} is in {order.currency}; its expenses are too, not {currency}.",
            field="currency",
            code="currency_mismatch",
        )
    if not isinstance(date, Date):
        raise _refuse("Give the date the cost was incurred.", field="date", code="required")
    check_booking_day(date, field="date", label="date")
    if category not in Expense.Category.values:
        raise _refuse(
            f"Choose a category: {', '.join(Expense.Category.values)}.", field="category", code="invalid_choice"
        )
    payee = _text(payee, field="payee", label="payee", max_length=PAYEE_MAX_LENGTH, required=True)
    reference = _text(reference, field="reference", label="reference", max_length=REFERENCE_MAX_LENGTH, required=False)
    checked = (
        check_upload(receipt, accepted_kinds=RECEIPT_KINDS, max_size=settings.MAX_DOCUMENT_BYTES, field="receipt")
        if receipt is not None
        else None
    )
    sequence = order.expenses.count() + 1
    with stored_files() as names:
        stored = store(names, expense_receipt_path(order, sequence, checked.original_name), checked) if checked else ""
        expense = Expense.objects.create(
            order=order,
            amount=amount,
            currency=order.currency,
            date=date,
            payee=payee,
            category=category,
            reference=reference,
            receipt=stored,
            receipt_name=checked.original_name if checked else "",
            receipt_kind=checked.kind if checked else "",
            paid=bool(paid),
            created_by=actor,
        )
        _post(expense, actor=actor)
    settle_locked_orders([order], actor=actor, reason=f"Expense EXP-{expense.pk} recorded on {order.number}.")
    return expense


@transaction.atomic
def expense_reverse(*, actor: User, expense: Expense, reason: str) -> Expense:
    """Correct an expense by a reversing one, dated today, that posts the opposite entry; once per expense."""
    order = lock_order(expense.order)
    original = Expense.objects.select_for_update().get(pk=expense.pk)
    reason = _text(reason, field="reason", label="reason for the reversal", max_length=2000, required=True)
    if original.is_reversal:
        raise _refuse(
            f"EXP-{original.pk} is itself a reversal; record the expense again instead.", code="expense_is_reversal"
        )
    if Expense.objects.filter(reverses=original).exists():
        raise _refuse(f"EXP-{original.pk} is already reversed.", code="already_reversed")
    reversal = Expense.objects.create(
        order=order,
        amount=-original.amount,
        currency=original.currency,
        date=billing_today(),
        payee=original.payee,
        category=original.category,
        reference=original.reference,
        paid=original.paid,
        reverses=original,
        reason=reason,
        created_by=actor,
    )
    _post(reversal, actor=actor)
    settle_locked_orders([order], actor=actor, reason=f"Expense EXP-{original.pk} reversed on {order.number}.")
    return reversal
