from datetime import UTC, date, datetime

import pytest
from django.db import connection
from simple_history.utils import bulk_create_with_history

from billing_project.bulk import history_record_created, insert_rows
from catalog.tests.factories import CustomerFactory
from usage.models import ClosedPeriod

pytestmark = pytest.mark.django_db
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)
CLOSED = datetime(2026, 11, 1, 6, tzinfo=UTC)


def test_rows_inserted_as_tuples_read_back_as_the_orm_writes_them(finance_user):
    customers = CustomerFactory.create_batch(3)

    insert_rows(
        ClosedPeriod,
        ["customer_id", "period", "closed_by_id", "closed_at"],
        [
            (customer.pk, OCTOBER, finance_user.pk, connection.ops.adapt_datetimefield_value(CLOSED))
            for customer in customers
        ],
    )

    closed = ClosedPeriod.objects.order_by("customer_id")
    assert [(row.customer_id, row.period, row.closed_by) for row in closed] == [
        (customer.pk, OCTOBER, finance_user) for customer in customers
    ]
    assert closed[0].closed_at == CLOSED


def test_created_history_matches_what_simple_history_writes_itself(finance_user):
    first, second = CustomerFactory.create_batch(2)
    by_orm = bulk_create_with_history(
        [ClosedPeriod(customer=first, period=OCTOBER, closed_by=finance_user)], ClosedPeriod, default_user=finance_user
    )[0]
    by_sql = ClosedPeriod.objects.create(customer=second, period=OCTOBER, closed_by=finance_user)
    by_sql.history.all().delete()

    history_record_created(ClosedPeriod, where="customer_id = %s", params=[second.pk], user=finance_user)

    def summary(record):
        (created,) = record.history.all()
        return (
            created.customer_id == record.customer_id,
            created.period,
            created.closed_by,
            created.closed_at == record.closed_at,
            created.history_type,
            created.history_user,
            created.history_change_reason,
        )

    assert summary(by_sql) == summary(by_orm) == (True, OCTOBER, finance_user, True, "+", finance_user, None)


def test_created_history_covers_only_the_rows_matched(finance_user):
    customer = CustomerFactory()
    ClosedPeriod.objects.bulk_create([ClosedPeriod(customer=customer, period=p) for p in (OCTOBER, NOVEMBER)])

    history_record_created(ClosedPeriod, where="period = %s", params=[NOVEMBER], user=None)

    assert list(ClosedPeriod.history.values_list("period", "history_user")) == [(NOVEMBER, None)]
