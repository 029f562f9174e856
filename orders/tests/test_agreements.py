"""Partners' revenue-share agreements: no overlaps, the type's own agreement beats the general one, inclusive
validity; and the migration that turned partners' default shares into general agreements."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing_project.errors import DomainError
from catalog.tests.factories import PartnerFactory
from orders.models import RevenueShareAgreement
from orders.selectors import agreement_in_force
from orders.services.agreements import (
    revenue_share_agreement_change,
    revenue_share_agreement_create,
    revenue_share_agreement_end,
    revenue_share_agreement_update,
)
from orders.tests.factories import OrderTypeFactory

pytestmark = pytest.mark.django_db

D = Decimal


def create(partner, percentage="30.00", valid_from=date(2026, 1, 1), valid_to=None, order_type=None, actor=None):
    return revenue_share_agreement_create(
        actor=actor,
        partner=partner,
        percentage=D(percentage),
        valid_from=valid_from,
        valid_to=valid_to,
        order_type=order_type,
    )


@pytest.fixture
def partner():
    return PartnerFactory(name="Lexis Formation Partners")


@pytest.fixture
def formation():
    return OrderTypeFactory(code="uk_formation", name="UK company formation")


def test_a_second_general_agreement_that_overlaps_is_refused_and_nothing_is_saved(partner):
    create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))

    with pytest.raises(DomainError) as refused:
        create(partner, percentage="20.00", valid_from=date(2026, 6, 30))

    assert refused.value.code == "overlap"
    assert "valid_from" in refused.value.fields
    assert "all order types (general)" in refused.value.message
    assert "30 Jun 2026" in refused.value.message
    assert RevenueShareAgreement.objects.count() == 1


def test_an_agreement_for_the_same_order_type_that_overlaps_is_refused(partner, formation):
    create(partner, order_type=formation)

    with pytest.raises(DomainError, match="order type UK company formation"):
        create(partner, percentage="25.00", valid_from=date(2027, 3, 1), order_type=formation)


def test_agreements_of_other_types_other_partners_and_following_periods_do_not_clash(partner, formation):
    create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    create(partner, valid_from=date(2026, 7, 1))  # the day after: no overlap, both ends are inclusive
    create(partner, order_type=formation)  # a type of its own beside the general one
    create(partner, order_type=OrderTypeFactory())
    create(PartnerFactory())

    assert RevenueShareAgreement.objects.count() == 5


def test_the_order_types_own_agreement_wins_over_the_general_one(partner, formation):
    general = create(partner, percentage="30.00")
    own = create(partner, percentage="40.00", order_type=formation)
    other_type = OrderTypeFactory()

    assert agreement_in_force(partner, formation, date(2026, 5, 1)) == own
    assert agreement_in_force(partner, other_type, date(2026, 5, 1)) == general


def test_the_general_agreement_applies_while_the_types_own_is_not_in_force(partner, formation):
    general = create(partner)
    own = create(
        partner, percentage="40.00", valid_from=date(2026, 3, 1), valid_to=date(2026, 3, 31), order_type=formation
    )

    assert agreement_in_force(partner, formation, date(2026, 2, 28)) == general
    assert agreement_in_force(partner, formation, date(2026, 3, 1)) == own
    assert agreement_in_force(partner, formation, date(2026, 3, 31)) == own
    assert agreement_in_force(partner, formation, date(2026, 4, 1)) == general


def test_validity_bounds_are_inclusive_and_nothing_in_force_is_none(partner, formation):
    agreement = create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31))

    assert agreement_in_force(partner, formation, date(2025, 12, 31)) is None
    assert agreement_in_force(partner, formation, date(2026, 1, 1)) == agreement
    assert agreement_in_force(partner, formation, date(2026, 12, 31)) == agreement
    assert agreement_in_force(partner, formation, date(2027, 1, 1)) is None
    assert agreement_in_force(PartnerFactory(), formation, date(2026, 6, 1)) is None


def test_the_selector_reads_in_one_query(partner, formation, django_assert_num_queries):
    create(partner)
    create(partner, order_type=formation)

    with django_assert_num_queries(1):
        found = agreement_in_force(partner, formation, date(2026, 6, 1))
        assert found.order_type.name == "UK company formation" and found.partner.name == partner.name


def test_a_change_of_percentage_ends_one_agreement_and_starts_the_next(partner, finance_user):
    agreement = create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31))

    successor = revenue_share_agreement_change(
        actor=finance_user, agreement=agreement, effective_from=date(2026, 11, 1), percentage=D("35.00")
    )

    agreement.refresh_from_db()
    assert agreement.valid_to == date(2026, 10, 31)
    assert (successor.percentage, successor.valid_from, successor.valid_to) == (
        D("35.00"),
        date(2026, 11, 1),
        date(2026, 12, 31),
    )
    assert successor.history.get().history_user == finance_user


def test_a_change_before_the_agreement_starts_or_after_it_ended_is_refused(partner):
    agreement = create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))

    with pytest.raises(DomainError) as too_early:
        revenue_share_agreement_change(
            actor=None, agreement=agreement, effective_from=date(2026, 1, 1), percentage=D("35.00")
        )
    with pytest.raises(DomainError) as too_late:
        revenue_share_agreement_change(
            actor=None, agreement=agreement, effective_from=date(2026, 7, 1), percentage=D("35.00")
        )

    assert "effective_from" in too_early.value.fields and "effective_from" in too_late.value.fields
    assert RevenueShareAgreement.objects.get().valid_to == date(2026, 6, 30)


def test_ending_an_agreement_keeps_its_last_day_and_refuses_an_end_before_its_start(partner):
    agreement = create(partner, valid_from=date(2026, 3, 1))

    with pytest.raises(DomainError) as refused:
        revenue_share_agreement_end(actor=None, agreement=agreement, valid_to=date(2026, 2, 28))
    ended = revenue_share_agreement_end(actor=None, agreement=agreement, valid_to=date(2026, 3, 1))

    assert "valid_to" in refused.value.fields
    assert ended.valid_to == date(2026, 3, 1)
    assert agreement_in_force(partner, OrderTypeFactory(), date(2026, 3, 2)) is None


def test_a_correction_that_would_overlap_is_refused(partner):
    create(partner, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    later = create(partner, percentage="20.00", valid_from=date(2026, 7, 1))

    with pytest.raises(DomainError) as refused:
        revenue_share_agreement_update(actor=None, agreement=later, valid_from=date(2026, 6, 1))

    assert refused.value.code == "overlap"
    later.refresh_from_db()
    assert later.valid_from == date(2026, 7, 1)


def test_a_correction_keeps_partner_and_order_type(partner, formation):
    agreement = create(partner)

    with pytest.raises(DomainError) as refused:
        revenue_share_agreement_update(actor=None, agreement=agreement, order_type=formation)

    assert "order_type" in refused.value.fields


@pytest.mark.parametrize(
    ("percentage", "valid_to", "field"),
    [("100.01", None, "percentage"), ("-1", None, "percentage"), ("10.00", date(2025, 12, 31), "__all__")],
)
def test_bad_terms_are_refused(partner, percentage, valid_to, field):
    with pytest.raises(DomainError) as refused:
        create(partner, percentage=percentage, valid_to=valid_to)

    assert field in refused.value.fields
    assert not RevenueShareAgreement.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the exclusion constraint is PostgreSQL's")
def test_the_database_refuses_an_overlap_that_skips_the_models_check(partner, formation):
    from django.db import IntegrityError, transaction

    RevenueShareAgreement.objects.create(partner=partner, percentage=D("10"), valid_from=date(2026, 1, 1))
    RevenueShareAgreement.objects.create(
        partner=partner, order_type=formation, percentage=D("10"), valid_from=date(2026, 1, 1)
    )

    with pytest.raises(IntegrityError, match="revenue_share_no_overlap"), transaction.atomic():
        RevenueShareAgreement.objects.create(partner=partner, percentage=D("20"), valid_from=date(2026, 5, 1))


# --- The migration from partners' default shares ------------------------------------------------------------------

BEFORE = [("orders", "0003_revenue_share_agreements"), ("catalog", "0005_partner_bank_details")]
AFTER = [("orders", "0004_partner_default_shares_to_agreements")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_each_non_zero_default_share_into_a_general_agreement():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Partner = old.get_model("catalog", "Partner")
    lexis = Partner.objects.create(name="Lexis", default_revenue_share_percent=D("15.00"))
    Partner.objects.filter(pk=lexis.pk).update(created_at=datetime(2026, 2, 10, 12, tzinfo=UTC))
    northstar = Partner.objects.create(name="Northstar", default_revenue_share_percent=D("12.50"))
    Partner.objects.filter(pk=northstar.pk).update(created_at=datetime(2026, 2, 10, 12, tzinfo=UTC))
    Partner.objects.create(name="No share", default_revenue_share_percent=D("0.00"))
    # Northstar brought in an order that started before the partner was entered: its default covered it.
    customer = old.get_model("catalog", "Customer").objects.create(name="Acme", client_id="ACME", currency="EUR")
    order_type = old.get_model("orders", "OrderType").objects.create(code="edd", name="EDD")
    old.get_model("orders", "Order").objects.create(
        number="ORD-1",
        customer=customer,
        partner_id=northstar.pk,
        order_type=order_type,
        currency="EUR",
        start_date=date(2025, 11, 3),
        due_date=date(2025, 11, 30),
        started_at=datetime(2025, 11, 3, 9, tzinfo=UTC),
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Agreement = new.get_model("orders", "RevenueShareAgreement")

    carried = {
        a.partner.name: (a.order_type_id, a.percentage, a.valid_from, a.valid_to)
        for a in Agreement.objects.select_related("partner")
    }
    assert carried == {
        "Lexis": (None, D("15.00"), date(2026, 2, 10), None),
        "Northstar": (None, D("12.50"), date(2025, 11, 3), None),
    }
    history = new.get_model("orders", "HistoricalRevenueShareAgreement").objects.get(partner_id=lexis.pk)
    assert history.history_type == "+" and "default revenue share" in history.history_change_reason

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert RevenueShareAgreement.objects.count() == 2
