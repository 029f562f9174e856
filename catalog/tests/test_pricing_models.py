"""Graduated, volume and package agreements and minimum commitments: what the services accept and what they
refuse, each refusal naming the tier or the field and changing nothing."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import MinimumCommitment, PriceAgreement, PriceTier, PricingModel
from catalog.tests.factories import CustomerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

DESIGN_TIERS = [
    {"up_to": D(10_000), "unit_price": D("0.010")},
    {"up_to": D(100_000), "unit_price": D("0.008")},
    {"up_to": None, "unit_price": D("0.005"), "flat_fee": D("25.00")},
]


def create(actor, *, tiers=DESIGN_TIERS, model=PricingModel.GRADUATED, **terms):
    fields = {"customer": CustomerFactory(), "service": ServiceFactory(), "valid_from": date(2026, 3, 1)} | terms
    return services.price_agreement_create(actor=actor, pricing_model=model, tiers=tiers, **fields)


def refusal(actor, **kwargs) -> dict[str, list[str]]:
    before = (PriceAgreement.objects.count(), PriceTier.objects.count())
    with pytest.raises(ValidationError) as error:
        create(actor, **kwargs)
    assert (PriceAgreement.objects.count(), PriceTier.objects.count()) == before
    return error.value.message_dict


def test_graduated_agreement_is_saved_with_its_tiers_in_order(finance_user):
    agreement = create(finance_user)

    assert agreement.pricing_model == PricingModel.GRADUATED
    assert [(tier.position, tier.up_to, tier.unit_price, tier.flat_fee) for tier in agreement.tiers.all()] == [
        (1, D(10_000), D("0.010"), D("0.00")),
        (2, D(100_000), D("0.008"), D("0.00")),
        (3, None, D("0.005"), D("25.00")),
    ]
    assert agreement.history.first().history_user == finance_user


def test_tiers_may_say_where_they_start_from_the_bound_or_the_next_unit(finance_user):
    tiers = [
        {"first_unit": D(1), "up_to": D(10_000), "unit_price": D("0.01")},
        {"first_unit": D(10_001), "up_to": D(20_000), "unit_price": D("0.008")},
        {"first_unit": D(20_000), "up_to": None, "unit_price": D("0.005")},
    ]

    assert create(finance_user, tiers=tiers).tiers.count() == 3


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        (
            [{"up_to": D(10_000), "unit_price": D(1)}, {"up_to": D(5_000), "unit_price": D(1)}],
            "Tier 2 overlaps tier 1: it must end above 10,000, not at 5,000.",
        ),
        (
            [
                {"up_to": D(10_000), "unit_price": D(1)},
                {"first_unit": D(9_000), "up_to": None, "unit_price": D(1)},
            ],
            "Tier 2 overlaps tier 1: it starts at 9,000, not at 10,001.",
        ),
        (
            [
                {"up_to": D(10_000), "unit_price": D(1)},
                {"first_unit": D(12_001), "up_to": None, "unit_price": D(1)},
            ],
            "Tier 2 leaves a gap: it starts at 12,001, not at 10,001.",
        ),
        (
            [{"up_to": None, "unit_price": D(1)}, {"up_to": None, "unit_price": D(1)}],
            "Tier 2 follows the open-ended tier 1; remove it or give tier 1 a bound.",
        ),
        (
            [{"up_to": D(10_000), "unit_price": D(1)}],
            "Tier 1 is the last: leave its 'up to' empty so every unit has a price.",
        ),
        (
            [{"up_to": D(10_000), "unit_price": D("-0.01")}, {"up_to": None, "unit_price": D(1)}],
            "Tier 1, unit price: Ensure this value is greater than or equal to 0.",
        ),
        ([], "Give at least one tier; the last one is open-ended."),
    ],
)
def test_bad_tier_tables_are_refused_naming_the_tier(finance_user, tiers, message):
    assert message in refusal(finance_user, tiers=tiers)["tiers"]


def test_package_needs_a_size_above_zero_and_a_price(finance_user):
    errors = refusal(finance_user, model=PricingModel.PACKAGE, tiers=[], package_size=D(0), package_price=None)

    assert errors["package_size"] == ["A package must hold more than 0 units."]
    assert errors["package_price"] == ["Give the price of one package."]


def test_package_agreement_is_saved(finance_user):
    agreement = create(finance_user, model=PricingModel.PACKAGE, tiers=[], package_size=D(1_000), package_price=D(5))

    assert (agreement.package_size, agreement.package_price, agreement.tiers.count()) == (D(1_000), D(5), 0)


def test_tiered_agreements_run_whole_billing_months(finance_user):
    errors = refusal(finance_user, valid_from=date(2026, 3, 15), valid_to=date(2026, 4, 29))

    assert errors["valid_from"] == [
        "A graduated tiers agreement starts on the first day of a billing month (not 15 Mar 2026), "
        "so one tier table prices the whole month."
    ]
    assert errors["valid_to"] == [
        "A graduated tiers agreement ends on the last day of a billing month (not 29 Apr 2026)."
    ]


def test_per_unit_agreements_have_no_tiers_and_others_no_unit_price(finance_user):
    assert refusal(finance_user, model=PricingModel.PER_UNIT, unit_price=D(1))["tiers"] == [
        "A per unit agreement has no tiers; choose graduated or volume tiers."
    ]
    assert "unit_price" in refusal(finance_user, unit_price=D("0.05"))


def test_update_replaces_the_tier_table_and_keeps_it_when_not_given(finance_user):
    agreement = create(finance_user)

    services.price_agreement_update(actor=finance_user, agreement=agreement, monthly_fee=D(10))
    assert agreement.tiers.count() == 3

    services.price_agreement_update(
        actor=finance_user, agreement=agreement, tiers=[{"up_to": None, "unit_price": D("0.004")}]
    )
    assert [(tier.up_to, tier.unit_price) for tier in agreement.tiers.all()] == [(None, D("0.004"))]


def test_a_bad_update_changes_nothing(finance_user):
    agreement = create(finance_user)

    with pytest.raises(ValidationError):
        services.price_agreement_update(
            actor=finance_user, agreement=agreement, monthly_fee=D(10), tiers=[{"up_to": D(5), "unit_price": D(1)}]
        )

    agreement.refresh_from_db()
    assert agreement.monthly_fee == 0 and agreement.tiers.count() == 3


def test_commitment_is_in_the_customers_currency(finance_user):
    customer = CustomerFactory(currency="EUR")

    with pytest.raises(ValidationError) as error:
        services.minimum_commitment_create(
            actor=finance_user, customer=customer, amount=D(500), currency="GBP", valid_from=date(2026, 1, 1)
        )

    assert error.value.message_dict["currency"] == [f"{customer.name} is billed in EUR; the commitment must be too."]
    assert not MinimumCommitment.objects.exists()
    commitment = services.minimum_commitment_create(
        actor=finance_user, customer=customer, amount=D(500), valid_from=date(2026, 1, 1)
    )
    assert commitment.currency == "EUR"


def test_commitments_of_one_customer_do_not_overlap(finance_user):
    customer = CustomerFactory()
    services.minimum_commitment_create(
        actor=finance_user, customer=customer, amount=D(500), valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30)
    )

    with pytest.raises(ValidationError) as error:
        services.minimum_commitment_create(
            actor=finance_user, customer=customer, amount=D(600), valid_from=date(2026, 6, 1)
        )

    assert error.value.message_dict["valid_from"] == ["Overlaps the commitment from 1 Jan 2026; end that one first."]
    assert MinimumCommitment.objects.count() == 1


def test_commitment_amount_must_be_above_zero(finance_user):
    with pytest.raises(ValidationError) as error:
        services.minimum_commitment_create(
            actor=finance_user, customer=CustomerFactory(), amount=D(0), valid_from=date(2026, 1, 1)
        )

    assert "amount" in error.value.message_dict
