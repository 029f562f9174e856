"""Paying partners (DESIGN.md, "Settlements"): payout batches, their approval, the bank file and the statement.

A batch gathers one partner's approved, unpaid settlements in one currency, approved on or before a cut-off day;
its total (settlements are signed: a correction can be negative) is what is transferred, so a batch is made only
when it is positive. Another Finance user approves it (maker-checker): approval posts `payout` (the partner's
payable to cash) and marks its settlements paid. A batch awaiting approval can be cancelled, which releases its
settlements for a later batch.

Locks: the partners, by primary key (catalog.locks), then the batch, then the settlements by primary key; ledger
accounts last, in `transaction_post`. No customer is locked: a payout belongs to a partner. Two batches built at
once for one partner wait on the partner's lock, and the second finds only what the first left.

The bank file is a SEPA credit transfer (pain.001.001.03, through sepaxml) with one transfer per batch: the
partner is paid the batch's total, which may net a negative correction against other settlements; the
end-to-end id and the message id are the batch's number, so a bank refuses the same file sent twice.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date as Date
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle
from simple_history.utils import bulk_update_with_history

from accounts.models import User
from billing_project import formatting
from billing_project.billing_time import billing_today, day_start
from billing_project.errors import Conflict, DomainError, NotAllowed
from billing_project.pdf_fonts import BOLD, FONT
from catalog.models import Partner
from ledger.models import Transaction
from ledger.pdf import _NORMAL, _SMALL, _TITLE, _build, _facts, _money, _text, _totals
from ledger.services.billing import next_document_number
from ledger.services.journal import Entry, cash_account, payable_account, transaction_post
from orders.locks import lock_settlements
from orders.models import PayoutBatch, Settlement

PAYOUT_SERIES = "PO"
SEPA_SCHEMA = "pain.001.001.03"
SEPA_CURRENCY = "EUR"
REMITTANCE_MAX_LENGTH = 140  # pain.001's unstructured remittance information
ZERO = Decimal("0.00")

CREATE_PERMISSION = "orders.add_payoutbatch"
DECIDE_PERMISSION = "orders.change_payoutbatch"


def _day(value: Date) -> str:
    return formatting.day(value)


def _require(actor: User, permission: str, doing: str) -> None:
    if actor is None or not actor.has_perm(permission):
        raise NotAllowed(f"Only Finance (or an Admin) may {doing}.")


def _lock_partners(partner_ids: Iterable[int]) -> list[Partner]:
    """The partners re-read under their row locks, by primary key: first in a payout's lock order."""
    return list(Partner.objects.select_for_update().filter(pk__in=set(partner_ids)).order_by("pk"))


def _lock_batch(batch: PayoutBatch) -> PayoutBatch:
    """The batch re-read under its lock, after its partner's."""
    _lock_partners([batch.partner_id])
    return PayoutBatch.objects.select_for_update(of=("self",)).select_related("partner").get(pk=batch.pk)


def payable_settlements(partner: Partner, cut_off: Date):
    """A partner's approved settlements not in any batch, approved on or before `cut_off` (billing time zone)."""
    return Settlement.objects.filter(
        partner=partner,
        status=Settlement.Status.APPROVED,
        payout__isnull=True,
        approved_at__lt=day_start(cut_off + timedelta(days=1)),
    )


def _nothing_to_pay(partners: list[Partner], cut_off: Date, reasons: list[str]) -> DomainError:
    names = ", ".join(partner.name for partner in partners)
    message = f"Nothing to pay to {names} up to {_day(cut_off)}: {' '.join(reasons)}"
    return DomainError(message, code="nothing_to_pay", fields={"partners": [message]})


