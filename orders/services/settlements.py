"""Partner settlements (DESIGN.md, "Settlements"): a partner's share of an order's revenue when it ends.

When an order becomes completed or failed, `orders_settle` calculates its settlement in the same transaction;
a receipt, credit note or expense that arrives later calculates it again (orders.signals, and the expense
services). A calculation that changes nothing writes nothing. Otherwise:

- the order's first settlement is created (sequence 1);
- a settlement still `calculated` (not approved) is voided and replaced by a new one: settlements are never edited;
- once settlements are approved, a correcting settlement carries the difference, positive or negative.

Each new settlement opens an approval request (approvals, maker-checker: whoever triggered it cannot approve it);
its approval posts `settlement`, the partner-share expense against the partner's payable (orders.approval).

The calculation, to the cent: the fee (with its tax) and the base charge each still owe what was billed less the
credit notes on them (a partial credit note comes off the fee, the invoice's first line, as the ledger credits
it; a full one takes what is left of both). What the client paid counts up to what is owed after those credit
notes (anything beyond it went back by a credit note) and is split between the two in proportion to what each
owes, each part rounded half up to the cent; the fee's tax is then left out. So a credit note counts once,
whether it came before or after the payment. net = fee received + base charge received − expenses, never below
zero; share = round_half_up(net × percentage / 100, 2).

Locks: the customers, then the orders (orders.locks), then the settlements; ledger accounts come last, when an
approval posts.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from approvals.models import ApprovalRequest
from approvals.services import approval_submit_many, approval_withdraw, request_for
from billing_project.billing_time import billing_zone
from billing_project.money import EXACT, round_amount
from ledger.models import CreditNote, Invoice, InvoiceItem, Transaction
from ledger.services.journal import Entry, expense_account, payable_account, transaction_post
from orders.locks import lock_order, lock_orders
from orders.models import Expense, Order, RevenueShareAgreement, Settlement

ZERO = Decimal("0.00")
HUNDRED = Decimal("100")
ENDED = (Order.Status.COMPLETED, Order.Status.FAILED)
BILLED = {Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID, Invoice.Status.VOID}


@dataclass(frozen=True)
class NoSettlement:
    """Why an ended order has no settlement, for its page."""

    reason: str


def ended_on(order: Order) -> date | None:
    """The day (billing time zone) the order completed or failed; None while it has not ended."""
    moment = order.completed_at if order.status == Order.Status.COMPLETED else order.failed_at
    if order.status not in ENDED or moment is None:
        return None
    return moment.astimezone(billing_zone()).date()


def _pick_agreement(order: Order, day: date, agreements: list[RevenueShareAgreement]) -> RevenueShareAgreement | None:
    """A type-specific agreement in force on `day` wins over the partner's general one (orders.selectors)."""
    in_force = [
        agreement
        for agreement in agreements
        if agreement.partner_id == order.partner_id
        and agreement.valid_from <= day
        and (agreement.valid_to is None or agreement.valid_to >= day)
    ]
    specific = [agreement for agreement in in_force if agreement.order_type_id == order.order_type_id]
    general = [agreement for agreement in in_force if agreement.order_type_id is None]
    return (specific or general or [None])[0]


def _received(invoice: Invoice | None, items: list[InvoiceItem], notes: list[CreditNote]) -> dict:
    """What the client paid towards the fee and the base charge, tax left out, with the figures behind it."""
    fee_items = [item for item in items if item.source == InvoiceItem.Source.ORDER_FEE]
    fee = sum((item.amount for item in fee_items), ZERO)
    fee_gross = fee + sum((item.tax_amount for item in fee_items), ZERO)
    tax_rate = fee_items[0].tax_rate if fee_items else Decimal("0")
    base = sum((item.amount for item in items if item.source == InvoiceItem.Source.DISBURSEMENT), ZERO)
    billed = invoice is not None and invoice.status in BILLED
    fee_left, fee_gross_left, base_left = (fee, fee_gross, base) if billed else (ZERO, ZERO, ZERO)
    fee_credited = base_credited = ZERO
    for note in notes:
        if note.full:
            fee_credited += fee_left
            base_credited += base_left
            fee_left = fee_gross_left = base_left = ZERO
        else:  # a partial note comes off the fee and its tax, the first line; what exceeds them off the base charge
            on_fee = min(note.total, fee_gross_left)
            on_fee_net = note.subtotal if on_fee == note.total else round_amount(EXACT.divide(on_fee, 1 + tax_rate))
            fee_credited += on_fee_net
            fee_left -= on_fee_net
            fee_gross_left -= on_fee
            base_credited += note.total - on_fee
            base_left -= note.total - on_fee
    owed = fee_gross_left + base_left
    paid = invoice.amount_paid if billed else ZERO
    received = min(paid, owed)
    fee_received_gross = round_amount(EXACT.divide(received * fee_gross_left, owed)) if owed > 0 else ZERO
    base_received = round_amount(EXACT.divide(received * base_left, owed)) if owed > 0 else ZERO
    fee_received = round_amount(EXACT.divide(fee_received_gross, 1 + tax_rate))
    return {
        "invoice": invoice.number if billed else None,
        "fee_billed": fee if billed else ZERO,
        "fee_tax_rate": tax_rate,
        "base_charge_billed": base if billed else ZERO,
        "fee_credited": fee_credited,
        "base_charge_credited": base_credited,
        "owed_after_credit_notes": owed,
        "paid": paid,
        "fee_received_with_tax": fee_received_gross,
        "fee_received": fee_received,
        "base_charge_received": base_received,
    }


