"""DESIGN.md's rating rule for one customer, one service and one billing period, as pure functions.

- the fee is the agreement's `monthly_fee`, once, in full, even with no usage;
- the period's usage, taken in service time order, is free up to `included_quantity` (a record
  can straddle the boundary);
- every unit beyond the allowance is charged at its own record's snapshot price;
- lines: the fee, the included units at zero, one per distinct snapshot price with chargeable
  units, each `amount = round_half_up(quantity * unit_price, 2)`.

Agreements of the other pricing models (DESIGN.md, "Pricing models": graduated, volume, package) rate the
period's chargeable units (all usage beyond the allowance) by their tier table or package in `tiered_rating`;
a customer's monthly minimum commitment adds `commitment_top_up` over all its services.

Nothing here touches the database: `usage.report_selectors` computes the split set-based and hands
it to `rating_lines`; `rate_usage` does the whole rule over records streamed in service time order.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_project.money import line_amount, round_amount
from catalog.models import PricingModel

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatedLine:
    kind: str  # FEE, INCLUDED, USAGE, TIER (graduated), VOLUME, TIER_FEE, PACKAGE or COMMITMENT
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tier: int | None = None  # TIER, VOLUME and TIER_FEE: the tier's number, from 1
    first_unit: Decimal | None = None  # TIER: the chargeable units this line covers, both ends inclusive
    last_unit: Decimal | None = None
    package_size: Decimal | None = None  # PACKAGE: units per package; quantity is the number of packages

    FEE = "fee"
    INCLUDED = "included"
    USAGE = "usage"
    TIER = "tier"
    VOLUME = "volume"
    TIER_FEE = "tier_fee"
    PACKAGE = "package"
    COMMITMENT = "commitment"  # a minimum commitment's top-up: the customer's, over all its services

    CHARGED_FOR_USAGE = (USAGE, TIER, VOLUME, TIER_FEE, PACKAGE)


@dataclass(frozen=True, slots=True)
class Rating:
    lines: tuple[RatedLine, ...]
    quantity: Decimal  # all usage of the period
    included_used: Decimal  # of it, free under the allowance
    overage_quantity: Decimal  # of it, charged

    @property
    def fee(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind == RatedLine.FEE), ZERO)

    @property
    def usage_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind in RatedLine.CHARGED_FOR_USAGE), ZERO)

    @property
    def amount(self) -> Decimal:
        """Every line summed: each was rounded once, on its own."""
        return sum((line.amount for line in self.lines), ZERO)


def split_allowance(
    usage: Iterable[tuple[Decimal, Decimal]], *, included_quantity: Decimal
) -> tuple[Decimal, dict[Decimal, Decimal]]:
    """Take the allowance from `usage` ((quantity, unit_price) in service time order), earliest first.

    Returns the units taken free and the chargeable units per snapshot price.
    """
    left = included_quantity
    free = ZERO
    chargeable: dict[Decimal, Decimal] = {}
    for quantity, unit_price in usage:
        taken = min(quantity, left) if left > 0 else ZERO
        left -= taken
        free += taken
        if quantity > taken:
            chargeable[unit_price] = chargeable.get(unit_price, ZERO) + quantity - taken
    return free, chargeable


def rating_lines(
    *, included_used: Decimal, chargeable_by_price: Mapping[Decimal, Decimal], monthly_fee: Decimal
) -> Rating:
    """The lines of one customer, service and period, from an allowance split already made.

    The fee line is left out when the fee is zero, the included line when nothing was included;
    usage lines come by unit price, lowest first, whatever order the split was made in.
    """
    lines = []
    if monthly_fee > 0:
        lines.append(RatedLine(RatedLine.FEE, Decimal(1), monthly_fee, round_amount(monthly_fee)))
    if included_used > 0:
        lines.append(RatedLine(RatedLine.INCLUDED, included_used, ZERO, round_amount(ZERO)))
    overage = ZERO
    for unit_price, quantity in sorted(chargeable_by_price.items()):
        if quantity <= 0:
            continue
        overage += quantity
        lines.append(RatedLine(RatedLine.USAGE, quantity, unit_price, line_amount(quantity, unit_price)))
    return Rating(
        lines=tuple(lines), quantity=included_used + overage, included_used=included_used, overage_quantity=overage
    )


def rate_usage(*, usage: Iterable[tuple[Decimal, Decimal]], included_quantity: Decimal, monthly_fee: Decimal) -> Rating:
    """Rate one customer's usage of one service in one period.

    `usage` is (quantity, unit_price) per record, in service time order (ties in a fixed order,
    e.g. by primary key); `included_quantity` and `monthly_fee` are those of the latest agreement
    whose validity overlaps the period.
    """
    free, chargeable = split_allowance(usage, included_quantity=included_quantity)
    return rating_lines(included_used=free, chargeable_by_price=chargeable, monthly_fee=monthly_fee)


# --- Graduated, volume and package pricing ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    """Units above the previous tier's `up_to` (or 0) up to this one's, inclusive; `up_to` None is open-ended."""

    up_to: Decimal | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO


def _fee_and_included(monthly_fee: Decimal, included_used: Decimal) -> list[RatedLine]:
    lines = []
    if monthly_fee > 0:
        lines.append(RatedLine(RatedLine.FEE, Decimal(1), monthly_fee, round_amount(monthly_fee)))
    if included_used > 0:
        lines.append(RatedLine(RatedLine.INCLUDED, included_used, ZERO, round_amount(ZERO)))
    return lines


def _tier_fee(number: int, tier: Tier) -> list[RatedLine]:
    if tier.flat_fee <= 0:
        return []
    return [RatedLine(RatedLine.TIER_FEE, Decimal(1), tier.flat_fee, round_amount(tier.flat_fee), tier=number)]


def _first_unit_above(bound: Decimal) -> Decimal:
    """How a tier's first unit reads: whole units count from bound + 1 ("10,001 to 100,000"), fractions from
    the bound itself."""
    return bound + 1 if bound == bound.to_integral_value() else bound


def graduated_lines(chargeable: Decimal, tiers: Sequence[Tier]) -> list[RatedLine]:
    """Each chargeable unit at the tier it falls in, filling the tiers from the first; each tier reached adds its
    flat fee."""
    lines: list[RatedLine] = []
    lower = ZERO
    for number, tier in enumerate(tiers, start=1):
        if chargeable <= lower:
            break
        upper = chargeable if tier.up_to is None else min(chargeable, tier.up_to)
        quantity = upper - lower
        lines.append(
            RatedLine(
                RatedLine.TIER,
                quantity,
                tier.unit_price,
                line_amount(quantity, tier.unit_price),
                tier=number,
                first_unit=_first_unit_above(lower),
                last_unit=upper,
            )
        )
        lines.extend(_tier_fee(number, tier))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return lines


def volume_tier(chargeable: Decimal, tiers: Sequence[Tier]) -> tuple[int, Tier]:
    """The tier the period's total chargeable units fall in (its number, from 1)."""
    for number, tier in enumerate(tiers, start=1):
        if tier.up_to is None or chargeable <= tier.up_to:
            return number, tier
    raise ValueError("A tier table ends with an open-ended tier.")


