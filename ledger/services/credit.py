"""Setting customer credit (unallocated payments and credit-note excess) against open invoices."""

from decimal import Decimal

from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from catalog.models import Customer
from ledger.models import Allocation, CreditNote, Invoice, Payment

ZERO = Decimal("0.00")


def open_invoices(customer: Customer) -> list[Invoice]:
    """Issued invoices with something still owed, oldest first, locked (the caller holds the customer's lock)."""
    return list(
        Invoice.objects.select_for_update()
        .filter(customer=customer, status__in=Invoice.OPEN)
        .order_by("due_date", "issued_at", "pk")
    )


def credit_sources(customer: Customer) -> list[Payment | CreditNote]:
    """Unallocated payments and credit-note excess, oldest first, locked."""
    payments = (
        Payment.objects.select_for_update().filter(customer=customer, unallocated__gt=0).order_by("received_at", "pk")
    )
    notes = (
        CreditNote.objects.select_for_update().filter(customer=customer, unallocated__gt=0).order_by("issued_at", "pk")
    )
    return sorted(
        [*payments, *notes],
        key=lambda source: (source.received_at if isinstance(source, Payment) else source.issued_at, source.pk),
    )


def available_credit(customer: Customer) -> Decimal:
    sources = [
        *Payment.objects.filter(customer=customer).values_list("unallocated", flat=True),
        *CreditNote.objects.filter(customer=customer).values_list("unallocated", flat=True),
    ]
    return sum(sources, ZERO)


def apply_customer_credit(*, customer: Customer, actor: User | None) -> list[Allocation]:
    """Allocate credit to the oldest open invoices first; an invoice owed nothing more becomes paid.

    The caller holds the customer's row lock, so two postings never allocate the same credit.
    """
    sources = credit_sources(customer)
    if not sources:
        return []
    allocations = []
    for invoice in open_invoices(customer):
        while sources and invoice.outstanding > 0:
            source = sources[0]
            amount = min(source.unallocated, invoice.outstanding)
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
            source._history_user = actor
            source.save(update_fields=["unallocated"])
            if source.unallocated == 0:
                sources.pop(0)
        if invoice.outstanding == 0:
            invoice.status = Invoice.Status.PAID
            invoice.paid_at = timezone.now()
        if any(allocation.invoice is invoice for allocation in allocations):
            invoice._history_user = actor
            invoice.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
        if not sources:
            break
    bulk_create_with_history(allocations, Allocation, default_user=actor)
    return allocations
