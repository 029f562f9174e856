"""The monthly usage report: per customer and service, usage rated under DESIGN.md's rule.

Two queries whatever the number of records: the agreements overlapping the month, and one SQL
statement that takes each customer-service pair's allowance from its records in service time order
(a running sum, a window function on both SQLite and PostgreSQL) and totals the chargeable units per
snapshot price. Quantities are summed as integer millionths so that SQLite, which keeps decimals as
floating point, adds them exactly. `usage.rating.rating_lines` then makes the lines and amounts.
"""

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection

from billing_project import money
from catalog.models import Customer, PriceAgreement, Service
from usage.models import UsageRecord
from usage.rating import Rating, rating_lines

_SCALE = 10**money.QUANTITY_DECIMAL_PLACES


@dataclass(frozen=True, slots=True)
class UsageReportRow:
    customer_id: int
    customer_name: str
    client_id: str
    currency: str
    service_id: int
    service_code: str
    service_name: str
    period: date
    record_count: int
    included_quantity: Decimal  # the allowance of the latest agreement overlapping the month
    monthly_fee: Decimal
    rating: Rating

    @property
    def quantity(self) -> Decimal:
        return self.rating.quantity

    @property
    def allowance_used(self) -> Decimal:
        return self.rating.included_used

    @property
    def overage_quantity(self) -> Decimal:
        return self.rating.overage_quantity

    @property
    def amount(self) -> Decimal:
        """Fee plus chargeable usage, each line rounded half up to the cent."""
        return self.rating.amount


def _from_micro(value) -> Decimal:
    return (Decimal(int(value)) / _SCALE).quantize(Decimal(1).scaleb(-money.QUANTITY_DECIMAL_PLACES))


def _price(value) -> Decimal:
    # PostgreSQL returns a Decimal; SQLite a float whose repr is the six-place price it was stored from.
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-money.UNIT_PRICE_DECIMAL_PLACES))


def _chargeable_per_price(*, period: date, last_day: date, customer_id: int | None) -> list[tuple]:
    """(customer_id, service_id, unit_price, record count, micro-units, chargeable micro-units) per price."""
    record_table = connection.ops.quote_name(UsageRecord._meta.db_table)
    agreement_table = connection.ops.quote_name(PriceAgreement._meta.db_table)
    agreement_filter = record_filter = ""
    params: list = [last_day, period]
    if customer_id is not None:
        agreement_filter = "AND customer_id = %s"
        params.append(customer_id)
    params.append(period)
    if customer_id is not None:
        record_filter = "AND r.customer_id = %s"
        params.append(customer_id)
    micro = f"CAST(ROUND(r.quantity * {_SCALE}) AS BIGINT)"
    sql = f"""
        WITH latest AS (
            SELECT customer_id, service_id, CAST(ROUND(included_quantity * {_SCALE}) AS BIGINT) AS allowance,
                   ROW_NUMBER() OVER (PARTITION BY customer_id, service_id ORDER BY valid_from DESC) AS position
            FROM {agreement_table}
            WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to >= %s) {agreement_filter}
        ),
        ordered AS (
            SELECT r.customer_id, r.service_id, r.unit_price, {micro} AS micro,
                   SUM({micro}) OVER (
                       PARTITION BY r.customer_id, r.service_id ORDER BY r.service_time, r.id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS running
            FROM {record_table} r
            WHERE r.period = %s {record_filter}
        ),
        rated AS (
            SELECT o.customer_id, o.service_id, o.unit_price, o.micro,
                   CASE
                       WHEN o.running - o.micro >= COALESCE(a.allowance, 0) THEN o.micro
                       WHEN o.running > COALESCE(a.allowance, 0) THEN o.running - COALESCE(a.allowance, 0)
                       ELSE 0
                   END AS chargeable
            FROM ordered o
            LEFT JOIN latest a
                ON a.customer_id = o.customer_id AND a.service_id = o.service_id AND a.position = 1
        )
        SELECT customer_id, service_id, unit_price, COUNT(*), SUM(micro), SUM(chargeable)
        FROM rated
        GROUP BY customer_id, service_id, unit_price
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def usage_month_report(*, year: int, month: int, customer_id: int | None = None) -> list[UsageReportRow]:
    """Every customer-service pair with usage in the billing month, or a monthly fee in force in it.

    The allowance and fee are those of the latest agreement whose validity overlaps the month
    (DESIGN.md, "Pricing and rating"). Rows come by customer name, then service code.
    """
    period = date(year, month, 1)
    last_day = date(year, month, calendar.monthrange(year, month)[1])
    agreements = PriceAgreement.objects.filter(valid_from__lte=last_day).exclude(valid_to__lt=period)
    if customer_id is not None:
        agreements = agreements.filter(customer_id=customer_id)
    latest: dict[tuple[int, int], PriceAgreement] = {}
    for agreement in agreements.select_related("customer", "service").order_by("valid_from"):
        latest[(agreement.customer_id, agreement.service_id)] = agreement

    # (customer, service) -> [record count, micro-units, chargeable micro-units per price]
    usage: dict[tuple[int, int], list] = {}
    for cust_id, service_id, unit_price, count, micro, chargeable in _chargeable_per_price(
        period=period, last_day=last_day, customer_id=customer_id
    ):
        totals = usage.setdefault((cust_id, service_id), [0, 0, {}])
        totals[0] += count
        totals[1] += int(micro)
        totals[2][_price(unit_price)] = _from_micro(chargeable)

    pairs = set(usage) | {pair for pair, agreement in latest.items() if agreement.monthly_fee > 0}
    # Records always have an agreement overlapping their month; should one not, still name the pair.
    customers = {agreement.customer_id: agreement.customer for agreement in latest.values()}
    services = {agreement.service_id: agreement.service for agreement in latest.values()}
    if missing := {c for c, _ in pairs} - set(customers):
        customers.update(Customer.objects.in_bulk(missing))
    if missing := {s for _, s in pairs} - set(services):
        services.update(Service.objects.in_bulk(missing))

    rows = []
    for cust_id, service_id in pairs:
        agreement = latest.get((cust_id, service_id))
        included = agreement.included_quantity if agreement else Decimal(0)
        fee = agreement.monthly_fee if agreement else Decimal(0)
        count, micro, chargeable = usage.get((cust_id, service_id), (0, 0, {}))
        quantity = _from_micro(micro)
        rating = rating_lines(
            included_used=quantity - sum(chargeable.values(), Decimal(0)),
            chargeable_by_price=chargeable,
            monthly_fee=fee,
        )
        customer, service = customers[cust_id], services[service_id]
        rows.append(
            UsageReportRow(
                customer_id=cust_id,
                customer_name=customer.name,
                client_id=customer.client_id,
                currency=customer.currency,
                service_id=service_id,
                service_code=service.code,
                service_name=service.name,
                period=period,
                record_count=count,
                included_quantity=included,
                monthly_fee=fee,
                rating=rating,
            )
        )
    rows.sort(key=lambda row: (row.customer_name, row.service_code))
    return rows
