"""A tier table as one line of text, for files and pages: "1-10,000 @ 0.01; 10,001-100,000 @ 0.008 + 5.00;
100,001+ @ 0.005". Each tier is its units (first-last, or first+ for the open-ended last one), its unit price after
"@" and, when it has one, its flat fee after "+". `parse_tier_table` reads it back into the dicts that
catalog.services.checked_tier_table checks (a gap or an overlap between tiers is caught there, by tier number).
"""

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from billing_project.formatting import price, quantity
from catalog.models import PriceAgreement, PriceTier, PricingModel

_NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
_TIER = re.compile(
    rf"^\s*(?P<first>{_NUMBER})\s*(?:-\s*(?P<last>{_NUMBER})|(?P<open>\+))\s*@\s*(?P<price>{_NUMBER})"
    rf"\s*(?:\+\s*(?P<fee>{_NUMBER}))?\s*$"
)


def _first_unit(bound: Decimal) -> Decimal:
    return bound + 1 if bound == bound.to_integral_value() else bound


def format_tier_table(tiers: Iterable[PriceTier]) -> str:
    parts = []
    bound = Decimal(0)
    for tier in tiers:
        first = quantity(_first_unit(bound))
        units = f"{first}+" if tier.up_to is None else f"{first}-{quantity(tier.up_to)}"
        fee = f" + {price(tier.flat_fee)}" if tier.flat_fee else ""
        parts.append(f"{units} @ {price(tier.unit_price)}{fee}")
        bound = tier.up_to if tier.up_to is not None else bound
    return "; ".join(parts)


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def parse_tier_table(text: str) -> list[dict]:
    """The tiers of `text` in order, or ValueError naming the tier that cannot be read."""
    if not text.strip():
        return []
    tiers = []
    for number, part in enumerate(text.split(";"), start=1):
        match = _TIER.match(part)
        if match is None:
            raise ValueError(
                f"Tier {number} ('{part.strip()}') cannot be read: write it as 'first-last @ price', "
                "'first+ @ price' for the last tier, and '+ fee' after the price for a flat fee."
            )
        try:
            tiers.append(
                {
                    "first_unit": _number(match["first"]),
                    "up_to": None if match["open"] else _number(match["last"]),
                    "unit_price": _number(match["price"]),
                    "flat_fee": _number(match["fee"]) if match["fee"] else Decimal(0),
                }
            )
        except InvalidOperation:
            raise ValueError(f"Tier {number} ('{part.strip()}') has a number that cannot be read.") from None
    return tiers


def price_terms(agreement: PriceAgreement, currency: str) -> list[str]:
    """An agreement's price as lines a customer reads: the unit price, each tier, or the package."""
    unit = agreement.service.unit_label or "unit"
    if agreement.pricing_model == PricingModel.PER_UNIT:
        return [f"{price(agreement.unit_price, currency)} per {unit}"]
    if agreement.pricing_model == PricingModel.PACKAGE:
        size = quantity(agreement.package_size)
        return [f"{price(agreement.package_price, currency)} per package of {size} {unit}s, started packages in full"]
    lines = (
        ["Each unit at the price of its tier:"]
        if agreement.pricing_model == PricingModel.GRADUATED
        else ["Every unit at the price of the tier the month's total falls in:"]
    )
    bound = Decimal(0)
    for tier in agreement.tiers.all():
        first = quantity(_first_unit(bound))
        units = f"{first} and above" if tier.up_to is None else f"{first} – {quantity(tier.up_to)}"
        fee = f", plus {price(tier.flat_fee, currency)} once reached" if tier.flat_fee else ""
        lines.append(f"{units}: {price(tier.unit_price, currency)}{fee}")
        bound = tier.up_to if tier.up_to is not None else bound
    return lines


def price_summary(agreement: PriceAgreement, currency: str) -> str:
    """An agreement's price in a few words, for lists: "EUR 0.05", "Graduated, 3 tiers, EUR 0.01 to EUR 0.005",
    "Package, EUR 5.00 per 1,000"."""
    if agreement.pricing_model == PricingModel.PER_UNIT:
        return price(agreement.unit_price, currency)
    if agreement.pricing_model == PricingModel.PACKAGE:
        return f"Package, {price(agreement.package_price, currency)} per {quantity(agreement.package_size)}"
    tiers = list(agreement.tiers.all())
    if not tiers:
        return "no tiers"
    first, last = price(tiers[0].unit_price, currency), price(tiers[-1].unit_price, currency)
    model = agreement.get_pricing_model_display().split()[0]  # Graduated, Volume
    return f"{model}, {len(tiers)} tiers, {first} to {last}" if len(tiers) > 1 else f"{model}, 1 tier, {first}"