@transaction.atomic
def payout_batch_create(*, actor: User, partners: Iterable[Partner], cut_off: Date) -> list[PayoutBatch]:
    """One batch per chosen partner and currency whose approved, unpaid settlements up to `cut_off` come to more
    than zero; refused whole (nothing made) when there is nothing to pay at all, or a partner to pay has no IBAN."""
    _require(actor, CREATE_PERMISSION, "create payout batches")
    partner_ids = [partner.pk for partner in partners]
    if not partner_ids:
        message = "Choose at least one partner to pay."
        raise DomainError(message, code="required", fields={"partners": [message]})
    if not isinstance(cut_off, Date):
        message = "Give the cut-off date: settlements approved on or before it are paid."
        raise DomainError(message, code="required", fields={"cut_off": [message]})
    locked = _lock_partners(partner_ids)
    batches: list[PayoutBatch] = []
    reasons: list[str] = []
    for partner in locked:
        settlements = lock_settlements(pk__in=payable_settlements(partner, cut_off).values("pk"))
        if not settlements:
            reasons.append(f"{partner.name} has no approved settlement waiting to be paid.")
            continue
        by_currency: dict[str, list[Settlement]] = defaultdict(list)
        for settlement in settlements:
            by_currency[settlement.currency].append(settlement)
        for currency, gathered in sorted(by_currency.items()):
            total = sum((settlement.amount for settlement in gathered), ZERO)
            if total <= 0:
                reasons.append(
                    f"{partner.name}'s {len(gathered)} approved settlement(s) in {currency} come to "
                    f"{formatting.money(total, currency)}, not more than zero; they wait for later ones."
                )
                continue
            if not partner.iban:
                message = (
                    f"{partner.name} has no IBAN: add their bank details on the partner's page before paying "
                    f"them {formatting.money(total, currency)}."
                )
                raise DomainError(message, code="no_iban", fields={"partners": [message]})
            batch = PayoutBatch(
                number=next_document_number(PAYOUT_SERIES),
                partner=partner,
                currency=currency,
                cut_off=cut_off,
                total=total,
                iban=partner.iban,
                bic=partner.bic,
                created_by=actor,
            )
            batch._history_user = actor
            batch.full_clean()
            batch.save()
            for settlement in gathered:
                settlement.payout = batch
            bulk_update_with_history(
                gathered, Settlement, ["payout"], default_user=actor, default_change_reason=f"In {batch.number}"
            )
            batches.append(batch)
    if not batches:
        raise _nothing_to_pay(locked, cut_off, reasons)
    return batches


@transaction.atomic
def payout_batch_approve(*, actor: User, batch: PayoutBatch) -> PayoutBatch:
    """Approve a batch someone else created: post `payout` (payable to cash) and mark its settlements paid."""
    _require(actor, DECIDE_PERMISSION, "approve payout batches")
    batch = _lock_batch(batch)
    if batch.status == PayoutBatch.Status.APPROVED:
        raise Conflict(
            f"{batch.number} is already approved and paid ({_day(timezone.localtime(batch.approved_at))}).",
            code="already_approved",
        )
    if batch.status == PayoutBatch.Status.CANCELLED:
        raise Conflict(f"{batch.number} is cancelled; create a new batch to pay its settlements.", code="cancelled")
    if batch.created_by_id == actor.pk:
        raise NotAllowed(
            f"You created {batch.number}; another Finance user approves it (maker-checker).", code="own_batch"
        )
    settlements = lock_settlements(payout=batch)
    total = sum((settlement.amount for settlement in settlements), ZERO)
    if total != batch.total or any(s.status != Settlement.Status.APPROVED for s in settlements):
        raise Conflict(
            f"{batch.number} no longer matches its settlements ({formatting.money(total, batch.currency)} against "
            f"{formatting.money(batch.total, batch.currency)}); cancel it and create a new batch.",
            code="batch_changed",
        )
    posted = transaction_post(
        kind=Transaction.Kind.PAYOUT,
        entries=[
            Entry(payable_account(batch.partner, batch.currency), debit=batch.total),
            Entry(cash_account(batch.currency), credit=batch.total),
        ],
        description=f"Payout {batch.number} to {batch.partner.name}: {len(settlements)} settlement(s)",
        reference=batch.number,
        source=batch,
        actor=actor,
        idempotency_key=f"payout:{batch.pk}",
    )
    now = timezone.now()
    for settlement in settlements:
        settlement.status = Settlement.Status.PAID
        settlement.paid_at = now
    bulk_update_with_history(
        settlements,
        Settlement,
        ["status", "paid_at"],
        default_user=actor,
        default_change_reason=f"Paid in {batch.number}",
    )
    batch.status = PayoutBatch.Status.APPROVED
    batch.approved_by = actor
    batch.approved_at = now
    batch.ledger_transaction = posted
    batch._history_user = actor
    batch.save(update_fields=["status", "approved_by", "approved_at", "ledger_transaction"])
    return batch


