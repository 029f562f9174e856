"""DESIGN.md's rating rule for one customer, one service and one billing period, as pure functions.

- the fee is the agreement's `monthly_fee`, once, in full, even with no usage;
- the period's usage, taken in service time order, is free up to `included_quantity` (a record
  can straddle the boundary);
- every unit beyond the allowance is charged at its own record's snapshot price;
- lines: the fee, the included units at zero, one per distinct snapshot price with chargeable
  units, each `amount = round_half_up(quantity * unit_price, 2)`.

Nothing here touches the database: `usage.report_selectors` computes the split set-based and hands
it to `rating_lines`; `rate_usage` does the whole rule over records streamed in service time order.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from billing_project.money import line_amount, round_amount

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatedLine:
    kind: str  # FEE, INCLUDED or USAGE
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    FEE = "fee"
    INCLUDED = "included"
    USAGE = "usage"


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
        return sum((line.amount for line in self.lines if line.kind == RatedLine.USAGE), ZERO)

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
