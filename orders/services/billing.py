"""An order's invoice: its fee and base charge billed on an invoice of kind `order` through the ledger's invoice
services (numbering, approvals, issue, PDF, email, payments and credit notes are theirs), kept in step with the
order's terms and lifecycle (DESIGN.md, "Money of an order").

One invoice per order: `Order.invoice` holds it and an invoice bills one order (a one-to-one key). A cancelled
draft or a void invoice bills nothing any more, so it is the only one a new invoice replaces (an order reopened
after it was cancelled); the order's history keeps the link to the former one.

Locks: the customer, then the order (orders/locks.py), then its invoice; the ledger's services lock the customer
and the invoice again, which re-reads rows this transaction already holds.
"""

from decimal import Decimal

from django.db import transaction
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from billing_project.billing_time import billing_today
from billing_project.errors import Conflict, DomainError
from billing_project.formatting import money
from ledger.locks import lock_invoice
from ledger.models import CreditNote, Invoice, InvoiceItem
from ledger.services.invoices import (
    LineDraft,
    check_invoice_bounds,
    credit_note_issue,
    customer_vat,
    invoice_cancel,
    items_for,
    period_start,
    set_totals,
)
from orders.locks import lock_order
from orders.models import Order

ZERO = Decimal("0.00")
ONE = Decimal("1")
REPLACEABLE = {Invoice.Status.CANCELLED, Invoice.Status.VOID}  # bill nothing any more
ORDER_SOURCES = {InvoiceItem.Source.ORDER_FEE, InvoiceItem.Source.DISBURSEMENT}


class OrderAlreadyInvoiced(Conflict):
    code = "order_invoiced"


class NothingToInvoice(Conflict):
    code = "nothing_to_bill"


class InvoiceInTheWay(Conflict):
    """The order's invoice is on its way to be issued (pending approval, approved): it cannot follow the order."""

    code = "invoice_in_approval"


def _lines(order: Order) -> list[LineDraft]:
    """The order's lines: the fee, taxed per the customer's configuration, and the base charge, a disbursement
    without tax (ledger/vat.py). A line of 0.00 is left out."""
    lines = []
    if order.fee > 0:
        lines.append(
            LineDraft(
                source=InvoiceItem.Source.ORDER_FEE,
                description=f"{order.order_type.name}, order {order.number}: fee",
                service_id=None,
                quantity=ONE,
                unit_price=order.fee,
                amount=order.fee,
            )
        )
    if order.base_charge > 0:
        lines.append(
            LineDraft(
                source=InvoiceItem.Source.DISBURSEMENT,
                description=f"{order.order_type.name}, order {order.number}: base charge (disbursement, no tax)",
                service_id=None,
                quantity=ONE,
                unit_price=order.base_charge,
                amount=order.base_charge,
            )
        )
    return lines


def _items(invoice: Invoice, order: Order, start: int = 0) -> list[InvoiceItem]:
    return items_for(invoice, _lines(order), customer_vat(order.customer), start=start)


def _save(instance, actor: User | None, **kwargs) -> None:
    instance._history_user = actor
    instance.save(**kwargs)


def _draft(*, actor: User | None, order: Order) -> Invoice | None:
    """A draft invoice of the order's lines, linked to it; None when there is nothing to bill. The caller holds
    the order's lock."""
    invoice = Invoice(
        customer=order.customer,
        kind=Invoice.Kind.ORDER,
        period=period_start(billing_today()),
        currency=order.currency,
        created_by=actor,
    )
    items = _items(invoice, order)
    if not items:
        return None
    set_totals(invoice, items)
    check_invoice_bounds(invoice, items)
    _save(invoice, actor)
    bulk_create_with_history(items, InvoiceItem, default_user=actor)
    order.invoice = invoice
    _save(order, actor, update_fields=["invoice", "updated_at"])
    return invoice


@transaction.atomic
def order_invoice_start(*, actor: User | None, order: Order) -> Invoice | None:
    """The draft a new order starts with; none when its fee and base charge are 0.00. Called by `order_create`
    in the transaction that made the order, so no one else sees it yet."""
    return _draft(actor=actor, order=order)


@transaction.atomic
def order_invoice_create(*, actor: User | None, order: Order) -> Invoice:
    """Bill the order on a new draft invoice, from its page: an order made before invoices were, or one whose
    invoice was cancelled or voided. A second invoice beside a live one is refused."""
    order = lock_order(order)
    current = order.invoice
    if current is not None and current.status not in REPLACEABLE:
        raise OrderAlreadyInvoiced(
            f"{order.number} is already billed on invoice {current} ({current.get_status_display().lower()}); an "
            "order has one invoice. Correct an issued one with a credit note.",
        )
    if order.status == Order.Status.CANCELLED:
        raise DomainError(f"{order.number} is cancelled; a cancelled order is not billed.", code="order_cancelled")
    invoice = _draft(actor=actor, order=order)
    if invoice is None:
        raise NothingToInvoice(
            f"{order.number} has no fee and no base charge: there is nothing to invoice. Set its fee or base "
            "charge first."
        )
    return invoice


