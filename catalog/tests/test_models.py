import contextlib
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import services
from catalog.models import PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the exclusion constraint and row locks exist on PostgreSQL only"
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("valid_from", "valid_to", "overlaps"),
    [
        (date(2026, 3, 31), date(2026, 4, 30), True),  # ends are inclusive
        (date(2026, 2, 1), date(2026, 2, 28), True),  # inside
        (date(2025, 1, 1), None, True),  # open-ended around it
        (date(2026, 4, 1), None, False),  # the day after
        (date(2025, 1, 1), date(2025, 12, 31), False),  # the year before
    ],
)
def test_overlap_check_honours_inclusive_ends(valid_from, valid_to, overlaps):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=date(2026, 3, 31))
    candidate = PriceAgreement(
        customer=existing.customer,
        service=existing.service,
        unit_price=Decimal("1"),
        valid_from=valid_from,
        valid_to=valid_to,
    )
    if overlaps:
        with pytest.raises(ValidationError, match="Overlaps the agreement in force 2026-01-01 – 2026-03-31"):
            candidate.full_clean()
    else:
        candidate.full_clean()


@pytest.mark.django_db
def test_agreement_cannot_end_before_it_starts():
    agreement = PriceAgreementFactory.build(
        customer=CustomerFactory(), service=ServiceFactory(), valid_from=date(2026, 5, 1), valid_to=date(2026, 4, 30)
    )
    with pytest.raises(ValidationError, match="cannot end before it starts"):
        agreement.full_clean()


def _insert_with_raw_sql(*, customer_id: int, service_id: int, unit_price: int, valid_from: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_priceagreement"
            " (customer_id, service_id, unit_price, included_quantity, monthly_fee, valid_from, created_at)"
            " VALUES (%s, %s, %s, 0, 0, %s, now())",
            [customer_id, service_id, unit_price, valid_from],
        )


@on_postgresql
@pytest.mark.django_db
def test_database_refuses_an_overlapping_agreement_written_with_raw_sql():
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=None)
    with pytest.raises(IntegrityError, match="agreement_no_overlap"):
        _insert_with_raw_sql(
            customer_id=existing.customer_id, service_id=existing.service_id, unit_price=1, valid_from="2027-01-01"
        )
    assert PriceAgreement.objects.count() == 1


@on_postgresql
@pytest.mark.django_db
def test_database_refuses_a_negative_price_written_with_raw_sql():
    customer, service = CustomerFactory(), ServiceFactory()
    with pytest.raises(IntegrityError, match="agreement_amounts_not_negative"):
        _insert_with_raw_sql(customer_id=customer.pk, service_id=service.pk, unit_price=-1, valid_from="2027-01-01")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_agreements_created_at_once_leave_exactly_one():
    customer, service = CustomerFactory(), ServiceFactory()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create(day: int) -> None:
        try:
            barrier.wait(timeout=10)
            services.price_agreement_create(
                actor=None, customer=customer, service=service, unit_price=Decimal(day), valid_from=date(2026, 1, day)
            )
            outcomes.append("created")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(day,)) for day in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
    assert PriceAgreement.objects.filter(customer=customer, service=service).count() == 1


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    periods=st.lists(
        st.tuples(st.integers(0, 60), st.one_of(st.none(), st.integers(0, 30))),
        min_size=1,
        max_size=6,
    )
)
def test_accepted_agreements_never_overlap(periods):
    """Whatever periods are offered, the ones the service accepts are pairwise disjoint."""
    customer, service = CustomerFactory(), ServiceFactory()
    start = date(2026, 1, 1)
    for offset, length in periods:
        valid_from = start + timedelta(days=offset)
        valid_to = None if length is None else valid_from + timedelta(days=length)
        with contextlib.suppress(ValidationError):
            services.price_agreement_create(
                actor=None,
                customer=customer,
                service=service,
                unit_price=Decimal("1"),
                valid_from=valid_from,
                valid_to=valid_to,
            )
    accepted = list(PriceAgreement.objects.filter(customer=customer, service=service).order_by("valid_from"))
    assert accepted, "the first agreement offered is always accepted"
    for earlier, later in zip(accepted, accepted[1:], strict=False):
        assert earlier.valid_to is not None and earlier.valid_to < later.valid_from