def volume_lines(chargeable: Decimal, tiers: Sequence[Tier]) -> list[RatedLine]:
    """Every chargeable unit at the one tier the total falls in, plus that tier's flat fee."""
    if chargeable <= 0:
        return []
    number, tier = volume_tier(chargeable, tiers)
    lines = [
        RatedLine(RatedLine.VOLUME, chargeable, tier.unit_price, line_amount(chargeable, tier.unit_price), tier=number)
    ]
    return lines + _tier_fee(number, tier)


def package_lines(chargeable: Decimal, *, package_size: Decimal, package_price: Decimal) -> list[RatedLine]:
    """Chargeable units rounded up to whole packages, one line."""
    if chargeable <= 0:
        return []
    packages = Decimal(math.ceil(chargeable / package_size))
    return [
        RatedLine(
            RatedLine.PACKAGE,
            packages,
            package_price,
            line_amount(packages, package_price),
            package_size=package_size,
        )
    ]


def tiered_rating(
    *,
    pricing_model: str,
    quantity: Decimal,
    included_quantity: Decimal,
    monthly_fee: Decimal,
    tiers: Sequence[Tier] = (),
    package_size: Decimal | None = None,
    package_price: Decimal | None = None,
) -> Rating:
    """Rate a period's usage under a graduated, volume or package agreement.

    Only the period's total matters: these agreements run whole billing months, so one tier table or package
    prices every unit, and the allowance takes the first units whatever their order.
    """
    included_used = min(quantity, included_quantity)
    chargeable = quantity - included_used
    if pricing_model == PricingModel.GRADUATED:
        charged = graduated_lines(chargeable, tiers)
    elif pricing_model == PricingModel.VOLUME:
        charged = volume_lines(chargeable, tiers)
    elif pricing_model == PricingModel.PACKAGE:
        charged = package_lines(chargeable, package_size=package_size, package_price=package_price)
    else:
        raise ValueError(f"{pricing_model!r} is not a tiered pricing model.")
    return Rating(
        lines=tuple(_fee_and_included(monthly_fee, included_used) + charged),
        quantity=quantity,
        included_used=included_used,
        overage_quantity=chargeable,
    )


def commitment_top_up(*, commitment: Decimal, ratings: Iterable[Rating]) -> Decimal:
    """What a monthly minimum commitment adds: the shortfall of the period's fee and usage lines, over all the
    customer's services, below the commitment (zero when they reach it)."""
    charged = sum((rating.amount for rating in ratings), ZERO)
    return round_amount(max(commitment - charged, ZERO))


def commitment_rating(top_up: Decimal) -> Rating:
    """The top-up as a rating of its own: one line, no usage."""
    return Rating(
        lines=(RatedLine(RatedLine.COMMITMENT, Decimal(1), top_up, round_amount(top_up)),),
        quantity=ZERO,
        included_used=ZERO,
        overage_quantity=ZERO,
    )
