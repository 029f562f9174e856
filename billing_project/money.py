"""Money precision, from one place (DESIGN.md, "Money, time and numbers")."""

from decimal import ROUND_HALF_UP, Decimal

AMOUNT_MAX_DIGITS = 18
AMOUNT_DECIMAL_PLACES = 2
QUANTITY_MAX_DIGITS = 18
QUANTITY_DECIMAL_PLACES = 6
UNIT_PRICE_MAX_DIGITS = 18
UNIT_PRICE_DECIMAL_PLACES = 6

_CENT = Decimal(1).scaleb(-AMOUNT_DECIMAL_PLACES)

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
    """Round once, half up, to the cent."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)