def _calculation(
    order: Order, *, agreement: RevenueShareAgreement, day: date, received: dict, expenses: Decimal
) -> dict:
    net = max(received["fee_received"] + received["base_charge_received"] - expenses, ZERO)
    share = round_amount(EXACT.divide(net * agreement.percentage, HUNDRED))
    figures = {**received, "expenses": expenses, "net": net, "percentage": agreement.percentage, "share": share}
    return {
        "order": order.number,
        "order_status": order.status,
        "ended_on": day.isoformat(),
        "currency": order.currency,
        "agreement": {
            "id": agreement.pk,
            "partner": agreement.partner.name,
            "order_type": agreement.order_type.name if agreement.order_type_id else None,
            "percentage": str(agreement.percentage),
            "valid_from": agreement.valid_from.isoformat(),
            "valid_to": agreement.valid_to.isoformat() if agreement.valid_to else None,
        },
        **{key: (str(value) if isinstance(value, Decimal) else value) for key, value in figures.items()},
    }


class _Inputs:
    """Everything the calculation of a batch of orders reads, in a fixed number of queries."""

    def __init__(self, orders: list[Order]) -> None:
        invoice_ids = [order.invoice_id for order in orders if order.invoice_id]
        self.invoices = {invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=invoice_ids)}
        self.items: dict[int, list[InvoiceItem]] = {pk: [] for pk in invoice_ids}
        for item in InvoiceItem.objects.filter(invoice_id__in=invoice_ids).order_by("invoice_id", "position"):
            self.items[item.invoice_id].append(item)
        self.notes: dict[int, list[CreditNote]] = {pk: [] for pk in invoice_ids}
        for note in CreditNote.objects.filter(invoice_id__in=invoice_ids).order_by("issued_at", "pk"):
            self.notes[note.invoice_id].append(note)
        order_ids = [order.pk for order in orders]
        self.expenses = dict(
            Expense.objects.filter(order_id__in=order_ids)
            .values("order_id")
            .annotate(total=Sum("amount"))
            .values_list("order_id", "total")
        )
        partner_ids = {order.partner_id for order in orders if order.partner_id}
        self.agreements = list(
            RevenueShareAgreement.objects.filter(partner_id__in=partner_ids).select_related("partner", "order_type")
        )
        self.settlements: dict[int, list[Settlement]] = {pk: [] for pk in order_ids}
        for settlement in Settlement.objects.filter(order_id__in=order_ids).order_by("sequence"):
            self.settlements[settlement.order_id].append(settlement)

    def calculate(self, order: Order) -> dict | NoSettlement:
        day = ended_on(order)
        if day is None:
            return NoSettlement(f"{order.number} has not ended: it is settled once it is completed or failed.")
        if order.partner_id is None:
            return NoSettlement(f"{order.number} has no partner, so no revenue share is due.")
        agreement = _pick_agreement(order, day, self.agreements)
        if agreement is None:
            return NoSettlement(
                f"{order.partner.name} has no revenue-share agreement for {order.order_type.name} (nor a general "
                f"one) in force on {day:%d %b %Y}, the day {order.number} ended: no settlement."
            )
        invoice = self.invoices.get(order.invoice_id)
        received = _received(invoice, self.items.get(order.invoice_id, []), self.notes.get(order.invoice_id, []))
        expenses = round_amount(self.expenses.get(order.pk) or ZERO)
        return _calculation(order, agreement=agreement, day=day, received=received, expenses=expenses)


def settlement_explanation(order: Order) -> NoSettlement | None:
    """Why the order has no settlement (shown on its page), or None when it has or will have one."""
    if Settlement.objects.filter(order=order).exists():
        return None
    outcome = _Inputs([order]).calculate(order)
    return outcome if isinstance(outcome, NoSettlement) else None


