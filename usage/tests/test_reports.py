import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from catalog.models import PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage.models import Upload, UsageRecord
from usage.rating import RatedLine, rate_usage
from usage.report_selectors import usage_month_report
from usage.services import rebuild_usage_summaries

pytestmark = pytest.mark.django_db


def record(agreement, quantity, when: datetime, unit_price=None) -> UsageRecord:
    upload = Upload.objects.first() or Upload.objects.create(source=Upload.Source.API)
    return UsageRecord.objects.create(
        customer=agreement.customer,
        service=agreement.service,
        price_agreement=agreement,
        quantity=D(quantity),
        service_time=when,
        period=when.date().replace(day=1),
        unit_price=agreement.unit_price if unit_price is None else D(unit_price),
        currency=agreement.customer.currency,
        upload=upload,
    )


def report(**filters):
    """The report once the summaries are in step with the records created directly above it."""
    rebuild_usage_summaries()
    return usage_month_report(**filters)


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def design_example(db):
    """DESIGN.md's example: allowance 1,000, 0.05 until the 15th and 0.04 after, with a fee of 10."""
    customer = CustomerFactory(name="Acme", client_id="ACME")
    service = ServiceFactory(code="kyc_check")
    early = PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.05"),
        included_quantity=D(1000),
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 3, 15),
    )
    late = PriceAgreementFactory(
        customer=customer,
        service=service,
        unit_price=D("0.04"),
        included_quantity=D(1000),
        monthly_fee=D(10),
        valid_from=date(2026, 3, 16),
    )
    # Inserted in reverse: the allowance follows service time, not insertion order.
    record(late, 900, at(20))
    record(early, 700, at(10))
    return customer, service


def test_designs_example_under_the_rating_rule(design_example):
    customer, service = design_example

    (row,) = report(year=2026, month=3)

    assert (row.customer_id, row.service_id, row.client_id, row.service_code) == (
        customer.pk,
        service.pk,
        "ACME",
        "kyc_check",
    )
    assert (row.quantity, row.allowance_used, row.overage_quantity, row.record_count) == (D(1600), D(1000), D(600), 2)
    assert (row.monthly_fee, row.rating.fee, row.rating.usage_amount, row.amount) == (
        D(10),
        D("10.00"),
        D("24.00"),
        D("34.00"),
    )
    assert [(line.kind, line.quantity, line.unit_price, line.amount) for line in row.rating.lines] == [
        (RatedLine.FEE, D(1), D(10), D("10.00")),
        (RatedLine.INCLUDED, D(1000), D(0), D("0.00")),
        (RatedLine.USAGE, D(600), D("0.04"), D("24.00")),
    ]


def test_other_months_and_customers_stay_out(design_example):
    customer, service = design_example
    april = PriceAgreementFactory(customer=CustomerFactory(name="Zed"), service=service, valid_from=date(2026, 1, 1))
    record(april, 5, at(1, month=4))
    late = UsageRecord.objects.filter(unit_price=D("0.04")).first().price_agreement
    record(late, 50, at(2, month=4))

    april_rows = report(year=2026, month=4)
    march_acme = report(year=2026, month=3, customer_ids=[customer.pk])

    assert [(row.client_id, row.quantity, row.amount) for row in april_rows] == [
        # Acme: fee 10, 50 within the allowance; Zed: 5 x 0.05, no allowance.
        ("ACME", D(50), D("10.00")),
        (april.customer.client_id, D(5), D("0.25")),
    ]
    assert [row.amount for row in march_acme] == [D("34.00")]
    assert report(year=2026, month=3, customer_ids=[april.customer.pk]) == []


def test_a_monthly_fee_is_reported_without_usage(db):
    agreement = PriceAgreementFactory(monthly_fee=D("49.90"), included_quantity=D(100), valid_from=date(2026, 1, 1))
    PriceAgreementFactory(valid_from=date(2026, 1, 1))  # no fee, no usage: nothing to report
    PriceAgreementFactory(monthly_fee=D(5), valid_from=date(2026, 4, 1))  # not yet in force in March

    (row,) = report(year=2026, month=3)

    assert (row.customer_id, row.quantity, row.allowance_used, row.amount) == (
        agreement.customer_id,
        D(0),
        D(0),
        D("49.90"),
    )
    assert row.record_count == 0


def test_records_at_the_same_time_take_the_allowance_in_primary_key_order(db):
    agreement = PriceAgreementFactory(unit_price=D("1"), included_quantity=D(10), valid_from=date(2026, 1, 1))
    record(agreement, 10, at(5), unit_price="2")
    record(agreement, 10, at(5), unit_price="3")

    (row,) = report(year=2026, month=3)

    assert row.amount == D("30.00")


