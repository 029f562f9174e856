"""The dashboard's figures (DESIGN.md, "Reports and KPIs"), as selectors over the customers a user may see.

Every selector takes a `Scope`: the ids of the customers the user may see, or None for every customer
(usage.selectors.visible_customer_ids, so a CSM's figures are their customers' and their deputies' only). Money is
per currency, never converted: a money figure answers {currency: amount}, currencies in alphabetical order, and a
currency appears only when something of it counts. Days are in BILLING_TIME_ZONE.

Each selector is one statement that aggregates in the database, whatever the data's size: the dashboard's number of
queries does not grow with the data. Usage is read from the usage kept per month and service (usage.models.
ServiceUsage; a CSM's, from their customers' monthly summaries), never from the usage records; invoiced, collected
and revenue by month from the customers' monthly totals (ledger.models.MonthlyTotal), never from every invoice and
payment.

Definitions:
- invoiced in a period: totals (tax included) of invoices issued in it, minus the credit notes issued in it;
- collected: payments received in the period, minus refunds made in it;
- receivables: the debit balances of customers' receivable accounts; credit held: their credit balances, as positive
  amounts;
- aging at a day, per open invoice (issued or overdue) by days past its due date: current (not past due: 0 days or
  not yet due), 1–30, 31–60, 61–90, over 90; the amount is what is still open on it (total − credited − paid);
- DSO at a day: receivables ÷ invoiced in the 90 days ending that day (it included) × 90, rounded half up to a day;
  None for a currency with nothing invoiced;
- revenue: invoiced without tax (subtotals), by the month the invoice bills (its period), order invoices by the
  month they are issued; a credit note takes its subtotal off its invoice's month;
- usage revenue: the monthly summaries' amounts, i.e. usage at its snapshot prices before allowances and monthly
  fees (what rating starts from; the invoice applies the rest at month-end).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Case, Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum, Value, When, Window
from django.db.models.functions import RowNumber

from accounts.models import User
from billing_project import lookups  # noqa: F401  (registers __in_array)
from billing_project.billing_time import add_months, day_start
from billing_project.money import round_amount
from catalog.models import Customer
from ledger.models import Account, CreditNote, Invoice, MonthlyGrandTotal, MonthlyTotal, TrailingRevenue
from orders.models import Order
from orders.selectors import order_list_parts_for
from usage.models import MonthlySummary, ServiceUsage
from usage.selectors import visible_customer_ids

ZERO = Decimal("0.00")
DSO_DAYS = 90
ISSUED = [Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID, Invoice.Status.VOID]
WAITING_TO_BE_ISSUED = [Invoice.Status.DRAFT, Invoice.Status.APPROVED]

Money = dict[str, Decimal]


@dataclass(frozen=True)
class Scope:
    """The customers whose figures count: their ids, or None for every customer."""

    customer_ids: list[int] | None

    def filter(self, queryset: QuerySet, field: str = "customer_id") -> QuerySet:
        if self.customer_ids is None:
            return queryset
        return queryset.filter(**{f"{field}__in_array": self.customer_ids})


def scope_for(user: User) -> Scope:
    return Scope(visible_customer_ids(user))


# --- Months -----------------------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def last_months(today: date, count: int = 12) -> list[date]:
    """The first days of the `count` months ending with today's, oldest first."""
    this_month = month_start(today)
    return [add_months(this_month, offset) for offset in range(1 - count, 1)]


# --- Sums -------------------------------------------------------------------------------------------------------


def _amount(expression) -> ExpressionWrapper:
    return ExpressionWrapper(expression, output_field=DecimalField(max_digits=38, decimal_places=2))


def _money(rows, key: str = "amount") -> Money:
    # Exact on PostgreSQL (numeric); SQLite hands a sum back without its two places: round_amount restores them.
    return {row["currency"]: round_amount(row[key]) for row in sorted(rows, key=lambda row: row["currency"])}


def _minus(left: Money, right: Money) -> Money:
    return {currency: left.get(currency, ZERO) - right.get(currency, ZERO) for currency in sorted({*left, *right})}


