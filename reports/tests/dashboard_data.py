"""Ledger and usage rows written straight to their tables, at the times a dashboard test needs.

The dashboard reads rows; how the services write them is the ledger's and usage's tests' business. The monthly
totals those services keep in step (ledger.models.MonthlyTotal) are rebuilt from the rows after each write here, as
`manage.py rebuild_ledger_monthly_totals` does. Days and times are in the billing time zone (UTC in the tests).
"""

import itertools
from datetime import date, datetime, time
from decimal import Decimal

from billing_project.billing_time import billing_zone
from catalog.models import PriceAgreement
from catalog.tests.factories import PriceAgreementFactory
from ledger.models import Account, CreditNote, Invoice, Payment, Refund
from ledger.services.monthly_totals import monthly_totals_rebuild
from usage.models import MonthlySummary
from usage.services import service_usage_add

TODAY = date(2026, 12, 15)
NOW = datetime(2026, 12, 15, 12, 0, tzinfo=billing_zone())

_numbers = itertools.count(1)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=billing_zone())


def invoice(
    customer,
    total: str,
    *,
    issued: datetime | None = None,
    status: str | None = None,
    due: date | None = None,
    period: date = date(2026, 11, 1),
    subtotal: str | None = None,
    paid: str = "0.00",
    credited: str = "0.00",
    kind: str = Invoice.Kind.MANUAL,
    actor=None,
) -> Invoice:
    """An invoice of `total` (tax included; without `subtotal`, untaxed); issued (numbered) when `issued` is given."""
    status = status or (Invoice.Status.ISSUED if issued else Invoice.Status.DRAFT)
    amount = Decimal(total)
    row = Invoice(
        customer=customer,
        kind=kind,
        period=period,
        status=status,
        number=f"INV-2026-{next(_numbers):06d}" if issued else None,
        currency=customer.currency,
        subtotal=Decimal(subtotal) if subtotal else amount,
        tax=amount - Decimal(subtotal) if subtotal else Decimal("0.00"),
        total=amount,
        amount_paid=Decimal(paid),
        amount_credited=Decimal(credited),
        issued_at=issued,
        due_date=due,
    )
    row._history_user = actor
    row.save()
    monthly_totals_rebuild(customer_ids=[customer.pk])
    return row


def credit_note(invoice_row: Invoice, total: str, *, issued: datetime, subtotal: str | None = None) -> CreditNote:
    amount = Decimal(total)
    row = CreditNote.objects.create(
        invoice=invoice_row,
        customer=invoice_row.customer,
        number=f"CN-2026-{next(_numbers):06d}",
        currency=invoice_row.currency,
        subtotal=Decimal(subtotal) if subtotal else amount,
        tax=amount - Decimal(subtotal) if subtotal else Decimal("0.00"),
        total=amount,
        reason="Test",
        issued_at=issued,
    )
    monthly_totals_rebuild(customer_ids=[invoice_row.customer_id])
    return row


def payment(customer, amount: str, *, received: datetime, actor=None) -> Payment:
    row = Payment(
        customer=customer,
        amount=Decimal(amount),
        currency=customer.currency,
        received_at=received,
        bank_reference=f"BANK-{next(_numbers)}",
    )
    row._history_user = actor
    row.save()
    monthly_totals_rebuild(customer_ids=[customer.pk])
    return row


def refund(customer, amount: str, *, made: datetime) -> Refund:
    row = Refund.objects.create(customer=customer, amount=Decimal(amount), currency=customer.currency, reason="Test")
    Refund.objects.filter(pk=row.pk).update(created_at=made)  # auto_now_add set it to now
    monthly_totals_rebuild(customer_ids=[customer.pk])
    return row


def balance(customer, amount: str) -> Account:
    """The customer's receivable account with this balance (positive: owes; negative: holds credit)."""
    account, _ = Account.objects.update_or_create(
        kind=Account.Kind.RECEIVABLE,
        customer=customer,
        currency=customer.currency,
        defaults={"balance": Decimal(amount)},
        create_defaults={
            "balance": Decimal(amount),
            "code": f"receivable:{customer.pk}",
            "name": f"Receivable {customer.name}",
        },
    )
    return account


def usage(customer, service, amount: str, *, period: date) -> MonthlySummary:
    agreement = PriceAgreement.objects.filter(customer=customer, service=service).first() or PriceAgreementFactory(
        customer=customer, service=service, valid_from=date(2025, 1, 1)
    )
    service_usage_add({(period, customer.currency, service.pk): Decimal(amount)})  # as the import adds it
    return MonthlySummary.objects.create(
        customer=customer,
        service=service,
        period=period,
        price_agreement=agreement,
        unit_price=Decimal("0.010000"),
        quantity=Decimal("100"),
        record_count=1,
        amount=Decimal(amount),
        first_service_time=at(period),
        last_service_time=at(period),
    )
