"""Daily usage (issue 13): kept by every import in step with the records, rebuilt and filled from them, and what
GET /api/usage answers totals by day and by part of a month from, without reading the records."""

import importlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage.models import DailyUsage, MonthlySummary, Upload, UsageRecord
from usage.services import rebuild_usage_summaries, usage_import_events

RECEIVED_AT = datetime(2026, 6, 15, tzinfo=UTC)
START = datetime(2026, 2, 27, tzinfo=UTC)  # events fall from late February to early April, across two month ends


def make_catalog() -> SimpleNamespace:
    """ACME buys kyc_check at 0.05 until 15 March and at 0.04 from the 16th (two monthly summaries in March),
    and aml_check at 0.1; OTHER buys both at 0.1."""
    acme, other = CustomerFactory(client_id="ACME"), CustomerFactory(client_id="OTHER")
    kyc, aml = ServiceFactory(code="kyc_check"), ServiceFactory(code="aml_check")
    PriceAgreementFactory(
        customer=acme, service=kyc, unit_price=Decimal("0.05"), valid_from=date(2026, 1, 1), valid_to=date(2026, 3, 15)
    )
    PriceAgreementFactory(customer=acme, service=kyc, unit_price=Decimal("0.04"), valid_from=date(2026, 3, 16))
    for customer, service in ((acme, aml), (other, kyc), (other, aml)):
        PriceAgreementFactory(
            customer=customer, service=service, unit_price=Decimal("0.1"), valid_from=date(2026, 1, 1)
        )
    return SimpleNamespace(acme=acme, other=other, kyc=kyc, aml=aml)


def load(*events: dict) -> Upload:
    return usage_import_events(actor=None, events=list(events), received_at=RECEIVED_AT)


def event(client_id: str, service: str, quantity: str, service_time: str) -> dict:
    return {"serviceName": service, "clientId": client_id, "quantity": quantity, "serviceTime": service_time}


def daily_from_records(zone: str) -> list[tuple]:
    """What the daily usage must hold: the records grouped by customer, service and local day, summed here."""
    local = ZoneInfo(zone)
    totals: dict[tuple, list] = {}
    for customer_id, service_id, service_time, quantity, unit_price in UsageRecord.objects.values_list(
        "customer_id", "service_id", "service_time", "quantity", "unit_price"
    ):
        total = totals.setdefault(
            (customer_id, service_id, service_time.astimezone(local).date()), [Decimal(0), 0, Decimal(0)]
        )
        total[0] += quantity
        total[1] += 1
        total[2] += quantity * unit_price
    return sorted((*key, quantity, count, amount) for key, (quantity, count, amount) in totals.items())


def daily_rows() -> list[tuple]:
    return sorted(
        DailyUsage.objects.values_list("customer_id", "service_id", "day", "quantity", "record_count", "amount")
    )


# --- Kept by the import --------------------------------------------------------------------------------------------