def _issued_between(scope: Scope, start: date, end: date) -> QuerySet[Invoice]:
    """Invoices issued from the first moment of `start` to before the first moment of `end`."""
    return scope.filter(Invoice.objects.filter(issued_at__gte=day_start(start), issued_at__lt=day_start(end)))


def _credit_notes_between(scope: Scope, start: date, end: date) -> QuerySet[CreditNote]:
    return scope.filter(CreditNote.objects.filter(issued_at__gte=day_start(start), issued_at__lt=day_start(end)))


def invoiced(scope: Scope, *, start: date, end: date) -> Money:
    """Invoiced from `start` to `end`, both days inclusive: invoice totals minus credit notes (two statements)."""
    following = end + timedelta(days=1)
    invoices = _issued_between(scope, start, following).order_by().values("currency").annotate(amount=Sum("total"))
    credits = _credit_notes_between(scope, start, following).order_by().values("currency").annotate(amount=Sum("total"))
    return _minus(_money(invoices), _money(credits))


@dataclass(frozen=True)
class MonthlyMoney:
    """Invoiced and collected per month, per currency: {currency: [amount of each month, oldest first]}."""

    months: list[date]
    invoiced: dict[str, list[Decimal]]
    collected: dict[str, list[Decimal]]

    def month(self, figures: dict[str, list[Decimal]], month: date) -> Money:
        """One month of `figures` (self.invoiced or self.collected), leaving out currencies with nothing in it."""
        index = self.months.index(month)
        return {currency: amounts[index] for currency, amounts in figures.items() if amounts[index]}


def invoiced_and_collected_by_month(scope: Scope, months: list[date]) -> MonthlyMoney:
    """Invoiced and collected in each of `months` (consecutive first days of months), from the totals the ledger's
    services keep: for every customer, the grand totals per month and currency (ledger.models.MonthlyGrandTotal);
    for some, their monthly totals (ledger.models.MonthlyTotal). One statement, whatever the number of invoices and
    payments."""
    totals = MonthlyGrandTotal.objects if scope.customer_ids is None else scope.filter(MonthlyTotal.objects)
    rows = (
        totals.filter(month__gte=months[0], month__lte=months[-1])
        .order_by()
        .values("month", "currency")
        .annotate(
            invoiced=Sum("invoiced"), credited=Sum("credited"), received=Sum("received"), refunded=Sum("refunded")
        )
    )
    size = len(months)
    invoiced: dict[str, list[Decimal]] = {}
    collected: dict[str, list[Decimal]] = {}
    for row in rows:
        index = months.index(row["month"])
        if row["invoiced"] or row["credited"]:
            figures = invoiced.setdefault(row["currency"], [ZERO] * size)
            figures[index] = round_amount(row["invoiced"]) - round_amount(row["credited"])
        if row["received"] or row["refunded"]:
            figures = collected.setdefault(row["currency"], [ZERO] * size)
            figures[index] = round_amount(row["received"]) - round_amount(row["refunded"])
    return MonthlyMoney(
        months=months,
        invoiced=dict(sorted(invoiced.items())),
        collected=dict(sorted(collected.items())),
    )


# --- Balances, aging and DSO ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Balances:
    receivables: Money
    credit_held: Money


def balances(scope: Scope) -> Balances:
    """Customers' receivable balances: what they owe (debit) and the credit they hold, per currency (one statement)."""
    rows = (
        scope.filter(Account.objects.filter(kind=Account.Kind.RECEIVABLE))
        .order_by()
        .values("currency")
        .annotate(
            owed=Sum("balance", filter=Q(balance__gt=0)),
            credit=Sum("balance", filter=Q(balance__lt=0)),
        )
    )
    rows = sorted(rows, key=lambda row: row["currency"])
    return Balances(
        receivables={row["currency"]: round_amount(row["owed"]) for row in rows if row["owed"]},
        credit_held={row["currency"]: round_amount(-row["credit"]) for row in rows if row["credit"]},
    )


