"""`__in_array`: the same rows as `__in`, with the values sent as one array on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project import lookups  # noqa: F401  (registers __in_array)
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory
from ledger.models import MonthlyTotal

pytestmark = pytest.mark.django_db


def test_it_finds_what_in_finds_on_a_field_and_a_foreign_key():
    customers = [CustomerFactory() for _ in range(4)]
    wanted = [customers[0].pk, customers[2].pk, customers[3].pk]
    for customer in customers:
        MonthlyTotal.objects.create(customer=customer, month="2026-11-01", currency=customer.currency)

    assert set(Customer.objects.filter(pk__in_array=wanted)) == set(Customer.objects.filter(pk__in=wanted))
    by_array = MonthlyTotal.objects.filter(customer_id__in_array=wanted).values_list("customer_id", flat=True)
    assert sorted(by_array) == sorted(wanted)
    assert sorted(MonthlyTotal.objects.filter(customer__in_array=wanted).values_list("customer_id", flat=True)) == (
        sorted(wanted)
    )


def test_no_values_find_nothing():
    CustomerFactory()
    assert list(Customer.objects.filter(pk__in_array=[])) == []


def test_postgresql_gets_one_array_parameter():
    if connection.vendor != "postgresql":
        pytest.skip("the array parameter is PostgreSQL's; other databases get an IN list")
    ids = [customer.pk for customer in (CustomerFactory(), CustomerFactory())]
    with CaptureQueriesContext(connection) as captured:
        assert len(list(Customer.objects.filter(pk__in_array=[*ids, 10**12]))) == 2
    assert "= ANY(" in captured.captured_queries[0]["sql"]
    assert " IN (" not in captured.captured_queries[0]["sql"]
