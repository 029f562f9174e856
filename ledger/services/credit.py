"""Setting customer credit (unallocated payments and credit-note excess) against open invoices.

The rows are read oldest first and locked a batch at a time, so a posting touches the invoices and the credit
it settles and not the customer's whole history: a customer with no open invoice costs one indexed query, and
one with years of paid invoices and spent payments costs what one with none does (partial indexes in
migration 0006 hold only open invoices and rows with credit left).
"""

import heapq
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from billing_project.billing_time import billing_today
from catalog.models import Customer
from ledger.models import Allocation, CreditNote, Invoice, Payment

ZERO = Decimal("0.00")
FIRST_BATCH = 10  # a payment settles one or two invoices: lock a few rows, more only when they are used up
LAST_BATCH = 500


def _oldest_first(queryset: QuerySet, ordering: tuple[str, ...]) -> Iterator[Model]:
    """The rows of `queryset` in `ordering` (unique, ending with the primary key), locked a batch at a time.

    Each batch starts after the last row of the one before (keyset), so rows changed meanwhile are not
    skipped or read twice; the batches grow while the caller keeps asking for more.
    """
    size, after = FIRST_BATCH, Q()
    while True:
        rows = list(queryset.select_for_update().filter(after).order_by(*ordering)[:size])
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1]
        after = Q()
        for position, name in enumerate(ordering):
            equal = {field: getattr(last, field) for field in ordering[:position]}
            after |= Q(**equal, **{f"{name}__gt": getattr(last, name)})
        size = min(size * 2, LAST_BATCH)


def open_invoices(customer: Customer) -> Iterator[Invoice]:
    """Issued invoices with something still owed, oldest due first, locked as they are read (the caller holds
    the customer's lock)."""
    invoices = Invoice.objects.filter(customer=customer, status__in=sorted(Invoice.OPEN))
    return _oldest_first(invoices, ("due_date", "issued_at", "pk"))


def credit_sources(customer: Customer) -> Iterator[Payment | CreditNote]:
    """Unallocated payments and credit-note excess, oldest first, locked as they are read."""
    payments = _oldest_first(Payment.objects.filter(customer=customer, unallocated__gt=0), ("received_at", "pk"))
    notes = _oldest_first(CreditNote.objects.filter(customer=customer, unallocated__gt=0), ("issued_at", "pk"))
    return heapq.merge(
        payments,
        notes,
        key=lambda source: (source.received_at if isinstance(source, Payment) else source.issued_at, source.pk),
    )


def available_credit(customer: Customer) -> Decimal:
    """What the customer may spend or have refunded: the unallocated parts of its payments and credit notes.

    Summed here, not in SQL, to stay exact on SQLite; only rows with credit left are read.
    """
    return sum(
        (
            *Payment.objects.filter(customer=customer, unallocated__gt=0).values_list("unallocated", flat=True),
            *CreditNote.objects.filter(customer=customer, unallocated__gt=0).values_list("unallocated", flat=True),
        ),
        ZERO,
    )


def customers_with_credit(customer_ids: Iterable[int]) -> set[int]:
    """Those of these customers with credit to spend (an unallocated payment or credit-note excess)."""
    customer_ids = list(customer_ids)
    return {
        *Payment.objects.filter(customer_id__in=customer_ids, unallocated__gt=0).values_list("customer_id", flat=True),
        *CreditNote.objects.filter(customer_id__in=customer_ids, unallocated__gt=0).values_list(
            "customer_id", flat=True
        ),
    }


def apply_customer_credit(*, customer: Customer, actor: User | None) -> list[Allocation]:
    """Allocate credit to the oldest open invoices first; an invoice owed nothing more becomes paid.

    The caller holds the customer's row lock, so two postings never allocate the same credit, and may lock the
    customer's rows here oldest first, after its posting's accounts (ledger/locks.py). With no open invoice this
    is one query, and no credit is read or locked.
    """
    invoices = open_invoices(customer)
    invoice = next(invoices, None)
    if invoice is None:
        return []
    sources = credit_sources(customer)
    source = next(sources, None)
    allocations: list[Allocation] = []
    changed: dict[tuple[type, int], Invoice | Payment | CreditNote] = {}  # each row once, in the order first used
    while invoice is not None and source is not None:
        amount = min(source.unallocated, invoice.outstanding)
        if amount > 0:
            source.unallocated -= amount
            invoice.amount_paid += amount
            allocations.append(
                Allocation(
                    invoice=invoice,
                    payment=source if isinstance(source, Payment) else None,
                    credit_note=source if isinstance(source, CreditNote) else None,
                    amount=amount,
                )
            )
            changed.setdefault((type(source), source.pk), source)
            changed.setdefault((Invoice, invoice.pk), invoice)
        # min() brought one of them to zero: move on from it (an invoice somehow owed nothing is passed over).
        if source.unallocated <= 0:
            source = next(sources, None)
        if invoice.outstanding <= 0:
            invoice = next(invoices, None)
    for row in changed.values():
        row._history_user = actor
        if isinstance(row, Invoice):
            if row.outstanding == 0:
                row.status = Invoice.Status.PAID
                row.paid_at = timezone.now()
            row.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        else:
            row.save(update_fields=["unallocated"])
    bulk_create_with_history(allocations, Allocation, default_user=actor)
    return allocations


def _payment_state(invoice: Invoice) -> None:
    """Paid once it owes nothing; back to issued (or overdue, past its due date) when a payment left it."""
    if invoice.outstanding == 0:
        if invoice.status != Invoice.Status.PAID:
            invoice.status, invoice.paid_at = Invoice.Status.PAID, timezone.now()
    elif invoice.status == Invoice.Status.PAID:
        overdue = invoice.due_date is not None and invoice.due_date < billing_today()
        invoice.status = Invoice.Status.OVERDUE if overdue else Invoice.Status.ISSUED
        invoice.paid_at = None


def _save_invoice(invoice: Invoice, actor: User | None) -> None:
    _payment_state(invoice)
    invoice._history_user = actor
    invoice.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])


def _write_allocation(allocation: Allocation, actor: User | None) -> Allocation:
    allocation._history_user = actor
    allocation.save()
    return allocation


def allocate_payment(*, payment: Payment, invoice: Invoice, amount: Decimal, actor: User | None) -> Allocation:
    """Set `amount` of the payment's unallocated part against the invoice. The caller holds the customer's lock
    and the invoice's and payment's rows, and has checked the amount fits both."""
    payment.unallocated -= amount
    payment._history_user = actor
    payment.save(update_fields=["unallocated"])
    invoice.amount_paid += amount
    _save_invoice(invoice, actor)
    return _write_allocation(Allocation(invoice=invoice, payment=payment, amount=amount), actor)


def move_allocated_payment(
    *, payment: Payment, from_invoice: Invoice, to_invoice: Invoice, amount: Decimal, actor: User | None
) -> Allocation:
    """Take `amount` of what the payment had set against `from_invoice` (a negative allocation there) and set it
    against `to_invoice`; returns the new allocation. The caller holds the locks and has checked the amount."""
    from_invoice.amount_paid -= amount
    _save_invoice(from_invoice, actor)
    _write_allocation(Allocation(invoice=from_invoice, payment=payment, amount=-amount), actor)
    to_invoice.amount_paid += amount
    _save_invoice(to_invoice, actor)
    return _write_allocation(Allocation(invoice=to_invoice, payment=payment, amount=amount), actor)
