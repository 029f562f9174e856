"""The customers' monthly totals (ledger.models.MonthlyTotal): what the dashboard sums instead of every invoice,
credit note, payment and refund, so that its reads do not grow with them; with the two rollups made from them,
kept in the same transaction: the totals over every customer (MonthlyGrandTotal) and each customer's revenue over
the twelve months ending with each month (TrailingRevenue).

Each service that writes one of those rows adds to its customer's month here, in its own database transaction:
`invoice_issue` (invoiced in the month of issue, revenue in the month billed), `credit_note_issue` (credited in
the month of the note, revenue credited in its invoice's month billed), `payment_record` (received in the month
received) and `refund_record` (refunded in the month paid). A customer's rows (monthly totals, trailing revenue)
are locked only while the customer is (every caller holds its lock), so they wait in the customer's turn and
never deadlock; the grand totals are shared between customers and are locked last, in month order
(ledger/locks.py).

`monthly_totals_rebuild` recomputes them from the rows (`manage.py rebuild_ledger_monthly_totals`): after rows
were written behind the services' back (a bulk load, a restore), or to check them. Sums are made in Python, exact
on every database (SQLite sums decimals as floating point).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction

from billing_project.billing_time import add_months, billing_zone
from billing_project.bulk import add_to_rows
from catalog.locks import lock_customers
from ledger.models import CreditNote, Invoice, MonthlyGrandTotal, MonthlyTotal, Payment, Refund, TrailingRevenue

FIELDS = ("invoiced", "credited", "received", "refunded", "revenue", "revenue_credited")
ZERO = Decimal("0.00")
WINDOW = 12  # months of trailing revenue

Key = tuple[int, date, str]  # customer id, month, currency


def windows_holding(month: date) -> list[date]:
    """The last months of the twelve-month windows that hold `month`: it and the eleven after it."""
    return [add_months(month, offset) for offset in range(WINDOW)]


def month_of(moment: datetime) -> date:
    """The first day of the month `moment` falls in, in the billing time zone."""
    return moment.astimezone(billing_zone()).date().replace(day=1)


def billing_month(kind: str, period: date, issued_at: datetime | None) -> date:
    """The month an issued invoice's revenue counts in: the month it bills; an order invoice's, the month issued."""
    if kind == Invoice.Kind.ORDER and issued_at is not None:
        return month_of(issued_at)
    return period.replace(day=1)


@transaction.atomic
def monthly_totals_add(*, customer_id: int, currency: str, changes: dict[date, dict[str, Decimal]]) -> None:
    """Add `changes` ({month: {field: amount}}) to the customer's months (`monthly_totals_add_many`). The caller
    holds the customer's lock."""
    monthly_totals_add_many({(customer_id, month, currency): amounts for month, amounts in changes.items()})


@transaction.atomic
def monthly_totals_add_many(changes: dict[Key, dict[str, Decimal]]) -> None:
    """Add `changes` ({(customer id, month, currency): {field: amount}}) to the customers' months, each row made if
    missing and locked, in key order; then the revenue to the windows that hold its months, and everything to the
    grand totals, locked last, in month order. The caller holds the customers' locks."""
    changes = {key: {field: amounts.get(field, ZERO) for field in FIELDS} for key, amounts in changes.items()}
    windows = {key: {"amount": amount} for key, amount in trailing_revenue(changes).items()}
    grand = grand_totals(changes)
    add_to_rows(MonthlyTotal, ("customer_id", "month", "currency"), changes)
    add_to_rows(TrailingRevenue, ("customer_id", "month", "currency"), windows)
    add_to_rows(MonthlyGrandTotal, ("month", "currency"), grand)


def monthly_totals_on_issue(invoices: Iterable[Invoice]) -> None:
    """Invoices were issued: each invoiced in the month of issue, its revenue in the month it bills."""
    changes: dict[Key, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))
    for invoice in invoices:
        changes[invoice.customer_id, month_of(invoice.issued_at), invoice.currency]["invoiced"] += invoice.total
        month = billing_month(invoice.kind, invoice.period, invoice.issued_at)
        changes[invoice.customer_id, month, invoice.currency]["revenue"] += invoice.subtotal
    monthly_totals_add_many(changes)


def monthly_totals_on_credit_note(note: CreditNote, invoice: Invoice) -> None:
    changes: dict[date, dict[str, Decimal]] = defaultdict(dict)
    changes[month_of(note.issued_at)]["credited"] = note.total
    changes[billing_month(invoice.kind, invoice.period, invoice.issued_at)]["revenue_credited"] = note.subtotal
    monthly_totals_add(customer_id=note.customer_id, currency=note.currency, changes=changes)


def monthly_totals_on_payment(payment: Payment) -> None:
    monthly_totals_add(
        customer_id=payment.customer_id,
        currency=payment.currency,
        changes={month_of(payment.received_at): {"received": payment.amount}},
    )


def monthly_totals_on_refund(refund: Refund) -> None:
    monthly_totals_add(
        customer_id=refund.customer_id,
        currency=refund.currency,
        changes={month_of(refund.created_at): {"refunded": refund.amount}},
    )


