"""Money precision and bounds, from one place (docs/DESIGN.md, "Money, time and numbers").

Bounds. One setting bounds any single amount a person or a machine gives, or that a draft derives
(a payment, refund, adjustment, credit note, unit price, monthly fee, invoice line, invoice total):
`MAX_AMOUNT`, default 1,000,000,000.00. Another bounds any single quantity (a usage record, an
allowance, an invoice line's units): `MAX_QUANTITY`, default 100,000,000,000. Serializers, forms and
services refuse a value beyond them, naming the field and the bound.

Balances cannot overflow, by arithmetic rather than by the bounds. A journal leg holds at most what an
amount column holds (AMOUNT_MAX_DIGITS = 18 with 2 places: under 10^16), and leg ids are 64-bit, so an
account has fewer than 2^63 < 10^19 legs: its balance stays under 10^19 * 10^16 = 10^35 either way. The
account's `balance` and each leg's `balance_after` are BALANCE_MAX_DIGITS = 38 digits with 2 places (under
10^36), so no posting can overflow them, whatever the bounds are set to. Monthly usage summaries add up
records the same way: a summary counts fewer than 2^31 records (its `record_count` column), each under
10^12 units at a price under 10^12, so SUMMARY_QUANTITY_MAX_DIGITS and SUMMARY_AMOUNT_MAX_DIGITS leave them
room. Anything derived from them that lands in an amount column (an invoice line, a total) is checked
against the bounds first, and a draft beyond them is refused with the reason.
"""

from decimal import ROUND_HALF_UP, Context, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from billing_project.errors import DomainError

AMOUNT_MAX_DIGITS = 18
AMOUNT_DECIMAL_PLACES = 2
QUANTITY_MAX_DIGITS = 18
QUANTITY_DECIMAL_PLACES = 6
UNIT_PRICE_MAX_DIGITS = 18
UNIT_PRICE_DECIMAL_PLACES = 6
BALANCE_MAX_DIGITS = 38
SUMMARY_QUANTITY_MAX_DIGITS = 28  # under 2^31 records * 10^12 units
SUMMARY_AMOUNT_MAX_DIGITS = 46  # under 2^31 records * 10^12 units * 10^12 a unit, with 12 places
SUMMARY_AMOUNT_DECIMAL_PLACES = 12

_CENT = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)
_UNIT = Decimal(1).scaleb(-QUANTITY_DECIMAL_PLACES)
# Exact arithmetic on anything these columns hold: Python's default context keeps 28 digits.
EXACT = Context(prec=100, rounding=ROUND_HALF_UP)

# The largest values the columns hold; a bound set above them is refused at start.
AMOUNT_COLUMN_MAX = Decimal(10) ** (AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES) - _CENT
QUANTITY_COLUMN_MAX = Decimal(10) ** (QUANTITY_MAX_DIGITS - QUANTITY_DECIMAL_PLACES) - _UNIT
UNIT_PRICE_COLUMN_MAX = Decimal(10) ** (UNIT_PRICE_MAX_DIGITS - UNIT_PRICE_DECIMAL_PLACES) - _UNIT
DEFAULT_MAX_AMOUNT = "1000000000.00"
DEFAULT_MAX_QUANTITY = "100000000000"

# ISO 4217 currencies with two minor units: every amount here has two decimal places.
CURRENCY_CHOICES = [
    ("AUD", "AUD — Australian dollar"),
    ("CAD", "CAD — Canadian dollar"),
    ("CHF", "CHF — Swiss franc"),
    ("CZK", "CZK — Czech koruna"),
    ("DKK", "DKK — Danish krone"),
    ("EUR", "EUR — Euro"),
    ("GBP", "GBP — Pound sterling"),
    ("HKD", "HKD — Hong Kong dollar"),
    ("NOK", "NOK — Norwegian krone"),
    ("NZD", "NZD — New Zealand dollar"),
    ("PLN", "PLN — Polish złoty"),
    ("SEK", "SEK — Swedish krona"),
    ("SGD", "SGD — Singapore dollar"),
    ("USD", "USD — US dollar"),
    ("ZAR", "ZAR — South African rand"),
]


def round_amount(value: Decimal) -> Decimal:
    """Round once, half up, to the cent (exactly, however large the value)."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP, context=EXACT)


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """A line's amount: quantity times unit price, rounded once, half up, to the cent."""
    return round_amount(EXACT.multiply(quantity, unit_price))


def parse_bound(name: str, text: str, *, places: int, column_max: Decimal) -> Decimal:
    """A bound from the environment (settings.py), or ValueError saying what is wrong with it."""
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except ArithmeticError:
        raise ValueError(f"{name} must be a number, not {text!r}.") from None
    if not value.is_finite() or value <= 0 or value > column_max:
        raise ValueError(f"{name} must be above 0 and at most {column_max:,f}, what its columns hold; got {text!r}.")
    if value != value.quantize(Decimal(1).scaleb(-places), context=EXACT):
        raise ValueError(f"{name} has at most {places} decimal places; got {text!r}.")
    return value


def max_amount() -> Decimal:
    """The largest single amount accepted, either way (MAX_AMOUNT)."""
    return settings.MAX_AMOUNT


def max_unit_price() -> Decimal:
    """The largest unit price accepted: MAX_AMOUNT, or what a unit price column holds if that is less."""
    return min(settings.MAX_AMOUNT, UNIT_PRICE_COLUMN_MAX)


def max_quantity() -> Decimal:
    """The largest single quantity accepted (MAX_QUANTITY)."""
    return settings.MAX_QUANTITY


_BOUNDS = {
    "amount": (max_amount, "amount", "MAX_AMOUNT"),
    "unit_price": (max_unit_price, "amount", "MAX_AMOUNT"),
    "quantity": (max_quantity, "quantity", "MAX_QUANTITY"),
}


def bound_of(kind: str) -> Decimal:
    """The bound of a kind of value: "amount", "unit_price" or "quantity"."""
    return _BOUNDS[kind][0]()


def bound_message(kind: str) -> str:
    """What a field beyond its bound is told: "Beyond the largest amount accepted, 1,000,000,000.00 (MAX_AMOUNT)."""
    bound, noun, setting = _BOUNDS[kind]
    return f"Beyond the largest {noun} accepted, {bound():,f} ({setting})."


def beyond_bound(value: Decimal | int | None, kind: str) -> bool:
    if value is None:
        return False
    value = value if isinstance(value, Decimal) else Decimal(value)
    return value.is_finite() and abs(value) > bound_of(kind)


@deconstructible
class WithinBound:
    """A validator: the value, either way, is at most the bound of its kind, read from the settings when it runs."""

    def __init__(self, kind: str):
        if kind not in _BOUNDS:
            raise ValueError(f"Unknown kind of bound {kind!r}.")
        self.kind = kind

    def __call__(self, value: Decimal | None) -> None:
        if beyond_bound(value, self.kind):
            raise ValidationError(bound_message(self.kind), code="max_value")

    def __eq__(self, other) -> bool:
        return isinstance(other, WithinBound) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(("WithinBound", self.kind))


def check_bound(value: Decimal, *, kind: str, field: str, label: str) -> None:
    """For services: refuse a value beyond its bound with a DomainError naming the field and the bound."""
    if beyond_bound(value, kind):
        value = Decimal(value)
        bound, noun, setting = _BOUNDS[kind]
        raise DomainError(
            f"The {label} {value:,f} is beyond the largest {noun} accepted, {bound():,f} ({setting}).",
            code="out_of_range",
            fields={field: [bound_message(kind)]},
        )
