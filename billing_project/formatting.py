"""One look for numbers and dates everywhere: admin, portal, PDFs, exports and emails.

Amounts show with their currency code and two decimals ("EUR 1,234.50"); unit prices keep up to six decimals
with trailing zeros trimmed to at least two ("EUR 0.008"); quantities drop trailing zeros ("1,250.5"); rates and
shares are percentages without trailing zeros ("20 %", "12.5 %"). Babel
does the formatting in `settings.NUMBER_LOCALE`. Dates and times use Django's formats
(`billing_project/formats/en/formats.py`) in the billing time zone.
"""

from datetime import date, datetime
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, format_percent
from django.conf import settings
from django.utils import dateformat, formats

from billing_project.billing_time import billing_zone

_AMOUNT = "¤¤\u00a0#,##0.00"
_PRICE = "¤¤\u00a0#,##0.00####"
_QUANTITY = "#,##0.######"
_PLAIN_AMOUNT = "#,##0.00"
_PLAIN_PRICE = "#,##0.00####"
_PERCENT = "#,##0.##\u00a0%"


def money(amount: Decimal | int | None, currency: str = "") -> str:
    """An amount with its currency code, thousands separators and two decimals; "" for None."""
    if amount is None:
        return ""
    if not currency:
        return format_decimal(amount, format=_PLAIN_AMOUNT, locale=settings.NUMBER_LOCALE)
    return format_currency(amount, currency, format=_AMOUNT, locale=settings.NUMBER_LOCALE, currency_digits=False)


def price(amount: Decimal | int | None, currency: str = "") -> str:
    """A unit price: two to six decimals, trailing zeros trimmed ("EUR 0.008", "EUR 1.00")."""
    if amount is None:
        return ""
    if not currency:
        return format_decimal(amount, format=_PLAIN_PRICE, locale=settings.NUMBER_LOCALE)
    return format_currency(amount, currency, format=_PRICE, locale=settings.NUMBER_LOCALE, currency_digits=False)


def quantity(value: Decimal | int | None) -> str:
    """A quantity without trailing zeros, with thousands separators ("1,250.5", "3")."""
    if value is None:
        return ""
    return format_decimal(value, format=_QUANTITY, locale=settings.NUMBER_LOCALE)


def percent(rate: Decimal | int | None) -> str:
    """A rate given as a fraction, as a percentage without trailing zeros: 0.2 -> "20 %", 0.075 -> "7.5 %"."""
    if rate is None:
        return ""
    return format_percent(rate, format=_PERCENT, locale=settings.NUMBER_LOCALE)


def percentage(value: Decimal | int | None) -> str:
    """A share given in percent (30.00 for thirty percent) in the same look: "30 %"."""
    if value is None:
        return ""
    return percent(Decimal(value) / 100)


def day(value: date | datetime | None) -> str:
    """A date in the project's one date format; a datetime is first moved to the billing time zone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(billing_zone()).date() if value.tzinfo else value.date()
    return dateformat.format(value, formats.get_format("DATE_FORMAT"))


def moment(value: datetime | None) -> str:
    """A date and time in the project's one date-time format, in the billing time zone."""
    if value is None:
        return ""
    if value.tzinfo:
        value = value.astimezone(billing_zone())
    return dateformat.format(value, formats.get_format("DATETIME_FORMAT"))
