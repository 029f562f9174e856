"""Reads of usage that the admin reuses: what a user may see, and a cheap row estimate for big tables."""

from datetime import date, datetime

from django.db import connection
from django.db.models import Model, Q, QuerySet, Sum

from accounts.models import User
from catalog.selectors import customer_list_for, portal_customer_id
from usage.models import ClosedPeriod, DailyUsage, MonthlySummary, Upload, UsageRecord

# Below this estimate an exact COUNT(*) is cheap enough, and right after a bulk load the estimate lags.
EXACT_COUNT_BELOW = 100_000
# A filtered list counts its rows up to this many, then says "more than".
COUNT_CAP = 10_000


def visible_customer_ids(user: User) -> list[int] | None:
    """The ids of the customers `user` may see, or None for every customer (no filter needed)."""
    customer_id = portal_customer_id(user)
    if customer_id is not None and user.is_active:
        return [customer_id]
    customers = customer_list_for(user)
    if not customers.query.where:
        return None
    return list(customers.order_by().values_list("pk", flat=True))  # unsorted: they go into an IN list


def _scoped(queryset: QuerySet, user: User) -> QuerySet:
    """`queryset` limited to the customers `user` may see, by their ids rather than a subquery: the planner then
    knows how many rows they hold (the column's statistics), one customer is an equality that the
    (customer, service time, id) index answers in order, and every customer is no filter at all."""
    customer_ids = visible_customer_ids(user)
    if customer_ids is None:
        return queryset  # every customer: no filter, so the table's row estimate still applies
    if len(customer_ids) == 1:
        return queryset.filter(customer_id=customer_ids[0])
    return queryset.filter(customer_id__in=customer_ids)


def usage_record_list_for(user: User) -> QuerySet[UsageRecord]:
    """Usage records of the customers `user` may see."""
    return _scoped(UsageRecord.objects.all(), user)


def monthly_summary_list_for(user: User) -> QuerySet[MonthlySummary]:
    return _scoped(MonthlySummary.objects.all(), user)


def daily_usage_list_for(user: User) -> QuerySet[DailyUsage]:
    return _scoped(DailyUsage.objects.all(), user)


def record_count_from_daily_usage(
    user: User,
    *,
    customer_id: int | None = None,
    service_id: int | None = None,
    days: tuple[date, date] | None = None,
) -> int:
    """How many usage records of the customers `user` may see match these filters, from the daily usage: exact (the
    import writes both in one transaction) and read from a row per customer, service and day, not the records."""
    rows = daily_usage_list_for(user)
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    if service_id is not None:
        rows = rows.filter(service_id=service_id)
    if days is not None:
        rows = rows.filter(day__range=days)
    return rows.aggregate(records=Sum("record_count"))["records"] or 0


def closed_period_list_for(user: User) -> QuerySet[ClosedPeriod]:
    return _scoped(ClosedPeriod.objects.all(), user)


def upload_list_for(user: User) -> QuerySet[Upload]:
    """Uploads span customers; only staff who may view uploads (Finance, Admin) see them, all of them."""
    if not user.has_perm("usage.view_upload"):
        return Upload.objects.none()
    return Upload.objects.all()


def estimated_row_count(model: type[Model]) -> int | None:
    """PostgreSQL's planner estimate of a table's rows (no scan); None where there is none to read."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    if row is None or row[0] < 0:  # -1: never vacuumed nor analysed
        return None
    return row[0]


def record_key(record: UsageRecord) -> str:
    """Where a record sits in the lists' order (newest service time first, then highest id): `<time>|<id>`."""
    return f"{record.service_time.isoformat()}|{record.pk}"


def parse_record_key(raw: str) -> tuple[datetime, int]:
    """The service time and id of `record_key`'s text; ValueError if it is not one."""
    moment, _, pk = raw.rpartition("|")
    service_time = datetime.fromisoformat(moment)
    if service_time.tzinfo is None:
        raise ValueError(f"{raw!r} has no time zone.")
    return service_time, int(pk)


def records_older_than(records: QuerySet[UsageRecord], service_time: datetime, pk: int) -> QuerySet[UsageRecord]:
    """The records after (service_time, pk) in the lists' order. The bound on service time alone is redundant; it
    lets the (service time, id) and (customer, service time, id) indexes start there."""
    return records.filter(
        Q(service_time__lt=service_time) | Q(service_time=service_time, pk__lt=pk), service_time__lte=service_time
    )


def records_newer_than(records: QuerySet[UsageRecord], service_time: datetime, pk: int) -> QuerySet[UsageRecord]:
    """The records before (service_time, pk) in the lists' order, nearest first."""
    return records.filter(
        Q(service_time__gt=service_time) | Q(service_time=service_time, pk__gt=pk), service_time__gte=service_time
    ).order_by("service_time", "id")