events = st.builds(
    event,
    client_id=st.sampled_from(["ACME", "OTHER"]),
    service=st.sampled_from(["kyc_check", "aml_check"]),
    # Up to 3 decimal places: the amounts stay within the 15 digits SQLite keeps of a decimal.
    quantity=st.integers(min_value=1, max_value=2_000_000).map(lambda n: str(Decimal(n).scaleb(-3))),
    # Quarter hours over 40 days: records share days, and land either side of midnight and of month ends.
    service_time=st.integers(min_value=0, max_value=40 * 96).map(
        lambda n: (START + timedelta(minutes=15 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)
# A batch with a bad event is refused whole: it must leave the daily usage as it was.
batches = st.tuples(st.lists(events, min_size=1, max_size=25), st.booleans())


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(["UTC", "America/Sao_Paulo", "Asia/Kolkata"]),
    imports=st.lists(batches, min_size=1, max_size=5),
)
def test_after_any_sequence_of_imports_the_daily_usage_is_the_records_grouped_by_local_day(zone, imports):
    with override_settings(BILLING_TIME_ZONE=zone), transaction.atomic():
        make_catalog()
        for batch, spoiled in imports:
            upload = load(*batch, *([event("NOBODY", "kyc_check", "1", "2026-03-01T00:00:00Z")] if spoiled else []))
            assert (upload.status == Upload.Status.FAILED) == spoiled, upload.errors

            assert daily_rows() == daily_from_records(zone)

        assert sum(row.record_count for row in DailyUsage.objects.all()) == UsageRecord.objects.count()
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_day_imported_in_several_batches_is_one_row_adding_them_up():
    catalog = make_catalog()
    load(event("ACME", "kyc_check", "2", "2026-03-10T08:00:00Z"))
    load(
        event("ACME", "kyc_check", "3", "2026-03-10T09:00:00Z"), event("ACME", "kyc_check", "5", "2026-03-11T09:00:00Z")
    )

    assert sorted(DailyUsage.objects.values_list("customer_id", "service_id", "day", "quantity", "record_count")) == [
        (catalog.acme.pk, catalog.kyc.pk, date(2026, 3, 10), Decimal(5), 2),
        (catalog.acme.pk, catalog.kyc.pk, date(2026, 3, 11), Decimal(5), 1),
    ]


# --- Rebuilt and filled from the records ---------------------------------------------------------------------------


@pytest.fixture
def imported(db):
    catalog = make_catalog()
    load(
        event("ACME", "kyc_check", "2.5", "2026-03-15T23:30:00Z"),
        event("ACME", "kyc_check", "4", "2026-03-16T00:30:00Z"),
        event("ACME", "aml_check", "1", "2026-03-31T23:59:59Z"),
        event("OTHER", "kyc_check", "7", "2026-04-01T00:00:00Z"),
    )
    return catalog


def test_rebuilding_the_summaries_rebuilds_the_daily_usage(imported):
    expected = daily_rows()
    DailyUsage.objects.filter(customer=imported.acme, service=imported.kyc).delete()
    DailyUsage.objects.filter(customer=imported.other).update(quantity=Decimal(99))

    rebuild_usage_summaries()

    assert daily_rows() == expected == daily_from_records("UTC")


def test_rebuilding_one_customer_leaves_the_others_daily_usage_alone(imported):
    DailyUsage.objects.all().update(record_count=9)

    rebuild_usage_summaries(customer_ids=[imported.acme.pk])

    assert set(DailyUsage.objects.filter(customer=imported.other).values_list("record_count", flat=True)) == {9}
    assert set(DailyUsage.objects.filter(customer=imported.acme).values_list("record_count", flat=True)) == {1}


@override_settings(BILLING_TIME_ZONE="America/Sao_Paulo")
def test_the_migration_fills_the_daily_usage_of_the_records_already_there(db):
    make_catalog()
    load(
        event("ACME", "kyc_check", "3", "2026-03-16T02:00:00Z"),
        event("OTHER", "aml_check", "1", "2026-03-16T04:00:00Z"),
    )
    expected = daily_from_records("America/Sao_Paulo")
    assert [row[2] for row in expected] == [date(2026, 3, 15), date(2026, 3, 16)]  # the first is the 15th locally
    DailyUsage.objects.all().delete()
    migration = importlib.import_module("usage.migrations.0006_daily_usage")

    def execute(sql, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    from django.apps import apps

    migration.fill_daily_usage(apps, SimpleNamespace(connection=connection, execute=execute))

    assert daily_rows() == expected


# --- Read by the API -----------------------------------------------------------------------------------------------


def record_queries(queries) -> list[str]:
    return [query["sql"] for query in queries if UsageRecord._meta.db_table in query["sql"]]


@pytest.mark.parametrize(
    "query",
    ["group_by=day", "group_by=day&from=2026-03-16&to=2026-03-31", "group_by=month&from=2026-03-16&to=2026-04-01"],
)
def test_totals_by_day_and_by_part_of_a_month_read_no_records(query, imported, finance_user, client_for):
    with CaptureQueriesContext(connection) as queries:
        response = client_for(finance_user).get(f"/api/usage?{query}")

    assert response.status_code == 200, response.content
    assert response.json()["results"]
    assert record_queries(queries) == []


def test_totals_by_part_of_a_month_add_up_the_records_of_those_days(imported, finance_user, client_for):
    response = client_for(finance_user).get("/api/usage?group_by=month&from=2026-03-16&to=2026-04-01")

    rows = [
        (row["customer"], row["service"], row["period"], row["quantity"], row["record_count"], row["amount"])
        for row in response.json()["results"]
    ]
    assert rows == [
        (imported.acme.pk, "aml_check", "2026-03-01", "1.000000", 1, "0.100000"),
        (imported.acme.pk, "kyc_check", "2026-03-01", "4.000000", 1, "0.160000"),  # not the 15th's 2.5
        (imported.other.pk, "kyc_check", "2026-04-01", "7.000000", 1, "0.700000"),
    ]
    assert MonthlySummary.objects.filter(customer=imported.acme, service=imported.kyc).count() == 2
