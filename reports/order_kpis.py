"""The order KPIs of DESIGN.md ("Orders (hand-run services)", "Reports and KPIs"), as selectors.

Each takes the user and a period: `start` and `end` are days in BILLING_TIME_ZONE, both inclusive, so the period
runs from the first moment of `start` to the first moment after `end` (billing_project.billing_time.DayRange).
Each counts only the orders the user may see, `orders.selectors.order_list_for(user)`, the same orders as the
order list: a CSM's KPIs are their customers' orders, a shared-only account's the orders shared with it.

Money is per currency, never converted: a money KPI answers {currency: figure}, currencies in alphabetical order,
and a currency appears only when some order of it counts.

Who may see what. Every KPI here reads an order's fee, its status and its times, never its base charge, invoice,
expenses or settlements. The fee is the one figure of money Operations sees (DESIGN.md, "Roles"), so everyone who
sees orders sees every KPI of the orders they see, Operations included. What Operations may not see, the partner
revenue report (base charges, expenses, partner shares), is reports.revenue's, behind its own permission.

What counts:
- realised revenue: the fees of orders completed in the period (status `completed`, `completed_at` in it);
- unrealised revenue: the fees of orders open at the period's end: created before its end and not yet ended
  (completed, failed or cancelled) by then, read from the timestamps, so an order completed after the period
  was open at its end. An order an Admin reopened has lost its earlier end time (the reopening clears it) and
  counts as open from its creation;
- average order value: the mean fee of orders created in the period, rounded half up to the cent;
- completion time: the median and 90th percentile of the days from start (`started_at`) to completion of the
  orders completed in the period. Percentiles are continuous (linear interpolation between the two nearest
  ranks: PostgreSQL's `percentile_cont`, numpy's default), computed in the database on PostgreSQL and in Python
  on SQLite with the same rule; shown in days to one decimal, rounded half up;
- failure rate: failed ÷ (completed + failed), of the orders that ended so in the period; None when none did.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, QuerySet, Sum

from accounts.models import User
from billing_project.billing_time import DayRange, billing_day_range
from billing_project.money import round_amount
from orders.models import Order
from orders.selectors import order_list_for

Status = Order.Status
SECONDS_A_DAY = 24 * 60 * 60
TENTH = Decimal("0.1")
RATE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class CurrencyFigure:
    """A money figure in one currency and how many orders make it."""

    amount: Decimal
    orders: int


@dataclass(frozen=True)
class CompletionTime:
    """Days from start to completion of the orders completed in a period; None when none was."""

    orders: int
    median_days: Decimal | None
    p90_days: Decimal | None


@dataclass(frozen=True)
class FailureRate:
    completed: int
    failed: int

    @property
    def rate(self) -> Decimal | None:
        """failed ÷ (completed + failed), a fraction to four places (0.2500 is 25 %); None when nothing ended."""
        ended = self.completed + self.failed
        if not ended:
            return None
        return (Decimal(self.failed) / Decimal(ended)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class OrderKpis:
    """The order KPIs of one period the dashboard shows, for one user (its unrealised revenue, the orders open
    now, comes with its order counts: reports.kpis.order_counts)."""

    start: date
    end: date
    realised_revenue: dict[str, CurrencyFigure]
    average_order_value: dict[str, CurrencyFigure]
    completion_time: CompletionTime


def period(start: date, end: date) -> DayRange:
    """The period's days, checked (a ValidationError naming `start` or `end`), with their datetime bounds."""
    return billing_day_range(start, end, first_field="start", last_field="end")


def completed_in(days: DayRange) -> Q:
    return Q(status=Status.COMPLETED, completed_at__gte=days.start, completed_at__lt=days.end)


def failed_in(days: DayRange) -> Q:
    return Q(status=Status.FAILED, failed_at__gte=days.start, failed_at__lt=days.end)


def _fees_by_currency(orders: QuerySet[Order]) -> dict[str, CurrencyFigure]:
    rows = orders.order_by().values("currency").annotate(amount=Sum("fee"), orders=Count("pk")).order_by("currency")
    # Exact on PostgreSQL (numeric); SQLite hands a sum back without its two places: round_amount restores them.
    return {row["currency"]: CurrencyFigure(amount=round_amount(row["amount"]), orders=row["orders"]) for row in rows}


def realised_revenue(user: User, *, start: date, end: date) -> dict[str, CurrencyFigure]:
    """The fees of the orders completed in the period, per currency."""
    return _realised(order_list_for(user), period(start, end))


