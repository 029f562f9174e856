"""Days and months in the billing time zone, and the one check of a range of days a user asks for."""

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from billing_project.billing_time import FIRST_DAY, LAST_DAY, billing_day_range


def test_a_range_is_whole_days_in_the_billing_time_zone(settings):
    settings.BILLING_TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: the day starts the day before in UTC

    days = billing_day_range(date(2026, 3, 1), date(2026, 3, 31))

    assert days.start == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert days.end == datetime(2026, 3, 31, 10, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
def test_the_widest_range_has_bounds_in_every_zone(settings, zone):
    settings.BILLING_TIME_ZONE = zone

    days = billing_day_range(FIRST_DAY, LAST_DAY)

    assert days.start.astimezone(UTC).year in {1899, 1900}
    assert days.end.astimezone(UTC).year in {2100, 2101}


def test_either_end_may_be_open():
    assert billing_day_range(None, None).start is None
    assert billing_day_range(None, date(2026, 3, 1)).start is None
    assert billing_day_range(date(2026, 3, 1), None).end is None


@pytest.mark.parametrize(
    ("first", "last", "errors"),
    [
        (date(1, 1, 1), None, {"date_from": ["Enter a day from 1900-01-01 to 2100-12-31."]}),
        (None, date(9999, 12, 31), {"date_to": ["Enter a day from 1900-01-01 to 2100-12-31."]}),
        (date(1899, 12, 31), date(2101, 1, 1), {"date_from": ["Enter a day from 1900-01-01 to 2100-12-31."],
                                                "date_to": ["Enter a day from 1900-01-01 to 2100-12-31."]}),
        (date(2026, 3, 2), date(2026, 3, 1), {"date_to": ["The period ends before it starts."]}),
    ],
)  # fmt: skip
def test_days_out_of_range_or_reversed_are_refused_naming_the_field(first, last, errors):
    with pytest.raises(ValidationError) as refused:
        billing_day_range(first, last, first_field="date_from", last_field="date_to")

    assert refused.value.message_dict == errors