def computed_monthly_totals(
    customer_ids: list[int] | None = None,
    *,
    models: tuple = (Invoice, CreditNote, Payment, Refund),
) -> dict[Key, dict[str, Decimal]]:
    """The monthly totals as the rows make them, {(customer id, month, currency): {field: amount}}, leaving out
    months with nothing. `models` lets a migration pass its historical models."""
    invoice_model, note_model, payment_model, refund_model = models
    totals: dict[Key, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))

    def scoped(queryset):
        return queryset if customer_ids is None else queryset.filter(customer_id__in=customer_ids)

    invoices = scoped(invoice_model.objects.filter(issued_at__isnull=False)).values_list(
        "pk", "customer_id", "currency", "kind", "period", "issued_at", "total", "subtotal"
    )
    months_billed = {}
    for pk, customer_id, currency, kind, period, issued_at, total, subtotal in invoices.order_by().iterator(5000):
        totals[customer_id, month_of(issued_at), currency]["invoiced"] += total
        months_billed[pk] = billing_month(kind, period, issued_at)
        totals[customer_id, months_billed[pk], currency]["revenue"] += subtotal
    notes = scoped(note_model.objects.all()).values_list(
        "customer_id", "currency", "issued_at", "total", "subtotal", "invoice_id"
    )
    for customer_id, currency, issued_at, total, subtotal, invoice_id in notes.order_by().iterator(5000):
        totals[customer_id, month_of(issued_at), currency]["credited"] += total
        month = months_billed.get(invoice_id)
        if month is None:  # a note on another customer's invoice cannot be; an unissued one neither
            invoice = invoice_model.objects.get(pk=invoice_id)
            month = billing_month(invoice.kind, invoice.period, invoice.issued_at)
        totals[customer_id, month, currency]["revenue_credited"] += subtotal
    payments = scoped(payment_model.objects.all()).values_list("customer_id", "currency", "received_at", "amount")
    for customer_id, currency, received_at, amount in payments.order_by().iterator(5000):
        totals[customer_id, month_of(received_at), currency]["received"] += amount
    refunds = scoped(refund_model.objects.all()).values_list("customer_id", "currency", "created_at", "amount")
    for customer_id, currency, created_at, amount in refunds.order_by().iterator(5000):
        totals[customer_id, month_of(created_at), currency]["refunded"] += amount
    return {key: figures for key, figures in totals.items() if any(figures.values())}


def trailing_revenue(totals: dict[Key, dict[str, Decimal]]) -> dict[Key, Decimal]:
    """The twelve-month windows the monthly totals make, {(customer id, last month, currency): revenue}: every
    window that holds a month with revenue (it may add up to nothing: an invoice credited in full)."""
    windows: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    for (customer_id, month, currency), figures in totals.items():
        revenue = figures["revenue"] - figures["revenue_credited"]
        if figures["revenue"] or figures["revenue_credited"]:
            for end in windows_holding(month):
                windows[customer_id, end, currency] += revenue
    return dict(windows)


def write_monthly_totals(totals: dict[Key, dict[str, Decimal]], *, model=MonthlyTotal) -> int:
    """Write these monthly totals. `model` lets a migration pass its historical model."""
    model.objects.bulk_create(
        (
            model(customer_id=customer_id, month=month, currency=currency, **figures)
            for (customer_id, month, currency), figures in sorted(totals.items())
        ),
        batch_size=5000,
    )
    return len(totals)


def write_trailing_revenue(totals: dict[Key, dict[str, Decimal]]) -> None:
    """Write the windows of these monthly totals."""
    TrailingRevenue.objects.bulk_create(
        (
            TrailingRevenue(customer_id=customer_id, month=month, currency=currency, amount=amount)
            for (customer_id, month, currency), amount in sorted(trailing_revenue(totals).items())
        ),
        batch_size=5000,
    )


def grand_totals(totals: dict[Key, dict[str, Decimal]]) -> dict[tuple[date, str], dict[str, Decimal]]:
    """Monthly totals added up over their customers, {(month, currency): {field: amount}}."""
    grand: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FIELDS, ZERO))
    for (_, month, currency), figures in totals.items():
        for field, amount in figures.items():
            grand[month, currency][field] += amount
    return dict(grand)


def _stored(customer_ids: list[int]) -> dict[Key, dict[str, Decimal]]:
    rows = MonthlyTotal.objects.filter(customer_id__in=customer_ids).order_by()
    return {
        (customer_id, month, currency): dict(zip(FIELDS, figures, strict=True))
        for customer_id, month, currency, *figures in rows.values_list("customer_id", "month", "currency", *FIELDS)
    }


@transaction.atomic
def monthly_totals_rebuild(*, customer_ids: list[int] | None = None) -> int:
    """Recompute the monthly totals and trailing revenue of these customers (all when None) from their invoices,
    credit notes, payments and refunds, and the grand totals with them; returns how many monthly totals these
    customers have now.

    Some customers: under their locks, and the grand totals change by the difference their rebuilt totals make,
    locked in (month, currency) order like every writer's, so the other customers' writes meanwhile are kept.
    Every customer: the three tables are locked against writers until the commit (PostgreSQL; SQLite has one
    writer at a time), in the order the writers lock their rows, and rewritten."""
    if customer_ids is not None:
        lock_customers(customer_ids)
        before = grand_totals(_stored(customer_ids))
        MonthlyTotal.objects.filter(customer_id__in=customer_ids).delete()
        TrailingRevenue.objects.filter(customer_id__in=customer_ids).delete()
    else:
        _lock_tables(MonthlyTotal, TrailingRevenue, MonthlyGrandTotal)
        MonthlyTotal.objects.all().delete()
        TrailingRevenue.objects.all().delete()
        MonthlyGrandTotal.objects.all().delete()
        before = {}
    totals = computed_monthly_totals(customer_ids)
    count = write_monthly_totals(totals)
    write_trailing_revenue(totals)
    after = grand_totals(totals)
    zero = dict.fromkeys(FIELDS, ZERO)
    differences = {
        key: {field: after.get(key, zero)[field] - before.get(key, zero)[field] for field in FIELDS}
        for key in {*before, *after}
    }
    add_to_rows(MonthlyGrandTotal, ("month", "currency"), differences)
    return count


def _lock_tables(*models) -> None:
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