def unrealised_revenue(user: User, *, start: date, end: date) -> dict[str, CurrencyFigure]:
    """The fees of the orders open at the period's end (its last moment), per currency."""
    return _unrealised(order_list_for(user), period(start, end))


def average_order_value(user: User, *, start: date, end: date) -> dict[str, CurrencyFigure]:
    """The mean fee of the orders created in the period, per currency, rounded half up to the cent."""
    return _average(order_list_for(user), period(start, end))


def completion_time(user: User, *, start: date, end: date) -> CompletionTime:
    """Median and 90th percentile of the days from start to completion of the orders completed in the period."""
    return _completion(order_list_for(user), period(start, end))


def failure_rate(user: User, *, start: date, end: date) -> FailureRate:
    """Of the orders that ended completed or failed in the period, the share that failed."""
    return _failure(order_list_for(user), period(start, end))


def order_kpis(user: User, *, start: date, end: date) -> OrderKpis:
    """The dashboard's KPIs of one period: one statement each, and the user's scope worked out once."""
    orders, days = order_list_for(user), period(start, end)
    return OrderKpis(
        start=start,
        end=end,
        realised_revenue=_realised(orders, days),
        average_order_value=_average(orders, days),
        completion_time=_completion(orders, days),
    )


def _fees_by_currency(orders: QuerySet[Order]) -> dict[str, CurrencyFigure]:
    rows = orders.order_by().values("currency").annotate(amount=Sum("fee"), orders=Count("pk")).order_by("currency")
    # Exact on PostgreSQL (numeric); SQLite hands a sum back without its two places: round_amount restores them.
    return {row["currency"]: CurrencyFigure(amount=round_amount(row["amount"]), orders=row["orders"]) for row in rows}


def _realised(orders: QuerySet[Order], days: DayRange) -> dict[str, CurrencyFigure]:
    return _fees_by_currency(orders.filter(completed_in(days)))


def open_at(moment) -> Q:
    """Orders created before `moment` and not ended (completed, failed or cancelled) before it."""
    not_ended = Q()
    for field in ("completed_at", "failed_at", "cancelled_at"):
        not_ended &= Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": moment})
    return Q(created_at__lt=moment) & not_ended


def _unrealised(orders: QuerySet[Order], days: DayRange) -> dict[str, CurrencyFigure]:
    return _fees_by_currency(orders.filter(open_at(days.end)))


def _average(orders: QuerySet[Order], days: DayRange) -> dict[str, CurrencyFigure]:
    created = orders.filter(created_at__gte=days.start, created_at__lt=days.end)
    return {
        currency: CurrencyFigure(amount=round_amount(figure.amount / figure.orders), orders=figure.orders)
        for currency, figure in _fees_by_currency(created).items()
    }


class _PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile(ordered: list[float], fraction: float) -> float:
    """The continuous percentile of sorted values, as PostgreSQL's percentile_cont: the value at rank
    fraction × (n − 1), counted from 0, interpolated linearly between the two nearest ranks."""
    rank = fraction * (len(ordered) - 1)
    below = int(rank)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (rank - below)


def _days(seconds: float | None) -> Decimal | None:
    if seconds is None:
        return None
    return (Decimal(repr(seconds)) / SECONDS_A_DAY).quantize(TENTH, rounding=ROUND_HALF_UP)


def _completion(orders: QuerySet[Order], days: DayRange) -> CompletionTime:
    completed = orders.filter(completed_in(days)).order_by()
    if connection.vendor == "postgresql":
        seconds = Func(F("completed_at") - F("started_at"), template="EXTRACT(EPOCH FROM %(expressions)s)")
        figures = completed.aggregate(
            orders=Count("pk"),
            median=_PercentileCont(seconds, 0.5),
            p90=_PercentileCont(seconds, 0.9),
        )
        return CompletionTime(
            orders=figures["orders"], median_days=_days(figures["median"]), p90_days=_days(figures["p90"])
        )
    durations = sorted(
        (completed_at - started_at).total_seconds()
        for started_at, completed_at in completed.values_list("started_at", "completed_at").iterator()
    )
    if not durations:
        return CompletionTime(orders=0, median_days=None, p90_days=None)
    return CompletionTime(
        orders=len(durations),
        median_days=_days(percentile(durations, 0.5)),
        p90_days=_days(percentile(durations, 0.9)),
    )


def _failure(orders: QuerySet[Order], days: DayRange) -> FailureRate:
    counts = orders.filter(completed_in(days) | failed_in(days)).aggregate(
        completed=Count("pk", filter=completed_in(days)), failed=Count("pk", filter=failed_in(days))
    )
    return FailureRate(completed=counts["completed"], failed=counts["failed"])