@transaction.atomic
def payout_batch_cancel(*, actor: User, batch: PayoutBatch, reason: str) -> PayoutBatch:
    """Cancel a batch awaiting approval; its settlements wait for another batch."""
    _require(actor, DECIDE_PERMISSION, "cancel payout batches")
    reason = (reason or "").strip()
    if not reason:
        message = "Say why the batch is cancelled."
        raise DomainError(message, code="required", fields={"reason": [message]})
    batch = _lock_batch(batch)
    if batch.status != PayoutBatch.Status.CREATED:
        raise Conflict(
            f"{batch.number} is {batch.get_status_display().lower()}; only a batch awaiting approval is cancelled.",
            code="not_cancellable",
        )
    settlements = lock_settlements(payout=batch)
    for settlement in settlements:
        settlement.payout = None
    bulk_update_with_history(
        settlements,
        Settlement,
        ["payout"],
        default_user=actor,
        default_change_reason=f"Released from {batch.number}",
    )
    batch.status = PayoutBatch.Status.CANCELLED
    batch.cancelled_by = actor
    batch.cancelled_at = timezone.now()
    batch.cancel_reason = reason
    batch._history_user = actor
    batch.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancel_reason"])
    return batch


# --- The bank file and the statement ----------------------------------------------------------------------------


def _settlements_of(batch: PayoutBatch) -> list[Settlement]:
    return list(
        Settlement.objects.filter(payout=batch).select_related("order", "order__order_type").order_by("order__number")
    )


def _remittance(batch: PayoutBatch, settlements: list[Settlement]) -> str:
    """ "PO-2026-000001 revenue share: ORD-…, ORD-…", as many orders as the 140 characters of a transfer hold."""
    numbers = list(dict.fromkeys(settlement.order.number for settlement in settlements))
    prefix = f"{batch.number} revenue share: "
    for shown in range(len(numbers), -1, -1):
        rest = len(numbers) - shown
        more = (", " if shown else "") + f"+{rest} more" if rest else ""
        text = prefix + ", ".join(numbers[:shown]) + more
        if len(text) <= REMITTANCE_MAX_LENGTH:
            return text
    return prefix[:REMITTANCE_MAX_LENGTH]


def payout_batch_pain001(batch: PayoutBatch) -> bytes:
    """The bank's SEPA credit-transfer file (pain.001.001.03) of an approved EUR batch: one transfer of its total."""
    from sepaxml import SepaTransfer

    if batch.currency != SEPA_CURRENCY:
        raise DomainError(
            f"{batch.number} is in {batch.currency}: a SEPA bank file carries euros only; pay it by another "
            f"transfer and keep the statement.",
            code="not_sepa_currency",
        )
    if batch.status != PayoutBatch.Status.APPROVED:
        raise DomainError(
            f"{batch.number} is {batch.get_status_display().lower()}: its bank file is made once it is approved.",
            code="not_approved",
        )
    account = settings.PAYOUT_ACCOUNT
    config = {
        "name": account["name"],
        "IBAN": account["iban"],
        "currency": SEPA_CURRENCY,
        "batch": True,
    }
    if account.get("bic"):
        config["BIC"] = account["bic"]
    transfer = SepaTransfer(config, schema=SEPA_SCHEMA)
    # The message id is the batch's number (sepaxml makes a random one): a bank refuses a message id it has seen,
    # so the same file sent twice pays once.
    transfer._xml.find("CstmrCdtTrfInitn/GrpHdr/MsgId").text = batch.number
    payment = {
        "name": batch.partner.name,
        "IBAN": batch.iban,
        "amount": int((batch.total * 100).to_integral_value()),
        "currency": SEPA_CURRENCY,
        "execution_date": billing_today(),
        "description": _remittance(batch, _settlements_of(batch)),
        "endtoend_id": batch.number,
    }
    if batch.bic:
        payment["BIC"] = batch.bic
    transfer.add_payment(payment)
    return transfer.export(validate=True)


