from decimal import Decimal as D

from usage.rating import RatedLine, rate_usage, split_allowance


def lines(rating) -> list[tuple]:
    return [(line.kind, line.quantity, line.unit_price, line.amount) for line in rating.lines]


def test_designs_example_takes_the_allowance_earliest_first():
    # Allowance 1,000; 700 at 0.05 on the 10th, 900 at 0.04 on the 20th.
    rating = rate_usage(usage=[(D(700), D("0.05")), (D(900), D("0.04"))], included_quantity=D(1000), monthly_fee=D(0))

    assert lines(rating) == [
        (RatedLine.INCLUDED, D(1000), D(0), D("0.00")),
        (RatedLine.USAGE, D(600), D("0.04"), D("24.00")),
    ]
    assert (rating.quantity, rating.included_used, rating.overage_quantity) == (D(1600), D(1000), D(600))
    assert rating.amount == D("24.00")


def test_the_record_that_crosses_the_allowance_is_split_between_free_and_charged():
    rating = rate_usage(
        usage=[(D(400), D("0.10")), (D(300), D("0.10")), (D(500), D("0.20"))],
        included_quantity=D(600),
        monthly_fee=D(0),
    )

    # The second record straddles: 200 free, 100 charged at its own 0.10.
    assert lines(rating) == [
        (RatedLine.INCLUDED, D(600), D(0), D("0.00")),
        (RatedLine.USAGE, D(100), D("0.10"), D("10.00")),
        (RatedLine.USAGE, D(500), D("0.20"), D("100.00")),
    ]


def test_order_of_the_records_decides_which_price_is_charged():
    early_expensive = rate_usage(
        usage=[(D(100), D("1.00")), (D(100), D("2.00"))], included_quantity=D(100), monthly_fee=D(0)
    )
    early_cheap = rate_usage(
        usage=[(D(100), D("2.00")), (D(100), D("1.00"))], included_quantity=D(100), monthly_fee=D(0)
    )

    assert (early_expensive.amount, early_cheap.amount) == (D("200.00"), D("100.00"))


def test_zero_usage_still_pays_the_whole_fee():
    rating = rate_usage(usage=[], included_quantity=D(1000), monthly_fee=D("49.90"))

    assert lines(rating) == [(RatedLine.FEE, D(1), D("49.90"), D("49.90"))]
    assert (rating.quantity, rating.fee, rating.amount) == (D(0), D("49.90"), D("49.90"))


def test_usage_within_the_allowance_shows_the_included_units_at_zero_beside_the_fee():
    rating = rate_usage(usage=[(D(10), D("0.05"))], included_quantity=D(1000), monthly_fee=D(5))

    assert lines(rating) == [
        (RatedLine.FEE, D(1), D(5), D("5.00")),
        (RatedLine.INCLUDED, D(10), D(0), D("0.00")),
    ]
    assert rating.overage_quantity == D(0)


def test_each_line_is_rounded_half_up_once():
    # Three records at one price make one line: 8 x 0.005 = 0.04.
    rating = rate_usage(
        usage=[(D(1), D("0.005")), (D(2), D("0.005")), (D(5), D("0.005"))], included_quantity=D(0), monthly_fee=D(0)
    )
    assert lines(rating) == [(RatedLine.USAGE, D(8), D("0.005"), D("0.04"))]

    half = rate_usage(usage=[(D(5), D("0.005"))], included_quantity=D(0), monthly_fee=D(0))
    assert half.amount == D("0.03")  # 0.025 rounds up, not to the even 0.02

    # Rounded per price line, never per record: three records of 1 x 0.0015 make one line of 0.0045 -> 0.00.
    per_line = rate_usage(
        usage=[(D(1), D("0.0015")), (D(1), D("0.0015")), (D(1), D("0.0015"))], included_quantity=D(0), monthly_fee=D(0)
    )
    assert per_line.amount == D("0.00")  # 0.0045 -> 0.00
    summed = rate_usage(usage=[(D(3), D("0.0025"))], included_quantity=D(0), monthly_fee=D(0))
    assert summed.amount == D("0.01")  # 0.0075 -> 0.01


def test_fractional_quantities_straddle_exactly():
    free, chargeable = split_allowance(
        [(D("0.1"), D("1")), (D("0.2"), D("1")), (D("0.35"), D("2"))], included_quantity=D("0.5")
    )

    assert free == D("0.5")
    assert chargeable == {D("2"): D("0.15")}


def test_no_allowance_charges_every_unit_at_its_price():
    rating = rate_usage(
        usage=[(D(3), D("0.10")), (D(2), D("0.20")), (D(1), D("0.10"))], included_quantity=D(0), monthly_fee=D(0)
    )

    assert lines(rating) == [
        (RatedLine.USAGE, D(4), D("0.10"), D("0.40")),
        (RatedLine.USAGE, D(2), D("0.20"), D("0.40")),
    ]
    assert rating.included_used == D(0)