def order_invoice_follow_terms(*, actor: User | None, order: Order) -> None:
    """After the order's fee or base charge changed (`order_update`, under the order's lock): a draft (or rejected)
    invoice takes the new lines, and is cancelled when nothing is left to bill; one in approval or issued does not
    change, so the change is refused."""
    if order.invoice_id is None:
        return
    invoice = lock_invoice(order.invoice)
    if invoice.status in REPLACEABLE:
        return
    if not invoice.is_editable:
        raise InvoiceInTheWay(
            f"{order.number} is billed on invoice {invoice}, which is {invoice.get_status_display().lower()}: its "
            "fee and base charge change only while the invoice is a draft. Correct an issued invoice with a "
            "credit note.",
            fields={"fee": ["The order's invoice is no longer a draft."]},
        )
    others = [item for item in invoice.items.all() if item.source not in ORDER_SOURCES]
    invoice.items.filter(source__in=ORDER_SOURCES).delete()
    items = _items(invoice, order)
    for position, item in enumerate(others, start=len(items)):
        item.position = position
        _save(item, actor)
    if not items and not others:
        invoice_cancel(actor=actor, invoice=invoice)
        return
    set_totals(invoice, [*items, *others])
    check_invoice_bounds(invoice, [*items, *others])
    bulk_create_with_history(items, InvoiceItem, default_user=actor)
    _save(invoice, actor)


def order_invoice_follow_status(*, actor: User | None, order: Order, reason: str) -> None:
    """After the order moved (`order_transition`, under the order's lock, in its transaction): a cancelled order's
    draft invoice is cancelled, and an issued one is voided by a full credit note. One in approval is in the way:
    the cancellation is refused until the approval is withdrawn or reverted."""
    if order.status != Order.Status.CANCELLED or order.invoice_id is None:
        return
    invoice = lock_invoice(order.invoice)
    if invoice.status in REPLACEABLE:
        return
    if invoice.is_editable:
        invoice_cancel(actor=actor, invoice=invoice)
    elif invoice.number:
        credit_note_issue(actor=actor, invoice=invoice, reason=f"Order {order.number} cancelled: {reason}")
    else:
        raise InvoiceInTheWay(
            f"{order.number}'s invoice {invoice} is {invoice.get_status_display().lower()}: withdraw or revert its "
            "approval so it is a draft again, then cancel the order.",
            fields={"to_status": ["The order's invoice is in approval."]},
        )


def fee_creditable(invoice: Invoice) -> Decimal:
    """What is left of the fee with its tax after the credit notes so far: the most a partial credit gives back."""
    fee = sum((item.amount + item.tax_amount for item in invoice.items.all() if item.tax_rate > 0), ZERO)
    untaxed = sum((item.amount for item in invoice.items.all() if item.tax_rate == 0), ZERO)
    credited = sum((note.total for note in invoice.credit_notes.all()), ZERO)
    if not fee:
        return max(untaxed - credited, ZERO)
    return max(fee - credited, ZERO)


@transaction.atomic
def order_credit(*, actor: User | None, order: Order, amount: Decimal | None, reason: str) -> CreditNote:
    """Give part of the order's money back (a failed order's partial refund) with a credit note on its issued
    invoice: the amount (tax included) comes off the fee and its tax, the first line, as the ledger credits part
    of an invoice at its first line's rate. Giving back the base charge as well is a full credit note (every line
    exactly): credit the invoice in full (`amount` None, or all that is left)."""
    order = lock_order(order)
    invoice = order.invoice
    if invoice is None or invoice.status in REPLACEABLE or not invoice.number:
        raise DomainError(
            f"{order.number} has no issued invoice to credit.", code="not_invoiced", fields={"amount": ["Nothing."]}
        )
    invoice = lock_invoice(invoice)
    creditable = invoice.total - sum((note.total for note in invoice.credit_notes.all()), ZERO)
    if amount is not None and amount != creditable:
        limit = fee_creditable(invoice)
        if amount > limit:
            raise DomainError(
                f"A partial credit on {order.number} gives back part of its fee with its tax: at most "
                f"{money(limit, invoice.currency)}. To give back the base charge too, credit the whole invoice "
                f"({money(creditable, invoice.currency)}).",
                fields={
                    "amount": [
                        f"At most {money(limit, invoice.currency)} for a partial credit, "
                        f"or {money(creditable, invoice.currency)} for all of it."
                    ]
                },
            )
    return credit_note_issue(actor=actor, invoice=invoice, reason=reason, amount=amount)
