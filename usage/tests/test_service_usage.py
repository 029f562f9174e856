"""The usage kept per month, currency and service over every customer (what the dashboard's usage revenue reads)
stays equal to the monthly summaries added up, import after import, and the rebuild makes it so again."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from usage.models import MonthlySummary, ServiceUsage, Upload, UsageRecord
from usage.services import rebuild_usage_summaries
from usage.tests.test_daily_usage import event, load, make_catalog
from usage.tests.test_services import run_at_once

pytestmark = pytest.mark.django_db
MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def kept() -> dict:
    """The kept usage; a row a rebuild took back to zero stays, and counts as nothing."""
    return {(row.period, row.currency, row.service_id): row.amount for row in ServiceUsage.objects.exclude(amount=0)}


def summed() -> dict:
    amounts: dict = defaultdict(Decimal)
    for summary in MonthlySummary.objects.select_related("customer"):
        amounts[summary.period, summary.customer.currency, summary.service_id] += summary.amount
    return dict(amounts)


@pytest.fixture
def catalog():
    catalog = make_catalog()
    catalog.other.currency = "USD"
    catalog.other.save()
    return catalog


def test_every_import_adds_to_the_kept_usage_of_its_months_currencies_and_services(catalog):
    load(
        event("ACME", "kyc_check", "100", "2026-03-10T10:00:00Z"),  # at 0.05
        event("ACME", "kyc_check", "50", "2026-03-20T10:00:00Z"),  # at 0.04: a second summary
        event("OTHER", "kyc_check", "7", "2026-03-20T10:00:00Z"),  # at 0.1, in USD
    )
    assert (
        kept()
        == summed()
        == {(MARCH, "EUR", catalog.kyc.pk): Decimal("7"), (MARCH, "USD", catalog.kyc.pk): Decimal("0.7")}
    )

    load(
        event("ACME", "aml_check", "3", "2026-04-01T00:00:00Z"),
        event("ACME", "kyc_check", "10", "2026-03-21T10:00:00Z"),
    )
    assert kept() == summed()
    assert kept()[MARCH, "EUR", catalog.kyc.pk] == Decimal("7.4")
    assert kept()[APRIL, "EUR", catalog.aml.pk] == Decimal("0.3")


def test_the_rebuild_of_some_customers_or_all_makes_the_kept_usage_equal_to_the_summaries_again(catalog):
    load(
        event("ACME", "kyc_check", "100", "2026-03-10T10:00:00Z"),
        event("ACME", "aml_check", "3", "2026-04-01T00:00:00Z"),
        event("OTHER", "kyc_check", "7", "2026-03-20T10:00:00Z"),
    )
    UsageRecord.objects.filter(customer=catalog.acme, service=catalog.aml).delete()  # behind the import's back

    rebuild_usage_summaries(customer_ids=[catalog.acme.pk])
    assert kept() == summed()
    assert (APRIL, "EUR", catalog.aml.pk) not in kept()

    ServiceUsage.objects.update(amount=Decimal("1"))
    rebuild_usage_summaries()
    assert kept() == summed() and len(kept()) == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and concurrent transactions need PostgreSQL")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_imports_for_different_customers_at_once_both_add_to_the_same_kept_usage():
    catalog = make_catalog()  # both customers in EUR: every batch adds to the same row of March's kyc_check
    batches = [
        [event(client_id, "kyc_check", "1", f"2026-03-{day:02d}T10:00:00Z") for day in range(1, 29)]
        for client_id in ("ACME", "OTHER")
    ]

    results = run_at_once(*(lambda batch=batch: load(*batch) for batch in batches))

    assert [upload.status for upload in results] == [Upload.Status.IMPORTED] * 2, results
    assert kept() == summed()
    # ACME: 15 days at 0.05 and 13 at 0.04; OTHER: 28 at 0.1.
    assert kept()[MARCH, "EUR", catalog.kyc.pk] == Decimal("0.75") + Decimal("0.52") + Decimal("2.8")
