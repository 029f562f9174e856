"""The monthly usage report: per customer and service, usage rated under DESIGN.md's rule.

The allowance is used up in service time order. Monthly summaries are kept per agreement and
snapshot price with the first and last service time they cover; agreements never overlap, so in
the usual case a customer-service pair's summaries, ordered by time, do not overlap either and the
allowance is taken from them directly: a few rows per pair, whatever the number of records.

Only when a pair's summaries overlap in time (an agreement's price was corrected in place while its
usage kept arriving) is the split made from that pair's records: one SQL statement with a running
sum, on integer millionths so that SQLite, which keeps decimals as floating point, adds exactly.
`usage.rating` then makes the lines and amounts.
"""

import calendar
import hashlib
import itertools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q, Sum

from billing_project import money
from catalog.models import Customer, MinimumCommitment, PriceAgreement, PriceTier, PricingModel, Service
from usage.models import MonthlySummary, UsageRecord
from usage.rating import (
    Rating,
    Tier,
    commitment_rating,
    commitment_top_up,
    rating_lines,
    split_allowance,
    tiered_rating,
)

_SCALE = 10**money.QUANTITY_DECIMAL_PLACES


COMMITMENT_TOP_UP = "Minimum commitment top-up"


@dataclass(frozen=True, slots=True)
class UsageReportRow:
    """One customer's month of one service; or, with no service, its minimum commitment's top-up."""

    customer_id: int
    customer_name: str
    client_id: str
    currency: str
    service_id: int | None
    service_code: str
    service_name: str
    period: date
    record_count: int
    included_quantity: Decimal  # the allowance of the latest agreement overlapping the month
    monthly_fee: Decimal
    rating: Rating

    @property
    def is_commitment_top_up(self) -> bool:
        return self.service_id is None

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


