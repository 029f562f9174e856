"""Billing months are calendar months in BILLING_TIME_ZONE (docs/DESIGN.md, "Money, time and numbers").

The booking window: a date or time a person or a machine gives for money (a payment's receipt, an
invoice's month, a month-end, a usage record's service time) is not before 2000-01-01 in the billing
zone and not more than a day in the future (usage counts from when its batch was received). Filters
are wider (FIRST_DAY to LAST_DAY): they look at data, they book none.
"""

from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing_project.errors import DomainError

# The days a filter may name. Past them a day's bounds leave Python's datetime range in some time zones
# (9999-12-31 has no next day), and no billing data lies there.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2100, 12, 31)

EARLIEST_BOOKING_DAY = date(2000, 1, 1)
FUTURE_TOLERANCE = timedelta(days=1)
TOO_EARLY = f"is before {EARLIEST_BOOKING_DAY.isoformat()}"
TOO_LATE = "is more than a day in the future"


def billing_zone() -> ZoneInfo:
    return ZoneInfo(settings.BILLING_TIME_ZONE)


def billing_today() -> date:
    return timezone.localdate(timezone=billing_zone())


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after `month`'s (before it, when negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def day_start(day: date) -> datetime:
    """The first moment of a day in the billing time zone."""
    return datetime.combine(day, time.min, tzinfo=billing_zone())


class DayRange(NamedTuple):
    """Whole days in the billing time zone, both ends inclusive; either may be open (None)."""

    first: date | None
    last: date | None

    @property
    def start(self) -> datetime | None:
        """The first moment of the range, or None when it has no first day."""
        return None if self.first is None else day_start(self.first)

    @property
    def end(self) -> datetime | None:
        """The first moment after the range (exclusive), or None when it has no last day."""
        return None if self.last is None else day_start(self.last + timedelta(days=1))


def billing_day_range(
    first: date | None, last: date | None, *, first_field: str = "from", last_field: str = "to"
) -> DayRange:
    """The days a user asked for, checked: each between FIRST_DAY and LAST_DAY, the last not before the first.

    Every filter that turns days into a datetime range goes through here. Raises a ValidationError naming the
    field, which a form, a filter set or a serializer reports as theirs.
    """
    errors = {
        field: [f"Enter a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}."]
        for field, day in ((first_field, first), (last_field, last))
        if day is not None and not FIRST_DAY <= day <= LAST_DAY
    }
    if not errors and first is not None and last is not None and last < first:
        errors[last_field] = ["The period ends before it starts."]
    if errors:
        raise ValidationError(errors)
    return DayRange(first, last)


def earliest_booking_time() -> datetime:
    return day_start(EARLIEST_BOOKING_DAY)


def booking_time_problem(moment: datetime, *, now: datetime | None = None) -> str | None:
    """Why an aware date-time is outside the booking window (TOO_EARLY or TOO_LATE), or None."""
    if moment < earliest_booking_time():
        return TOO_EARLY
    if moment > (now or timezone.now()) + FUTURE_TOLERANCE:
        return TOO_LATE
    return None


def booking_day_problem(day: date) -> str | None:
    """Why a day (in the billing zone) is outside the booking window, or None."""
    if day < EARLIEST_BOOKING_DAY:
        return TOO_EARLY
    if day > billing_today() + FUTURE_TOLERANCE:
        return TOO_LATE
    return None


def _refuse(problem: str, *, field: str, label: str, shown: str) -> DomainError:
    return DomainError(
        f"The {label} {shown} {problem}.",
        code="out_of_range",
        fields={field: [f"The {label} {problem}: give one from {EARLIEST_BOOKING_DAY.isoformat()} to tomorrow."]},
    )


def check_booking_time(moment: datetime, *, field: str, label: str) -> None:
    """For services: refuse a date-time outside the booking window, naming the field."""
    problem = booking_time_problem(moment)
    if problem:
        raise _refuse(problem, field=field, label=label, shown=moment.isoformat(sep=" ", timespec="minutes"))


def check_booking_day(day: date, *, field: str, label: str) -> None:
    """For services: refuse a day outside the booking window, naming the field."""
    problem = booking_day_problem(day)
    if problem:
        raise _refuse(problem, field=field, label=label, shown=day.isoformat())