def _ended(settlement: Settlement) -> str:
    order = settlement.order
    if order.completed_at:
        return f"Completed {_day(timezone.localtime(order.completed_at))}"
    if order.failed_at:
        return f"Failed {_day(timezone.localtime(order.failed_at))}"
    return "—"


def payout_statement_pdf(batch: PayoutBatch) -> bytes:
    """The partner's statement of a batch: each settlement with its order and calculation, and the total."""
    if batch.status == PayoutBatch.Status.CANCELLED:
        raise DomainError(f"{batch.number} is cancelled: it pays nothing, so it has no statement.", code="cancelled")
    currency = batch.currency
    settlements = _settlements_of(batch)
    seller = settings.SELLER
    status = (
        f"Paid {_day(timezone.localtime(batch.approved_at))}"
        if batch.status == PayoutBatch.Status.APPROVED
        else "Awaiting approval (not paid yet)"
    )
    header = ["Order", "Type", "Ended", "Net", "%", "Share", "Amount"]
    rows = [
        [
            Paragraph(
                _text(settlement.order.number)
                + (f"<br/>{settlement.kind_label.lower()}" if settlement.is_correction else ""),
                _SMALL,
            ),
            Paragraph(_text(settlement.order.order_type.name), _SMALL),
            Paragraph(_ended(settlement), _SMALL),
            formatting.money(settlement.net),
            formatting.percentage(settlement.percentage),
            formatting.money(settlement.share),
            formatting.money(settlement.amount),
        ]
        for settlement in settlements
    ]
    table = Table(
        [header, *rows],
        # In Vera (billing_project/pdf_fonts.py) an order number and "Completed 28 May 2026" each keep to one
        # line; the order type's name wraps.
        colWidths=[32 * mm, 28 * mm, 40 * mm, 22 * mm, 12 * mm, 20 * mm, 20 * mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTNAME", (0, 0), (-1, 0), BOLD),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, "black"),
                ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story = [
        Paragraph(f"Payout statement {_text(batch.number)}", _TITLE),
        Paragraph(f"<b>{_text(seller['name'])}</b> to <b>{_text(batch.partner.name)}</b>", _NORMAL),
        Spacer(1, 6 * mm),
        _facts(
            [
                ("Batch", batch.number),
                ("Partner", batch.partner.name),
                ("Paid to", f"IBAN {batch.iban}" + (f", BIC {batch.bic}" if batch.bic else "")),
                ("Settlements approved up to", _day(batch.cut_off)),
                ("Status", status),
                ("Amounts in", currency),
            ]
        ),
        Spacer(1, 6 * mm),
        table,
        Spacer(1, 4 * mm),
        _totals([("Settlements", str(len(settlements))), ("Total paid", _money(batch.total, currency))]),
        Spacer(1, 8 * mm),
        Paragraph(
            "Net is what the client paid for the order (fee and base charge, tax excluded), less credit notes and "
            "the order's expenses; share is the net times your percentage; amount is what each settlement adds, "
            "a correction being the difference from the order's earlier settlements.",
            _SMALL,
        ),
    ]
    return _build(f"Payout statement {batch.number}", story)
