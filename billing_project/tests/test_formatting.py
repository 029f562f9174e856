from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.template import Context, Template

from billing_project import formatting


def test_amounts_carry_their_currency_code_separators_and_two_decimals():
    assert formatting.money(Decimal("87.500000000000"), "EUR") == "EUR\u00a087.50"
    assert formatting.money(Decimal("-1234567.5"), "USD") == "-USD\u00a01,234,567.50"
    assert formatting.money(Decimal("1234.5")) == "1,234.50"
    assert formatting.money(None, "EUR") == ""


def test_prices_trim_trailing_zeros_to_at_least_two_decimals():
    assert formatting.price(Decimal("0.350000"), "EUR") == "EUR\u00a00.35"
    assert formatting.price(Decimal("0.008000"), "EUR") == "EUR\u00a00.008"
    assert formatting.price(Decimal("250.000000"), "CHF") == "CHF\u00a0250.00"
    assert formatting.price(Decimal("0.123456")) == "0.123456"


def test_quantities_drop_trailing_zeros():
    assert formatting.quantity(Decimal("12345678.000000")) == "12,345,678"
    assert formatting.quantity(Decimal("1250.500000")) == "1,250.5"


def test_rates_and_shares_are_percentages_without_trailing_zeros():
    assert formatting.percent(Decimal("0.2000")) == "20\u00a0%"
    assert formatting.percent(Decimal("0.0750")) == "7.5\u00a0%"
    assert formatting.percent(Decimal("0")) == "0\u00a0%"
    assert formatting.percentage(Decimal("30.00")) == "30\u00a0%"
    assert formatting.percentage(Decimal("12.25")) == "12.25\u00a0%"
    assert formatting.percentage(None) == ""


def test_dates_and_times_use_one_format_in_the_billing_time_zone(settings):
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    late_evening_utc = datetime(2026, 12, 2, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert formatting.day(date(2026, 12, 2)) == "2 Dec 2026"
    assert formatting.day(late_evening_utc) == "3 Dec 2026"
    assert formatting.moment(late_evening_utc) == "3 Dec 2026, 00:30"


def test_the_filters_are_built_into_every_template():
    rendered = Template(
        "{{ total|money:'EUR' }} {{ unit|price:'EUR' }} {{ n|quantity }} {{ d|day }} {{ r|percent }} {{ p|percentage }}"
    ).render(
        Context(
            {
                "total": Decimal("1000"),
                "unit": Decimal("0.5"),
                "n": Decimal("2.50"),
                "d": date(2026, 1, 5),
                "r": Decimal("0.19"),
                "p": Decimal("30.00"),
            }
        )
    )
    assert rendered == "EUR\u00a01,000.00 EUR\u00a00.50 2.5 5 Jan 2026 19\u00a0% 30\u00a0%"


def test_django_renders_dates_in_the_project_format():
    assert Template("{{ d }}").render(Context({"d": date(2026, 12, 2)})) == "2 Dec 2026"