def _void(settlements: list[Settlement], *, actor: User | None, reason: str) -> None:
    """Void calculated settlements (never approved, so never posted) and withdraw their approval requests."""
    now = timezone.now()
    for settlement in settlements:
        request = request_for(settlement)
        if request is not None and request.status == ApprovalRequest.Status.PENDING:
            approval_withdraw(actor=actor, request=request, comment=reason)
        settlement.status, settlement.voided_at, settlement.void_reason = Settlement.Status.VOID, now, reason
        settlement._history_user = actor
        settlement.save(update_fields=["status", "voided_at", "void_reason"])


def settle_locked_orders(orders: list[Order], *, actor: User | None, reason: str) -> list[Settlement]:
    """Calculate the orders (the caller holds their locks, as order_transition does) and write what changed;
    returns the new settlements."""
    inputs = _Inputs(orders)
    now = timezone.now()
    new: list[Settlement] = []
    to_void: list[Settlement] = []
    for order in orders:
        outcome = inputs.calculate(order)
        existing = inputs.settlements[order.pk]
        pending = [settlement for settlement in existing if settlement.status == Settlement.Status.CALCULATED]
        if isinstance(outcome, NoSettlement):
            to_void.extend(pending)  # e.g. reopened, or the partner removed: nothing stays to approve
            continue
        if pending and pending[0].calculation == outcome:
            continue  # calculated before from the same inputs: nothing changed
        approved = [s for s in existing if s.status in (Settlement.Status.APPROVED, Settlement.Status.PAID)]
        given = sum((settlement.amount for settlement in approved), ZERO)
        share = Decimal(outcome["share"])
        to_void.extend(pending)
        if approved and share == given:
            continue  # the approved settlements already give exactly this share: no correction
        new.append(
            Settlement(
                order=order,
                partner_id=order.partner_id,
                agreement_id=outcome["agreement"]["id"],
                sequence=(existing[-1].sequence + 1) if existing else 1,
                is_correction=bool(approved),
                currency=order.currency,
                net=Decimal(outcome["net"]),
                percentage=Decimal(outcome["percentage"]),
                share=share,
                amount=share - given,
                calculation=outcome,
                calculated_at=now,
                calculated_by=actor,
            )
        )
    _void(to_void, actor=actor, reason=reason)
    if not new:
        return []
    created = bulk_create_with_history(new, Settlement, default_user=actor)
    approval_submit_many(actor=actor, targets=created, comment=reason)
    return created


@transaction.atomic
def orders_settle(*, actor: User | None, orders: list[Order], reason: str = "") -> list[Settlement]:
    """Settle the orders (those that have not ended are left alone, apart from voiding a settlement not yet
    approved); in a fixed number of queries for the calculation and the writes, whatever the number of orders."""
    locked = lock_orders(orders)
    return settle_locked_orders(locked, actor=actor, reason=reason or "Calculated when the order ended.")


@transaction.atomic
def order_settle(*, actor: User | None, order: Order, reason: str = "") -> Settlement | None:
    """Settle one order: the new settlement, or None when nothing changed or none is due."""
    order = lock_order(order)
    created = settle_locked_orders([order], actor=actor, reason=reason or "Calculated again.")
    return created[0] if created else None


def _share_account(currency: str):
    return expense_account("partner_share", currency, label="Partner revenue share")


def settlement_approved(*, actor: User | None, settlement: Settlement) -> Settlement:
    """Called by approvals once the settlement is approved (orders.approval): post `settlement`, the partner-share
    expense against the partner's payable (the other way round for a negative correction); 0.00 posts nothing."""
    amount = settlement.amount
    if amount:
        payable = payable_account(settlement.partner, settlement.currency)
        share = _share_account(settlement.currency)
        entries = (
            [Entry(share, debit=amount), Entry(payable, credit=amount)]
            if amount > 0
            else [Entry(payable, debit=-amount), Entry(share, credit=-amount)]
        )
        settlement.ledger_transaction = transaction_post(
            kind=Transaction.Kind.SETTLEMENT,
            entries=entries,
            description=f"Partner share of {settlement.order.number} for {settlement.partner.name} ({settlement})",
            reference=settlement.order.number,
            source=settlement,
            actor=actor,
            idempotency_key=f"settlement:{settlement.pk}",
        )
    settlement.status = Settlement.Status.APPROVED
    settlement.approved_at, settlement.approved_by = timezone.now(), actor
    settlement._history_user = actor
    settlement.save(update_fields=["status", "approved_at", "approved_by", "ledger_transaction"])
    return settlement


def settlement_rejected(*, actor: User | None, settlement: Settlement) -> Settlement:
    """A rejected calculation is void: once what was wrong is fixed (an expense reversed, the agreement corrected),
    calculating the order again makes a new one."""
    settlement.status, settlement.voided_at = Settlement.Status.VOID, timezone.now()
    settlement.void_reason = "Rejected in approval."
    settlement._history_user = actor
    settlement.save(update_fields=["status", "voided_at", "void_reason"])
    return settlement