AGING_BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]
AGING_LABELS = {
    "current": "Current",
    "1-30": "1–30 days",
    "31-60": "31–60 days",
    "61-90": "61–90 days",
    "90+": "Over 90 days",
}
OVERDUE_BUCKETS = AGING_BUCKETS[1:]


@dataclass(frozen=True)
class AgingFigure:
    amount: Decimal
    invoices: int


Aging = dict[str, dict[str, AgingFigure]]  # {currency: {bucket: figure}}, every bucket present


def open_invoices(scope: Scope) -> QuerySet[Invoice]:
    return scope.filter(Invoice.objects.filter(status__in=sorted(Invoice.OPEN)))


def aging(scope: Scope, *, on: date) -> Aging:
    """What is open on issued invoices, by days past due on `on` (one statement)."""
    bucket = Case(
        When(due_date__lte=on - timedelta(days=91), then=Value("90+")),
        When(due_date__lte=on - timedelta(days=61), then=Value("61-90")),
        When(due_date__lte=on - timedelta(days=31), then=Value("31-60")),
        When(due_date__lte=on - timedelta(days=1), then=Value("1-30")),
        default=Value("current"),
    )
    rows = (
        open_invoices(scope)
        .order_by()
        .annotate(bucket=bucket)
        .values("currency", "bucket")
        .annotate(
            amount=Sum(_amount(F("total") - F("amount_credited") - F("amount_paid"))),
            invoices=Count("pk"),
        )
    )
    found: Aging = {}
    for row in rows:
        figures = found.setdefault(row["currency"], {name: AgingFigure(ZERO, 0) for name in AGING_BUCKETS})
        figures[row["bucket"]] = AgingFigure(round_amount(row["amount"]), row["invoices"])
    return dict(sorted(found.items()))


def overdue(aged: Aging) -> dict[str, AgingFigure]:
    """The part of the aging past due (1 day or more), per currency."""
    totals = {}
    for currency, figures in aged.items():
        past_due = [figures[name] for name in OVERDUE_BUCKETS]
        invoices = sum(figure.invoices for figure in past_due)
        if invoices:
            totals[currency] = AgingFigure(sum((figure.amount for figure in past_due), ZERO), invoices)
    return totals


