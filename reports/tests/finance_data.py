"""Hand-made ledger documents for the finance report tests: invoices, lines, credit notes, payments and refunds
written as they stand, each at the moment given (so their history rows carry that time)."""

from datetime import UTC, datetime
from decimal import Decimal

import time_machine

from ledger.models import BillingConfig, CreditNote, Invoice, InvoiceItem, Payment, Refund


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def D(value) -> Decimal:
    return Decimal(str(value))


def make_invoice(
    customer,
    number: str,
    *,
    issued: str,
    due: str | None = None,
    period: str | None = None,
    lines=(),
    kind=Invoice.Kind.MANUAL,
    status=Invoice.Status.ISSUED,
    paid="0.00",
    credited="0.00",
) -> Invoice:
    """An issued invoice; `lines` are (net, tax rate, service or None, source), tax rounded per line."""
    issued_at = at(issued)
    with time_machine.travel(issued_at, tick=False):
        invoice = Invoice.objects.create(
            customer=customer,
            kind=kind,
            period=datetime.fromisoformat(period or issued[:7] + "-01").date(),
            status=status,
            number=number,
            currency=customer.currency,
            issued_at=issued_at,
            due_date=datetime.fromisoformat(due).date() if due else issued_at.date(),
        )
        subtotal = tax = Decimal("0.00")
        for position, (net, rate, service, source) in enumerate(lines):
            line_tax = (D(net) * D(rate)).quantize(Decimal("0.01"))
            InvoiceItem.objects.create(
                invoice=invoice,
                position=position,
                source=source,
                description=f"Line {position}",
                service=service,
                quantity=Decimal(1),
                unit_price=D(net),
                amount=D(net),
                tax_rate=D(rate),
                tax_amount=line_tax,
            )
            subtotal += D(net)
            tax += line_tax
        invoice.subtotal, invoice.tax, invoice.total = subtotal, tax, subtotal + tax
        invoice.amount_paid, invoice.amount_credited = D(paid), D(credited)
        invoice.save()
    return invoice


def change_invoice(invoice: Invoice, when: str, **fields) -> None:
    """A later change (a payment set against it, a credit), saved at `when` so its history row has that time."""
    with time_machine.travel(at(when), tick=False):
        for name, value in fields.items():
            setattr(invoice, name, D(value) if name.startswith("amount") else value)
        invoice.save()


def make_credit_note(invoice: Invoice, number: str, *, issued: str, subtotal, tax) -> CreditNote:
    return CreditNote.objects.create(
        invoice=invoice,
        customer=invoice.customer,
        number=number,
        currency=invoice.currency,
        subtotal=D(subtotal),
        tax=D(tax),
        total=D(subtotal) + D(tax),
        reason="Goodwill",
        issued_at=at(issued),
    )


def make_payment(customer, reference: str, amount, *, received: str, unallocated="0.00", method="bank_transfer"):
    return Payment.objects.create(
        customer=customer,
        amount=D(amount),
        currency=customer.currency,
        received_at=at(received),
        bank_reference=reference,
        unallocated=D(unallocated),
        method=method,
    )


def make_refund(customer, reference: str, amount, *, paid: str) -> Refund:
    with time_machine.travel(at(paid), tick=False):
        return Refund.objects.create(
            customer=customer, amount=D(amount), currency=customer.currency, reference=reference, reason="Overpaid"
        )


def exempt(customer, reason: str) -> None:
    BillingConfig.objects.update_or_create(
        customer=customer, defaults={"tax_exempt": True, "tax_exempt_reason": reason, "tax_rate": Decimal(0)}
    )