def _chargeable_from_records(*, period: date, last_day: date, customer_ids: Collection[int]) -> list[tuple]:
    """(customer_id, service_id, unit_price, chargeable micro-units) per price, split from the records."""
    record_table = connection.ops.quote_name(UsageRecord._meta.db_table)
    agreement_table = connection.ops.quote_name(PriceAgreement._meta.db_table)
    ids = ", ".join(str(int(pk)) for pk in customer_ids)
    params: list = [last_day, period, period]
    micro = f"CAST(ROUND(r.quantity * {_SCALE}) AS BIGINT)"
    sql = f"""
        WITH latest AS (
            SELECT customer_id, service_id, CAST(ROUND(included_quantity * {_SCALE}) AS BIGINT) AS allowance,
                   ROW_NUMBER() OVER (PARTITION BY customer_id, service_id ORDER BY valid_from DESC) AS position
            FROM {agreement_table}
            WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to >= %s) AND customer_id IN ({ids})
        ),
        ordered AS (
            SELECT r.customer_id, r.service_id, r.unit_price, {micro} AS micro,
                   SUM({micro}) OVER (
                       PARTITION BY r.customer_id, r.service_id ORDER BY r.service_time, r.id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS running
            FROM {record_table} r
            WHERE r.period = %s AND r.customer_id IN ({ids})
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
        SELECT customer_id, service_id, unit_price, SUM(chargeable)
        FROM rated
        GROUP BY customer_id, service_id, unit_price
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass(slots=True)
class _PairUsage:
    record_count: int
    quantity: Decimal
    included_used: Decimal
    chargeable_by_price: dict[Decimal, Decimal]


def _usage_by_pair(
    *, period: date, last_day: date, customer_ids: Collection[int] | None, allowance: dict[tuple[int, int], Decimal]
) -> dict[tuple[int, int], _PairUsage]:
    summaries = MonthlySummary.objects.filter(period=period)
    if customer_ids is not None:
        summaries = summaries.filter(customer_id__in=customer_ids)
    segments: dict[tuple[int, int], list[tuple]] = {}
    for row in summaries.order_by("customer_id", "service_id", "first_service_time", "last_service_time").values_list(
        "customer_id", "service_id", "quantity", "unit_price", "record_count", "first_service_time", "last_service_time"
    ):
        segments.setdefault(row[:2], []).append(row[2:])

    usage, overlapping = {}, set()
    for pair, pair_segments in segments.items():
        in_order = all(later[3] > earlier[4] for earlier, later in itertools.pairwise(pair_segments))
        if not in_order:
            overlapping.add(pair)
        free, chargeable = split_allowance(
            ((quantity, unit_price) for quantity, unit_price, *_ in pair_segments),
            included_quantity=allowance.get(pair, Decimal(0)),
        )
        usage[pair] = _PairUsage(
            record_count=sum(segment[2] for segment in pair_segments),
            quantity=sum((segment[0] for segment in pair_segments), Decimal(0)),
            included_used=free,
            chargeable_by_price=chargeable,
        )
    if overlapping:
        exact: dict[tuple[int, int], dict[Decimal, Decimal]] = {}
        for cust_id, service_id, unit_price, chargeable in _chargeable_from_records(
            period=period, last_day=last_day, customer_ids={customer_id for customer_id, _ in overlapping}
        ):
            exact.setdefault((cust_id, service_id), {})[_price(unit_price)] = _from_micro(chargeable)
        for pair in overlapping:
            chargeable = exact.get(pair, {})
            usage[pair].chargeable_by_price = chargeable
            usage[pair].included_used = usage[pair].quantity - sum(chargeable.values(), Decimal(0))
    return usage


@dataclass(frozen=True, slots=True)
class _ModelTerms:
    agreement_id: int
    pricing_model: str
    package_size: Decimal | None
    package_price: Decimal | None


def _tier_tables(agreement_ids: Collection[int]) -> dict[int, tuple[Tier, ...]]:
    """The tier tables of these agreements, each in order: one query, whatever their number."""
    tables: dict[int, list[Tier]] = {}
    rows = PriceTier.objects.filter(agreement_id__in=agreement_ids).order_by("agreement_id", "position")
    for agreement_id, up_to, unit_price, flat_fee in rows.values_list(
        "agreement_id", "up_to", "unit_price", "flat_fee"
    ):
        tables.setdefault(agreement_id, []).append(Tier(up_to, unit_price, flat_fee))
    return {agreement_id: tuple(table) for agreement_id, table in tables.items()}


def last_month(day: date) -> date:
    """The first day of the billing month before `day`'s."""
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def usage_month_report(*, year: int, month: int, customer_ids: Collection[int] | None = None) -> list[UsageReportRow]:
    """Every customer-service pair with usage in the billing month, or a monthly fee in force in it; and a row of
    its own for each customer whose minimum commitment those leave short.

    The allowance and fee are those of the latest agreement whose validity overlaps the month
    (DESIGN.md, "Pricing and rating"). Rows come by customer name, then service code, each customer's
    commitment top-up last.
    """
    period, last_day = _month_bounds(year, month)
    agreements = PriceAgreement.objects.filter(valid_from__lte=last_day).exclude(valid_to__lt=period)
    if customer_ids is not None:
        agreements = agreements.filter(customer_id__in=customer_ids)
    # Plain values, not model instances: month-end reads tens of thousands of agreements at once.
    latest: dict[tuple[int, int], tuple[Decimal, Decimal]] = {}  # (allowance, monthly fee)
    models: dict[tuple[int, int], _ModelTerms] = {}  # the pairs whose latest agreement is not per unit
    customers: dict[int, tuple[str, str, str]] = {}  # name, client id, currency
    services: dict[int, tuple[str, str]] = {}  # code, name
    for (
        agreement_id,
        cust_id,
        service_id,
        included,
        fee,
        pricing_model,
        package_size,
        package_price,
        *customer,
        service_code,
        service_name,
    ) in agreements.order_by("valid_from").values_list(
        "id",
        "customer_id",
        "service_id",
        "included_quantity",
        "monthly_fee",
        "pricing_model",
        "package_size",
        "package_price",
        "customer__name",
        "customer__client_id",
        "customer__currency",
        "service__code",
        "service__name",
    ):
        latest[(cust_id, service_id)] = (included, fee)
        if pricing_model == PricingModel.PER_UNIT:
            models.pop((cust_id, service_id), None)
        else:
            models[(cust_id, service_id)] = _ModelTerms(agreement_id, pricing_model, package_size, package_price)
        customers[cust_id] = tuple(customer)
        services[service_id] = (service_code, service_name)
    tiers = _tier_tables(
        [terms.agreement_id for terms in models.values() if terms.pricing_model in PricingModel.tiered()]
    )

    usage = _usage_by_pair(
        period=period,
        last_day=last_day,
        customer_ids=customer_ids,
        allowance={pair: included for pair, (included, _) in latest.items()},
    )
    pairs = set(usage) | {pair for pair, (_, fee) in latest.items() if fee > 0}
    # Records always have an agreement overlapping their month; should one not, still name the pair.
    if missing := {c for c, _ in pairs} - set(customers):
        for customer in Customer.objects.filter(pk__in=missing):
            customers[customer.pk] = (customer.name, customer.client_id, customer.currency)
    if missing := {s for _, s in pairs} - set(services):
        for service in Service.objects.filter(pk__in=missing):
            services[service.pk] = (service.code, service.name)

    rows = []
    for cust_id, service_id in pairs:
        included, fee = latest.get((cust_id, service_id), (Decimal(0), Decimal(0)))
        pair_usage = usage.get((cust_id, service_id))
        if terms := models.get((cust_id, service_id)):
            rating = tiered_rating(
                pricing_model=terms.pricing_model,
                quantity=pair_usage.quantity if pair_usage else Decimal(0),
                included_quantity=included,
                monthly_fee=fee,
                tiers=tiers.get(terms.agreement_id, ()),
                package_size=terms.package_size,
                package_price=terms.package_price,
            )
        else:
            rating = rating_lines(
                included_used=pair_usage.included_used if pair_usage else Decimal(0),
                chargeable_by_price=pair_usage.chargeable_by_price if pair_usage else {},
                monthly_fee=fee,
            )
        customer_name, client_id, currency = customers[cust_id]
        service_code, service_name = services[service_id]
        rows.append(
            UsageReportRow(
                customer_id=cust_id,
                customer_name=customer_name,
                client_id=client_id,
                currency=currency,
                service_id=service_id,
                service_code=service_code,
                service_name=service_name,
                period=period,
                record_count=pair_usage.record_count if pair_usage else 0,
                included_quantity=included,
                monthly_fee=fee,
                rating=rating,
            )
        )
    rows.extend(_commitment_rows(rows, period=period, last_day=last_day, customer_ids=customer_ids))
    rows.sort(key=lambda row: (row.customer_name, row.customer_id, row.is_commitment_top_up, row.service_code))
    return rows