def dso(receivables: Money, invoiced_last_90_days: Money) -> dict[str, int | None]:
    """Days sales outstanding per currency that has receivables or invoices; None where nothing was invoiced."""
    figures: dict[str, int | None] = {}
    for currency in sorted({*receivables, *invoiced_last_90_days}):
        sales = invoiced_last_90_days.get(currency, ZERO)
        if sales <= 0:
            figures[currency] = None
            continue
        days = receivables.get(currency, ZERO) / sales * DSO_DAYS
        figures[currency] = int(days.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return figures


def dso_window(on: date) -> tuple[date, date]:
    """The 90 days DSO divides by: those ending with `on`, `on` included."""
    return on - timedelta(days=DSO_DAYS - 1), on


# --- Invoices waiting -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    invoices: int
    amounts: Money


def drafts_waiting(scope: Scope) -> Waiting:
    """Invoices not issued yet that need nobody's approval now: drafts and approved ones (one statement)."""
    rows = list(
        scope.filter(Invoice.objects.filter(status__in=WAITING_TO_BE_ISSUED))
        .order_by()
        .values("currency")
        .annotate(amount=Sum("total"), invoices=Count("pk"))
    )
    return Waiting(invoices=sum(row["invoices"] for row in rows), amounts=_money(rows))


# --- Usage ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageByCategory:
    """Usage revenue per currency, service category and month: {currency: {category: [amount per month]}}, the
    summaries' exact sums (twelve decimal places): round only what is shown."""

    months: list[date]
    amounts: dict[str, dict[str, list[Decimal]]]

    def month_total(self, month: date) -> Money:
        """The month's usage per currency, rounded half up to the cent once, after adding the categories."""
        index = self.months.index(month)
        totals = {
            currency: round_amount(sum((amounts[index] for amounts in categories.values()), Decimal(0)))
            for currency, categories in self.amounts.items()
        }
        return {currency: amount for currency, amount in totals.items() if amount}


def usage_by_category(scope: Scope, months: list[date]) -> UsageByCategory:
    """The usage of `months` by currency and service category (one statement): for every customer, from the usage
    kept per month and service (usage.models.ServiceUsage); for some, from their monthly summaries."""
    if scope.customer_ids is None:
        rows = (
            ServiceUsage.objects.filter(period__gte=months[0], period__lte=months[-1])
            .order_by()
            .values("period", "currency", category=F("service__category"))
            .annotate(amount=Sum("amount"))
        )
    else:
        rows = (
            scope.filter(MonthlySummary.objects.filter(period__gte=months[0], period__lte=months[-1]))
            .order_by()
            .values("period", category=F("service__category"), currency=F("customer__currency"))
            .annotate(amount=Sum("amount"))
        )
    amounts: dict[str, dict[str, list[Decimal]]] = defaultdict(dict)
    for row in rows:
        per_month = amounts[row["currency"]].setdefault(row["category"], [Decimal(0)] * len(months))
        per_month[months.index(row["period"])] += row["amount"]
    return UsageByCategory(months=months, amounts={currency: amounts[currency] for currency in sorted(amounts)})


# --- Revenue by customer ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRevenue:
    customer_id: int
    name: str
    amount: Decimal


def top_customers(scope: Scope, month: date, *, limit: int = 10) -> dict[str, list[CustomerRevenue]]:
    """The customers with the most revenue in the twelve months ending with `month`, per currency, most first, from
    their trailing revenue (ledger.models.TrailingRevenue: a row per customer). Two statements: the windows ranked
    in the database, a window function per currency; the names of those shown."""
    rows = list(
        scope.filter(TrailingRevenue.objects.filter(month=month, amount__gt=0))
        .order_by()
        .values("customer_id", "currency", "amount")
        .annotate(rank=Window(RowNumber(), partition_by=F("currency"), order_by=[F("amount").desc(), F("customer_id")]))
        .filter(rank__lte=limit)
    )
    names = dict(Customer.objects.filter(pk__in={row["customer_id"] for row in rows}).values_list("pk", "name"))
    ranked: dict[str, list[CustomerRevenue]] = defaultdict(list)
    for row in sorted(rows, key=lambda row: (row["currency"], row["rank"])):
        amount = round_amount(row["amount"])
        if amount > 0:  # SQLite adds as floating point: what it leaves of an exact nothing is not revenue
            customer_id = row["customer_id"]
            ranked[row["currency"]].append(CustomerRevenue(customer_id, names[customer_id], amount))
    return dict(ranked)


# --- Orders -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderCounts:
    by_status: dict[str, int]  # every status, in the lifecycle's order
    open: int
    overdue: int
    open_fees: Money  # the fees of the open orders, per currency: the dashboard's unrealised order revenue


def order_counts(user: User, *, today: date) -> OrderCounts:
    """The user's orders per status, how many are open and how many of those are past their due date, and the
    open ones' fees: a statement per part of the user's orders (orders.selectors.order_list_parts_for). Open by
    status is open by the timestamps (reports.order_kpis.open_at) at any moment from now on: an open order has no
    end time, an ended one has it (a reopening clears it)."""
    rows = [
        row
        for orders in order_list_parts_for(user)
        for row in orders.order_by()
        .values("status", "currency")
        .annotate(orders=Count("pk"), overdue=Count("pk", filter=Q(due_date__lt=today)), fees=Sum("fee"))
    ]
    by_status = dict.fromkeys(Order.Status.values, 0)
    overdue_count = 0
    open_fees: Money = {}
    for row in rows:
        by_status[row["status"]] += row["orders"]
        if row["status"] in Order.OPEN_STATUSES:
            overdue_count += row["overdue"]
            open_fees[row["currency"]] = open_fees.get(row["currency"], ZERO) + round_amount(row["fees"])
    return OrderCounts(
        by_status=by_status,
        open=sum(by_status[status] for status in Order.OPEN_STATUSES),
        overdue=overdue_count,
        open_fees=dict(sorted(open_fees.items())),
    )