def test_fractional_quantities_are_added_exactly(db):
    agreement = PriceAgreementFactory(unit_price=D("0.333333"), included_quantity=D("0.3"), valid_from=date(2026, 1, 1))
    for day in (1, 2, 3):
        record(agreement, "0.1", at(day))
    record(agreement, "0.000001", at(4))

    (row,) = report(year=2026, month=3)

    assert (row.quantity, row.allowance_used, row.overage_quantity) == (D("0.300001"), D("0.3"), D("0.000001"))
    assert row.amount == D("0.00")


def test_the_report_agrees_with_the_rating_function_record_by_record(db):
    rng = random.Random(20260301)
    service = ServiceFactory()
    agreements = [
        PriceAgreementFactory(
            service=service,
            unit_price=D("0.05"),
            included_quantity=D(rng.choice([0, 50, 500])),
            monthly_fee=D(rng.choice([0, 12])),
            valid_from=date(2026, 1, 1),
        )
        for _ in range(4)
    ]
    for agreement in agreements:
        for _ in range(40):
            record(
                agreement,
                D(rng.randint(1, 9000)) / 100,
                at(rng.randint(1, 31), rng.randint(0, 23)),
                unit_price=rng.choice(["0.05", "0.04", "0.0375"]),
            )

    rows = {row.customer_id: row for row in report(year=2026, month=3)}

    for agreement in agreements:
        records = UsageRecord.objects.filter(customer=agreement.customer).order_by("service_time", "pk")
        expected = rate_usage(
            usage=[(r.quantity, r.unit_price) for r in records],
            included_quantity=agreement.included_quantity,
            monthly_fee=agreement.monthly_fee,
        )
        assert rows[agreement.customer_id].rating == expected


def test_the_report_takes_a_fixed_number_of_queries(design_example, django_assert_num_queries):
    for _ in range(3):
        agreement = PriceAgreementFactory(valid_from=date(2026, 1, 1), monthly_fee=D(1))
        for day in (1, 2, 3):
            record(agreement, 1, at(day))
    rebuild_usage_summaries()

    with django_assert_num_queries(3):  # agreements, summaries, commitments: no record is read
        rows = usage_month_report(year=2026, month=3)

    assert len(rows) == 4


def test_overlapping_summaries_are_split_from_their_records(db, django_assert_num_queries):
    """A price corrected in place while usage kept arriving: the two prices interleave in time."""
    agreement = PriceAgreementFactory(unit_price=D("1"), included_quantity=D(15), valid_from=date(2026, 1, 1))
    record(agreement, 10, at(1), unit_price="2")
    record(agreement, 10, at(2), unit_price="1")
    record(agreement, 10, at(3), unit_price="2")
    rebuild_usage_summaries()

    with django_assert_num_queries(4):  # agreements, summaries, commitments, then this pair's records
        (row,) = usage_month_report(year=2026, month=3)

    # Day 1 and half of day 2 are free; 5 units at 1 and 10 at 2 are charged.
    assert [(line.quantity, line.unit_price) for line in row.rating.lines if line.kind == RatedLine.USAGE] == [
        (D(5), D(1)),
        (D(10), D(2)),
    ]
    assert row.amount == D("25.00")


def test_summaries_in_time_order_rate_like_the_records(db, django_assert_num_queries):
    """Price changes by new agreements, records imported out of order: the summaries alone give the rating."""
    rng = random.Random(20261124)
    service = ServiceFactory()
    for _ in range(5):
        customer = CustomerFactory()
        bounds = sorted(rng.sample(range(2, 29), 2))
        starts = [date(2026, 1, 1), date(2026, 3, bounds[0]), date(2026, 3, bounds[1])]
        agreements = [
            PriceAgreementFactory(
                customer=customer,
                service=service,
                unit_price=D(rng.choice(["0.05", "0.04", "0.0375", "0.06"])),
                included_quantity=D(rng.choice([0, 100, 1000])),
                valid_from=start,
                valid_to=end - timedelta(days=1) if end else None,
            )
            for start, end in zip(starts, [*starts[1:], None], strict=True)
        ]
        days = [rng.randint(1, 31) for _ in range(60)]
        for day in days:
            agreement = next(a for a in reversed(agreements) if a.valid_from <= date(2026, 3, day))
            record(agreement, D(rng.randint(1, 9000)) / 100, at(day, rng.randint(0, 23)))

    rebuild_usage_summaries()

    with django_assert_num_queries(3):  # agreements, summaries and commitments only
        rows = usage_month_report(year=2026, month=3)

    assert len(rows) == 5
    for row in rows:
        customer_id = row.customer_id
        latest = PriceAgreement.objects.filter(customer_id=customer_id).latest("valid_from")
        records = UsageRecord.objects.filter(customer_id=customer_id).order_by("service_time", "pk")
        expected = rate_usage(
            usage=[(r.quantity, r.unit_price) for r in records],
            included_quantity=latest.included_quantity,
            monthly_fee=latest.monthly_fee,
        )
        assert row.rating == expected
        assert len([line for line in row.rating.lines if line.kind == RatedLine.USAGE]) >= 1
