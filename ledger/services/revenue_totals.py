"""Revenue by month billed, currency and service over every customer (ledger.models.ServiceRevenue): what the
revenue report reads for every customer instead of every invoice line, so that its first page does not grow with
them.

`invoice_issue` adds an issued invoice's lines to the month it bills, `credit_note_issue` the note's shares of them
(ledger.credit_shares, as the ledger posts them) to the same month, each in its own database transaction. The rows
are shared between customers: they are locked after the posting's accounts, in key order (ledger/locks.py), so
issues wait for each other only where they already wait for the revenue accounts.

`revenue_by_line` computes the same figures from the rows, for any set of invoices: the report's path for one
customer or a scoped user, and `revenue_totals_rebuild` (`manage.py rebuild_ledger_monthly_totals`). Sums are made
in Python, exact on every database (SQLite sums decimals as floating point).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet

from ledger.credit_shares import Share
from ledger.models import CreditNote, Invoice, InvoiceItem, ServiceRevenue
from ledger.selectors import credit_note_shares
from ledger.services.monthly_totals import billing_month

ZERO = Decimal("0.00")
FIELDS = ("invoiced", "credited")

Key = tuple[date, str, int | None, str]  # month billed, currency, service id, source of a line without a service
Figures = dict[Key, dict[str, Decimal]]


def line_key(month: date, currency: str, service_id: int | None, source: str) -> Key:
    return (month, currency, service_id, "" if service_id is not None else source)


def _sort_key(key: Key) -> tuple:
    month, currency, service_id, source = key
    return (month, currency, service_id is None, service_id or 0, source)


@transaction.atomic
def revenue_totals_add(changes: Figures) -> None:
    """Add `changes` ({key: {field: amount}}) to their rows, each created if missing and locked, in key order."""
    for key in sorted(changes, key=_sort_key):
        amounts = {field: amount for field, amount in changes[key].items() if amount}
        if not amounts:
            continue
        month, currency, service_id, source = key
        lookup = {"month": month, "currency": currency, "service_id": service_id, "source": source}
        ServiceRevenue.objects.bulk_create([ServiceRevenue(**lookup)], ignore_conflicts=True)
        row = ServiceRevenue.objects.select_for_update().get(**lookup)
        for field, amount in amounts.items():
            setattr(row, field, getattr(row, field) + amount)
        row.save(update_fields=list(amounts))


def _month_billed(invoice) -> date:
    return billing_month(invoice.kind, invoice.period, invoice.issued_at)


def revenue_totals_on_issue(issued: Iterable[tuple[Invoice, Iterable[InvoiceItem]]]) -> None:
    """Invoices were issued, each with its lines: the lines count in the month their invoice bills."""
    changes: Figures = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))
    for invoice, items in issued:
        month = _month_billed(invoice)
        for item in items:
            changes[line_key(month, invoice.currency, item.service_id, item.source)]["invoiced"] += item.amount
    revenue_totals_add(changes)


def revenue_totals_on_credit_note(invoice: Invoice, shares: Iterable[Share]) -> None:
    """A credit note was issued on `invoice`: its shares of the lines come off the invoice's month billed."""
    changes: Figures = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))
    month = _month_billed(invoice)
    for share in shares:
        changes[line_key(month, invoice.currency, share.item.service_id, share.item.source)]["credited"] += share.amount
    revenue_totals_add(changes)


def revenue_by_line(invoices: QuerySet, *, models: tuple = (InvoiceItem, CreditNote)) -> Figures:
    """The figures of these issued invoices computed from their lines and credit notes, {key: {field: amount}},
    leaving out keys with nothing. `models` lets a migration pass its historical models."""
    item_model = models[0]
    figures: Figures = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))
    months: dict[int, tuple[date, str]] = {}
    for pk, kind, period, issued_at, currency in (
        invoices.filter(issued_at__isnull=False).order_by().values_list("pk", "kind", "period", "issued_at", "currency")
    ).iterator(5000):
        months[pk] = (billing_month(kind, period, issued_at), currency)
    ids = list(months)
    chunk = 5000
    for start in range(0, len(ids), chunk):
        some = ids[start : start + chunk]
        lines = item_model.objects.filter(invoice_id__in=some).order_by()
        for invoice_id, service_id, source, amount in lines.values_list("invoice_id", "service_id", "source", "amount"):
            month, currency = months[invoice_id]
            figures[line_key(month, currency, service_id, source)]["invoiced"] += amount
        for shares in credit_note_shares(some, models=models).values():
            for share in shares:
                month, currency = months[share.item.invoice_id]
                key = line_key(month, currency, share.item.service_id, share.item.source)
                figures[key]["credited"] += share.amount
    return {key: amounts for key, amounts in figures.items() if any(amounts.values())}


def write_revenue_totals(figures: Figures, *, model=ServiceRevenue) -> int:
    model.objects.bulk_create(
        (
            model(month=month, currency=currency, service_id=service_id, source=source, **amounts)
            for (month, currency, service_id, source), amounts in sorted(figures.items(), key=lambda i: _sort_key(i[0]))
        ),
        batch_size=5000,
    )
    return len(figures)


@transaction.atomic
def revenue_totals_rebuild() -> int:
    """Recompute the revenue by month and service from every issued invoice and credit note; returns how many rows
    there are now. The rows are locked (the table emptied) until the commit."""
    ServiceRevenue.objects.all().delete()
    return write_revenue_totals(revenue_by_line(Invoice.objects.all()))
