"""The partner revenue report: what the orders that ended in a period brought in, by partner and currency.

Which orders count: those that ended in the period, that is completed (`completed_at`) or failed (`failed_at`) from
the first moment of `start` to the first moment after `end`, days in BILLING_TIME_ZONE, both inclusive, and that
are still in that state (an order an Admin reopened has lost its end time and counts when it ends again). Open and
cancelled orders never count. Only the orders the user may see count (`orders.selectors.order_list_for`); the
report's readers (Admin, Finance, Sales) see them all.

A row is one partner (the order's partner, or "No partner") and one currency; money is per currency, never
converted, so the totals are one row per currency too. For the orders of a row:

- orders completed, orders failed: how many ended so in the period;
- fees, base charges: the sums of the orders' fee and base charge (what was agreed, not what was received);
- expenses: the sum of the amounts of the orders' expenses, whenever recorded, reversals included (they are
  negative, so a reversed expense adds nothing);
- partner share: the sum of the amounts of the orders' live settlements (calculated, approved or paid; void ones
  left out), corrections included, whenever calculated; a settlement counts in its order's row;
- kept by us: fees + base charges − expenses − partner share.

Sums are the database's, exact on PostgreSQL (numeric); SQLite hands them back without their two places, and
round_amount restores the cents.

Three grouped statements (orders with their partners' names, their expenses, their settlements), whatever the
number of orders.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import User
from billing_project.money import round_amount
from catalog.models import Partner
from orders.models import Order, Settlement
from orders.selectors import order_list_for
from reports.order_kpis import completed_in, failed_in, period

PERMISSION = "reports.view_partner_revenue"
NO_PARTNER = "none"
NO_PARTNER_LABEL = "No partner"
ZERO = Decimal("0.00")


@dataclass
class PartnerRevenueRow:
    """One partner (None: orders without one) in one currency; or, with `is_total`, a currency's totals."""

    partner_id: int | None
    partner_name: str
    currency: str
    orders_completed: int = 0
    orders_failed: int = 0
    fees: Decimal = ZERO
    base_charges: Decimal = ZERO
    expenses: Decimal = ZERO
    partner_share: Decimal = ZERO
    is_total: bool = False

    @property
    def kept_by_us(self) -> Decimal:
        return self.fees + self.base_charges - self.expenses - self.partner_share

    @property
    def orders(self) -> int:
        return self.orders_completed + self.orders_failed

    def add(self, other: "PartnerRevenueRow") -> None:
        self.orders_completed += other.orders_completed
        self.orders_failed += other.orders_failed
        self.fees += other.fees
        self.base_charges += other.base_charges
        self.expenses += other.expenses
        self.partner_share += other.partner_share


@dataclass
class PartnerRevenueReport:
    start: date
    end: date
    rows: list[PartnerRevenueRow] = field(default_factory=list)
    totals: list[PartnerRevenueRow] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.rows

    def rows_with_totals(self) -> list[PartnerRevenueRow]:
        """Each currency's rows followed by its totals row, currencies in alphabetical order."""
        totals = {total.currency: total for total in self.totals}
        result: list[PartnerRevenueRow] = []
        for row in self.rows:
            if result and result[-1].currency != row.currency:
                result.append(totals[result[-1].currency])
            result.append(row)
        if result:
            result.append(totals[result[-1].currency])
        return result


def report_may_see(user: User) -> bool:
    """Admin, Finance and Sales (accounts/roles.py); never Operations (no money beyond the fee), Customer Success
    or the portal."""
    return user.is_authenticated and not getattr(user, "is_portal_user", False) and user.has_perm(PERMISSION)


def ended_orders(
    user: User, *, start: date, end: date, partner: Partner | str | None = None, currency: str | None = None
) -> QuerySet[Order]:
    """The orders the report counts: seen by `user`, completed or failed in the period; optionally of one partner
    (NO_PARTNER: those without one) and one currency."""
    days = period(start, end)
    orders = order_list_for(user).filter(completed_in(days) | failed_in(days))
    if partner == NO_PARTNER:
        orders = orders.filter(partner__isnull=True)
    elif partner is not None:
        orders = orders.filter(partner=partner)
    if currency:
        orders = orders.filter(currency=currency)
    return orders.order_by()


def partner_revenue(
    user: User, *, start: date, end: date, partner: Partner | str | None = None, currency: str | None = None
) -> PartnerRevenueReport:
    """The report for the period, rows by currency then partner name, "No partner" last in its currency."""
    orders = ended_orders(user, start=start, end=end, partner=partner, currency=currency)
    rows: dict[tuple[int | None, str], PartnerRevenueRow] = {}

    def row(figures: dict) -> PartnerRevenueRow:
        key = (figures["partner_id"], figures["currency"])
        if key not in rows:
            rows[key] = PartnerRevenueRow(
                partner_id=key[0], partner_name=figures.get("partner__name") or NO_PARTNER_LABEL, currency=key[1]
            )
        return rows[key]

    status = Order.Status
    for figures in orders.values("partner_id", "partner__name", "currency").annotate(
        completed=Count("pk", filter=Q(status=status.COMPLETED)),
        failed=Count("pk", filter=Q(status=status.FAILED)),
        fees=Sum("fee"),
        base_charges=Sum("base_charge"),
    ):
        each = row(figures)
        each.orders_completed = figures["completed"]
        each.orders_failed = figures["failed"]
        each.fees = round_amount(figures["fees"])
        each.base_charges = round_amount(figures["base_charges"])

    # filter() before annotate() on the same relation: the sum runs over the rows the filter joined. Grouped by the
    # partner's id alone: the names came with the orders.
    group = ("partner_id", "currency")
    for figures in orders.filter(expenses__isnull=False).values(*group).annotate(total=Sum("expenses__amount")):
        row(figures).expenses = round_amount(figures["total"])
    live = orders.filter(settlements__status__in=Settlement.LIVE_STATUSES)
    for figures in live.values(*group).annotate(total=Sum("settlements__amount")):
        row(figures).partner_share = round_amount(figures["total"])

    # Each statement sees the orders as they are when it runs: an order of a partner with no row yet that ended in
    # between gets a row of its own, named here (one more statement, only then).
    unnamed = {each.partner_id: each for each in rows.values() if each.partner_id and not each.orders}
    for pk, name in Partner.objects.filter(pk__in=unnamed).values_list("pk", "name"):
        for each in rows.values():
            if each.partner_id == pk:
                each.partner_name = name

    ordered = sorted(rows.values(), key=lambda r: (r.currency, r.partner_id is None, r.partner_name.casefold()))
    totals: dict[str, PartnerRevenueRow] = {}
    for each in ordered:
        if each.currency not in totals:
            totals[each.currency] = PartnerRevenueRow(
                partner_id=None, partner_name="Total", currency=each.currency, is_total=True
            )
        totals[each.currency].add(each)
    return PartnerRevenueReport(start=start, end=end, rows=ordered, totals=list(totals.values()))