def _month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _commitment_rows(
    rows: Collection[UsageReportRow], *, period: date, last_day: date, customer_ids: Collection[int] | None
) -> list[UsageReportRow]:
    """A top-up row per customer with a minimum commitment in force in the month (the latest overlapping it)
    that its rows' fee and usage lines leave short (DESIGN.md, "Pricing models")."""
    commitments = MinimumCommitment.objects.filter(valid_from__lte=last_day).exclude(valid_to__lt=period)
    if customer_ids is not None:
        commitments = commitments.filter(customer_id__in=customer_ids)
    in_force = dict(commitments.order_by("valid_from").values_list("customer_id", "amount"))
    if not in_force:
        return []
    ratings: dict[int, list[Rating]] = {}
    names: dict[int, tuple[str, str, str]] = {}
    for row in rows:
        ratings.setdefault(row.customer_id, []).append(row.rating)
        names[row.customer_id] = (row.customer_name, row.client_id, row.currency)
    if missing := set(in_force) - set(names):
        for pk, *customer in Customer.objects.filter(pk__in=missing).values_list("pk", "name", "client_id", "currency"):
            names[pk] = tuple(customer)
    top_ups = []
    for customer_id, amount in in_force.items():
        top_up = commitment_top_up(commitment=amount, ratings=ratings.get(customer_id, ()))
        if top_up <= 0:
            continue
        customer_name, client_id, currency = names[customer_id]
        top_ups.append(
            UsageReportRow(
                customer_id=customer_id,
                customer_name=customer_name,
                client_id=client_id,
                currency=currency,
                service_id=None,
                service_code="",
                service_name=COMMITMENT_TOP_UP,
                period=period,
                record_count=0,
                included_quantity=Decimal(0),
                monthly_fee=Decimal(0),
                rating=commitment_rating(top_up),
            )
        )
    return top_ups


