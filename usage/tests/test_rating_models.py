"""Graduated, volume and package pricing and the minimum commitment (DESIGN.md, "Pricing models"), as pure
functions: DESIGN.md's examples, tier edges, allowances, fractions, flat fees and half-cent rounding."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.models import PricingModel
from usage.rating import (
    RatedLine,
    Rating,
    Tier,
    commitment_top_up,
    tiered_rating,
)

GRADUATED, VOLUME, PACKAGE = PricingModel.GRADUATED, PricingModel.VOLUME, PricingModel.PACKAGE
DESIGN_TIERS = (Tier(D(10_000), D("0.010")), Tier(D(100_000), D("0.008")), Tier(None, D("0.005")))


def rate(model, quantity, *, tiers=DESIGN_TIERS, included=D(0), fee=D(0), **package) -> Rating:
    return tiered_rating(
        pricing_model=model,
        quantity=D(quantity),
        included_quantity=D(included),
        monthly_fee=D(fee),
        tiers=tiers,
        **package,
    )


def lines(rating: Rating) -> list[tuple]:
    return [(line.kind, line.quantity, line.unit_price, line.amount) for line in rating.lines]


def test_designs_graduated_example_is_1070():
    rating = rate(GRADUATED, 150_000)

    assert lines(rating) == [
        (RatedLine.TIER, D(10_000), D("0.010"), D("100.00")),
        (RatedLine.TIER, D(90_000), D("0.008"), D("720.00")),
        (RatedLine.TIER, D(50_000), D("0.005"), D("250.00")),
    ]
    assert [(line.first_unit, line.last_unit) for line in rating.lines] == [
        (D(1), D(10_000)),
        (D(10_001), D(100_000)),
        (D(100_001), D(150_000)),
    ]
    assert rating.amount == D("1070.00")


def test_designs_volume_example_is_750():
    rating = rate(VOLUME, 150_000)

    assert lines(rating) == [(RatedLine.VOLUME, D(150_000), D("0.005"), D("750.00"))]
    assert rating.lines[0].tier == 3


def test_designs_package_example_is_15():
    rating = rate(PACKAGE, 2_350, tiers=(), included=200, package_size=D(1_000), package_price=D("5.00"))

    assert lines(rating) == [
        (RatedLine.INCLUDED, D(200), D(0), D("0.00")),
        (RatedLine.PACKAGE, D(3), D("5.00"), D("15.00")),
    ]
    assert (rating.included_used, rating.overage_quantity) == (D(200), D(2_150))


def test_designs_commitment_example_tops_up_81():
    assert commitment_top_up(commitment=D("500.00"), ratings=[rate(GRADUATED, 49_875)]) == D(
        "81.00"
    )  # 100.00 + 319.00 = 419.00


def test_commitment_reached_or_passed_adds_nothing():
    assert commitment_top_up(commitment=D("1070.00"), ratings=[rate(GRADUATED, 150_000)]) == D("0.00")
    assert commitment_top_up(commitment=D("100.00"), ratings=[rate(GRADUATED, 150_000)]) == D("0.00")


def test_commitment_counts_fees_and_every_service():
    ratings = [rate(GRADUATED, 1_000, fee=50), rate(VOLUME, 2_000)]  # 50 + 10.00, and 20.00

    assert commitment_top_up(commitment=D("100.00"), ratings=ratings) == D("20.00")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        (10_000, [(D(10_000), D("100.00"))]),
        (10_001, [(D(10_000), D("100.00")), (D(1), D("0.01"))]),
        (100_000, [(D(10_000), D("100.00")), (D(90_000), D("720.00"))]),
        (100_001, [(D(10_000), D("100.00")), (D(90_000), D("720.00")), (D(1), D("0.01"))]),
    ],
)
def test_graduated_on_and_just_past_a_tier_edge(quantity, expected):
    assert [(line.quantity, line.amount) for line in rate(GRADUATED, quantity).lines] == expected


@pytest.mark.parametrize(
    ("quantity", "tier", "price"),
    [(10_000, 1, D("0.010")), (10_001, 2, D("0.008")), (100_000, 2, D("0.008")), (100_001, 3, D("0.005"))],
)
def test_volume_on_and_just_past_a_tier_edge(quantity, tier, price):
    (line,) = rate(VOLUME, quantity).lines

    assert (line.tier, line.quantity, line.unit_price) == (tier, D(quantity), price)


def test_allowance_larger_than_the_usage_charges_nothing_but_the_fee():
    for model in (GRADUATED, VOLUME):
        rating = rate(model, 800, included=1_000, fee="30.00")

        assert lines(rating) == [
            (RatedLine.FEE, D(1), D("30.00"), D("30.00")),
            (RatedLine.INCLUDED, D(800), D(0), D("0.00")),
        ]
        assert rating.overage_quantity == 0


def test_usage_across_the_allowance_and_a_tier_edge_starts_the_tiers_after_the_allowance():
    # 1,000 free, then 10,500 chargeable: 10,000 in tier 1 and 500 in tier 2.
    rating = rate(GRADUATED, 11_500, included=1_000)

    assert lines(rating) == [
        (RatedLine.INCLUDED, D(1_000), D(0), D("0.00")),
        (RatedLine.TIER, D(10_000), D("0.010"), D("100.00")),
        (RatedLine.TIER, D(500), D("0.008"), D("4.00")),
    ]


def test_fractional_quantities_split_at_the_edge():
    rating = rate(GRADUATED, "10000.5")

    assert [(line.quantity, line.first_unit, line.last_unit) for line in rating.lines] == [
        (D(10_000), D(1), D(10_000)),
        (D("0.5"), D(10_001), D("10000.5")),
    ]
    assert rating.amount == D("100.00")  # 0.5 × 0.008 = 0.004 rounds to 0.00


def test_package_rounds_a_fraction_up_to_a_whole_package():
    rating = rate(PACKAGE, "1000.001", tiers=(), package_size=D(1_000), package_price=D("5.00"))

    assert lines(rating) == [(RatedLine.PACKAGE, D(2), D("5.00"), D("10.00"))]


def test_flat_fees_of_the_tiers_reached_only():
    tiers = (Tier(D(100), D("1.00"), D("10.00")), Tier(D(1_000), D("0.50"), D("20.00")), Tier(None, D("0.10"), D(5)))

    graduated = rate(GRADUATED, 150, tiers=tiers)
    volume = rate(VOLUME, 150, tiers=tiers)

    assert lines(graduated) == [
        (RatedLine.TIER, D(100), D("1.00"), D("100.00")),
        (RatedLine.TIER_FEE, D(1), D("10.00"), D("10.00")),
        (RatedLine.TIER, D(50), D("0.50"), D("25.00")),
        (RatedLine.TIER_FEE, D(1), D("20.00"), D("20.00")),
    ]
    assert lines(volume) == [
        (RatedLine.VOLUME, D(150), D("0.50"), D("75.00")),
        (RatedLine.TIER_FEE, D(1), D("20.00"), D("20.00")),
    ]


def test_no_chargeable_units_means_no_tier_and_no_flat_fee():
    tiers = (Tier(D(100), D("1.00"), D("10.00")), Tier(None, D("0.50"), D("20.00")))

    for model in (GRADUATED, VOLUME):
        assert lines(rate(model, 0, tiers=tiers, fee="9.00")) == [(RatedLine.FEE, D(1), D("9.00"), D("9.00"))]
    assert rate(PACKAGE, 50, tiers=(), included=50, package_size=D(10), package_price=D(1)).usage_amount == 0


def test_half_a_cent_rounds_up_on_each_line():
    tiers = (Tier(D(1), D("0.005")), Tier(None, D("0.015")))

    rating = rate(GRADUATED, 2, tiers=tiers)

    # 0.005 and 0.015 each round half up to 0.01 and 0.02: rounded per line, not on the total (0.02).
    assert [line.amount for line in rating.lines] == [D("0.01"), D("0.02")]
    assert rating.amount == D("0.03")


# --- properties -------------------------------------------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def falling_tier_tables(draw):
    edges = sorted(set(draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=5))))
    prices = sorted(
        draw(st.lists(st.integers(0, 10**6), min_size=len(edges) + 1, max_size=len(edges) + 1)), reverse=True
    )
    ups = [D(edge) for edge in edges] + [None]
    return tuple(Tier(up, D(price).scaleb(-6)) for up, price in zip(ups, prices, strict=True))


@given(tiers=falling_tier_tables(), quantity=quantities, included=quantities)
def test_graduated_costs_at_least_volume_when_prices_fall_with_volume(tiers, quantity, included):
    graduated = rate(GRADUATED, quantity, tiers=tiers, included=included)
    volume = rate(VOLUME, quantity, tiers=tiers, included=included)

    # Per tier, rounding moves a line by at most half a cent.
    assert graduated.amount >= volume.amount - D("0.005") * len(graduated.lines)


@given(tiers=falling_tier_tables(), quantity=quantities, included=quantities)
def test_graduated_lines_cover_every_chargeable_unit_once(tiers, quantity, included):
    rating = rate(GRADUATED, quantity, tiers=tiers, included=included)

    charged = sum((line.quantity for line in rating.lines if line.kind == RatedLine.TIER), D(0))
    assert charged == rating.overage_quantity == max(D(quantity) - D(included), D(0))
    assert rating.included_used + rating.overage_quantity == D(quantity)
