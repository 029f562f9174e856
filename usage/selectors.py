"""Reads of usage that the admin reuses: what a user may see, and a cheap row estimate for big tables."""

from django.db import connection
from django.db.models import Model, QuerySet

from accounts.models import User
from catalog.selectors import customer_list_for
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord

# Below this estimate an exact COUNT(*) is cheap enough, and right after a bulk load the estimate lags.
EXACT_COUNT_BELOW = 100_000


def _scoped(queryset: QuerySet, user: User) -> QuerySet:
    customers = customer_list_for(user)
    if not customers.query.where:
        return queryset  # every customer: no join, no filter, so the table's row estimate still applies
    return queryset.filter(customer__in=customers)


def usage_record_list_for(user: User) -> QuerySet[UsageRecord]:
    """Usage records of the customers `user` may see."""
    return _scoped(UsageRecord.objects.all(), user)


def monthly_summary_list_for(user: User) -> QuerySet[MonthlySummary]:
    return _scoped(MonthlySummary.objects.all(), user)


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
