"""Billing months are calendar months in BILLING_TIME_ZONE (DESIGN.md, "Money, time and numbers")."""

from datetime import date
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def billing_zone() -> ZoneInfo:
    return ZoneInfo(settings.BILLING_TIME_ZONE)


def billing_today() -> date:
    return timezone.localdate(timezone=billing_zone())
