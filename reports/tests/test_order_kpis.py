"""The order KPIs (reports.order_kpis) against figures worked out by hand, on one set of orders around January 2026.

EUR orders of Acme (whose CSM is `csm`), GBP orders of Globex (another CSM's); the period is 1–31 January 2026 in
the billing time zone. Each order's line says where it counts.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PartnerFactory
from orders.models import Order
from reports.order_kpis import (
    CompletionTime,
    CurrencyFigure,
    FailureRate,
    average_order_value,
    completion_time,
    failure_rate,
    order_kpis,
    percentile,
    realised_revenue,
    unrealised_revenue,
)
from reports.tests.order_data import make_order

pytestmark = pytest.mark.django_db

S = Order.Status
JANUARY = {"start": date(2026, 1, 1), "end": date(2026, 1, 31)}


@pytest.fixture
def people(make_user):
    return {
        "finance": make_user(Role.FINANCE),
        "operations": make_user(Role.OPERATIONS),
        "csm": make_user(Role.CUSTOMER_SUCCESS),
        "other_csm": make_user(Role.CUSTOMER_SUCCESS),
    }


@pytest.fixture
def orders(people):
    acme = CustomerFactory(name="Acme", currency="EUR", csm=people["csm"])
    globex = CustomerFactory(name="Globex", currency="GBP", csm=people["other_csm"])
    partner = PartnerFactory()
    made = {
        # Completed in January: realised; 3, 10, 32 and 1 days from start to completion.
        "c1": make_order(acme, fee="1000.00", status=S.COMPLETED, created="2026-01-02 00:00", ended="2026-01-05 00:00"),
        "c2": make_order(acme, fee="500.00", status=S.COMPLETED, created="2026-01-03 00:00", ended="2026-01-13 00:00"),
        "c3": make_order(acme, fee="250.50", status=S.COMPLETED, created="2025-12-20 00:00", ended="2026-01-21 00:00"),
        # The period's last second.
        "c5": make_order(
            acme, fee="100.00", status=S.COMPLETED, created="2026-01-30 23:59:59", ended="2026-01-31 23:59:59"
        ),
        # Completed on the period's first moment after: open at its end, so unrealised.
        "c4": make_order(
            acme,
            fee="300.00",
            partner=partner,
            status=S.COMPLETED,
            created="2026-01-20 00:00",
            ended="2026-02-01 00:00",
        ),
        # Failed in January: the failure rate; failed in February: open at January's end.
        "f1": make_order(acme, fee="200.00", status=S.FAILED, created="2026-01-04 00:00", ended="2026-01-25 00:00"),
        "f2": make_order(acme, fee="400.00", status=S.FAILED, created="2026-01-06 00:00", ended="2026-02-03 00:00"),
        # Cancelled in January: neither open at the end nor in the failure rate.
        "x1": make_order(acme, fee="50.04", status=S.CANCELLED, created="2026-01-07 00:00", ended="2026-01-08 00:00"),
        # Open now, created in January: unrealised.
        "o1": make_order(acme, fee="700.00", status=S.IN_PROGRESS, created="2026-01-15 00:00"),
        # Created after the period: nowhere.
        "o2": make_order(acme, fee="900.00", status=S.STARTED, created="2026-02-01 00:00"),
        # Completed in December: nowhere.
        "d1": make_order(acme, fee="999.00", status=S.COMPLETED, created="2025-12-01 00:00", ended="2025-12-10 00:00"),
        # Globex, in GBP: completed in January in 2 days, and one open.
        "g1": make_order(
            globex, fee="800.00", status=S.COMPLETED, created="2026-01-10 00:00", ended="2026-01-12 00:00"
        ),
        "g2": make_order(globex, fee="150.00", status=S.DOCUMENTS_PENDING, created="2026-01-11 00:00"),
    }
    return made


def test_realised_revenue_is_the_fees_of_orders_completed_in_the_period_per_currency(people, orders):
    assert realised_revenue(people["finance"], **JANUARY) == {
        "EUR": CurrencyFigure(amount=Decimal("1850.50"), orders=4),  # c1 + c2 + c3 + c5, not c4 (February)
        "GBP": CurrencyFigure(amount=Decimal("800.00"), orders=1),
    }


def test_unrealised_revenue_is_the_fees_of_orders_open_at_the_end_by_their_timestamps(people, orders):
    assert unrealised_revenue(people["finance"], **JANUARY) == {
        # c4 completed and f2 failed after the end, o1 still open: 300 + 400 + 700.
        "EUR": CurrencyFigure(amount=Decimal("1400.00"), orders=3),
        "GBP": CurrencyFigure(amount=Decimal("150.00"), orders=1),
    }


def test_open_at_the_end_means_created_before_it_and_not_ended_by_then(people, orders):
    figures = unrealised_revenue(people["finance"], start=date(2026, 1, 14), end=date(2026, 1, 14))
    # The end is 15 Jan 00:00. Created before and not ended by then: c3 (250.50), f1 (200), f2 (400); not c1, c2,
    # x1 (ended), nor o1 (created at that very moment).
    assert figures["EUR"] == CurrencyFigure(amount=Decimal("850.50"), orders=3)
    assert figures["GBP"] == CurrencyFigure(amount=Decimal("150.00"), orders=1)


def test_average_order_value_is_the_mean_fee_of_orders_created_in_the_period_rounded_half_up(people, orders):
    assert average_order_value(people["finance"], **JANUARY) == {
        # c1, c2, c4, c5, f1, f2, x1, o1: 3,250.04 / 8 = 406.255 -> 406.26.
        "EUR": CurrencyFigure(amount=Decimal("406.26"), orders=8),
        "GBP": CurrencyFigure(amount=Decimal("475.00"), orders=2),
    }


def test_completion_time_median_and_90th_percentile_interpolate_between_ranks(people, orders):
    # Completed in January: 1, 2, 3, 10, 32 days. Median: rank 2 -> 3.0. 90th: rank 3.6 -> 10 + 0.6 × 22 = 23.2.
    assert completion_time(people["finance"], **JANUARY) == CompletionTime(
        orders=5, median_days=Decimal("3.0"), p90_days=Decimal("23.2")
    )


def test_completion_time_of_no_completed_order_is_none(people, orders):
    assert completion_time(people["finance"], start=date(2026, 3, 1), end=date(2026, 3, 31)) == CompletionTime(
        orders=0, median_days=None, p90_days=None
    )


def test_failure_rate_is_failed_over_completed_and_failed_ended_in_the_period(people, orders):
    rate = failure_rate(people["finance"], **JANUARY)

    assert rate == FailureRate(completed=5, failed=1)  # f2 failed in February, x1 was cancelled
    assert rate.rate == Decimal("0.1667")
    assert failure_rate(people["finance"], start=date(2026, 3, 1), end=date(2026, 3, 31)).rate is None


def test_a_csm_sees_only_their_customers_orders_in_every_kpi(people, orders):
    kpis = order_kpis(people["csm"], **JANUARY)

    assert set(kpis.realised_revenue) == set(kpis.average_order_value) == {"EUR"}
    assert kpis.realised_revenue["EUR"].amount == Decimal("1850.50")
    # 1, 3, 10, 32 days: median rank 1.5 -> 6.5; 90th rank 2.7 -> 10 + 0.7 × 22 = 25.4.
    assert kpis.completion_time == CompletionTime(orders=4, median_days=Decimal("6.5"), p90_days=Decimal("25.4"))
    assert set(unrealised_revenue(people["csm"], **JANUARY)) == {"EUR"}
    assert failure_rate(people["csm"], **JANUARY) == FailureRate(completed=4, failed=1)
    assert order_kpis(people["other_csm"], **JANUARY).realised_revenue == {
        "GBP": CurrencyFigure(amount=Decimal("800.00"), orders=1)
    }


def test_operations_sees_every_kpi_as_they_are_made_of_fees_only(people, orders):
    assert order_kpis(people["operations"], **JANUARY) == order_kpis(people["finance"], **JANUARY)


def test_someone_who_sees_no_orders_gets_empty_kpis(make_user, orders):
    nobody = make_user()  # staff without a role

    kpis = order_kpis(nobody, **JANUARY)

    assert kpis.realised_revenue == kpis.average_order_value == {}
    assert unrealised_revenue(nobody, **JANUARY) == {}
    assert failure_rate(nobody, **JANUARY).rate is None


def test_a_period_that_ends_before_it_starts_is_refused_naming_end(people):
    with pytest.raises(ValidationError) as refused:
        realised_revenue(people["finance"], start=date(2026, 2, 1), end=date(2026, 1, 1))

    assert "end" in refused.value.message_dict


def test_the_kpis_take_a_constant_number_of_statements(people, orders, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):  # one per KPI, and the user's roles (and portal membership) once
        order_kpis(people["csm"], **JANUARY)


def test_percentile_matches_postgresqls_percentile_cont():
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0], 0.5) == 1.5
    assert percentile([1.0, 2.0, 3.0, 10.0, 32.0], 0.9) == pytest.approx(23.2)