@dataclass(frozen=True, slots=True)
class UsageReportTotal:
    """The report's rows of one currency added up (amounts are never converted)."""

    currency: str
    record_count: int
    quantity: Decimal
    allowance_used: Decimal
    overage_quantity: Decimal
    monthly_fee: Decimal
    amount: Decimal


def usage_report_totals(rows: Collection[UsageReportRow]) -> list[UsageReportTotal]:
    """One total per currency, by currency code; summed here, in Decimal, from the rows' rounded amounts."""
    totals = []
    for currency in sorted({row.currency for row in rows}):
        of_currency = [row for row in rows if row.currency == currency]
        totals.append(
            UsageReportTotal(
                currency=currency,
                record_count=sum(row.record_count for row in of_currency),
                quantity=sum((row.quantity for row in of_currency), Decimal(0)),
                allowance_used=sum((row.allowance_used for row in of_currency), Decimal(0)),
                overage_quantity=sum((row.overage_quantity for row in of_currency), Decimal(0)),
                monthly_fee=sum((row.monthly_fee for row in of_currency), Decimal(0)),
                amount=sum((row.amount for row in of_currency), Decimal(0)),
            )
        )
    return totals


def usage_report_customers(*, year: int, month: int, customer_ids: Collection[int] | None = None) -> list[int]:
    """The customers with a row in the month's report (usage, a monthly fee or a minimum commitment in force), by
    name: what the report's pages go through, without rating anyone (one statement)."""
    period, last_day = _month_bounds(year, month)
    in_force = {"valid_from__lte": last_day}
    ended = {"valid_to__lt": period}
    customers = Customer.objects.filter(
        Q(pk__in=MonthlySummary.objects.filter(period=period).values("customer_id"))
        | Q(pk__in=PriceAgreement.objects.filter(monthly_fee__gt=0, **in_force).exclude(**ended).values("customer_id"))
        | Q(pk__in=MinimumCommitment.objects.filter(**in_force).exclude(**ended).values("customer_id"))
    )
    if customer_ids is not None:
        customers = customers.filter(pk__in=customer_ids)
    return list(customers.order_by("name", "pk").values_list("pk", flat=True))


TOTALS_KEPT_SECONDS = 24 * 3600


def usage_report_month_totals(
    *, year: int, month: int, customer_ids: Collection[int] | None = None
) -> list[UsageReportTotal]:
    """The month's totals per currency over every customer given (all when None), as `usage_report_totals` adds
    them up from the whole report. Rating ten thousand customers takes seconds, so the totals are kept in the
    cache under a fingerprint of everything rating reads (`_rating_inputs`): they are rated again only once an
    import, a rebuild or a change of prices, tiers or commitments has changed it."""
    period, _ = _month_bounds(year, month)
    scope = None if customer_ids is None else sorted(customer_ids)
    fingerprint = repr((period, scope, _rating_inputs(period, customer_ids)))
    key = "usage-report-totals:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    totals = cache.get(key)
    if totals is None:
        totals = usage_report_totals(usage_month_report(year=year, month=month, customer_ids=customer_ids))
        cache.set(key, totals, TOTALS_KEPT_SECONDS)
    return totals


def _rating_inputs(period: date, customer_ids: Collection[int] | None) -> tuple:
    """What changes whenever anything the month's rating reads changes: the month's summaries (their number and
    sums: every import and rebuild moves them) and the newest version of every agreement, tier, commitment and
    customer (each change writes one). Five statements."""
    summaries = MonthlySummary.objects.filter(period=period)
    if customer_ids is not None:
        summaries = summaries.filter(customer_id__in=customer_ids)
    usage = summaries.aggregate(
        rows=Count("pk"),
        records=Sum("record_count"),
        quantity=Sum("quantity"),
        amount=Sum("amount"),
        first=Max("first_service_time"),
        last=Max("last_service_time"),
    )
    versions = [
        model.history.aggregate(newest=Max("history_id"), versions=Count("history_id"))
        for model in (PriceAgreement, PriceTier, MinimumCommitment, Customer)
    ]
    return (tuple(usage.values()), *(tuple(version.values()) for version in versions))
