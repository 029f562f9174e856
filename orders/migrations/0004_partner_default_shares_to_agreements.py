from datetime import date
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import migrations
from django.db.models import Min
from django.utils import timezone

REASON = "Carried over from the partner's default revenue share"


def first_day(partner, apps) -> date:
    """The day the partner's default began to apply: its creation, or its first order if that started earlier."""
    created = timezone.localtime(partner.created_at, timezone=ZoneInfo(settings.BILLING_TIME_ZONE)).date()
    Order = apps.get_model("orders", "Order")
    first_order = Order.objects.filter(partner_id=partner.pk).aggregate(first=Min("start_date"))["first"]
    return min(created, first_order) if first_order else created


def defaults_to_agreements(apps, schema_editor):
    """Each partner's non-zero default share becomes its general agreement, open-ended, with a history row."""
    Partner = apps.get_model("catalog", "Partner")
    Agreement = apps.get_model("orders", "RevenueShareAgreement")
    HistoricalAgreement = apps.get_model("orders", "HistoricalRevenueShareAgreement")
    now = timezone.now()
    for partner in Partner.objects.exclude(default_revenue_share_percent=0).order_by("pk"):
        if Agreement.objects.filter(partner_id=partner.pk, order_type__isnull=True).exists():
            continue  # carried over already
        agreement = Agreement.objects.create(
            partner_id=partner.pk,
            order_type=None,
            percentage=partner.default_revenue_share_percent,
            valid_from=first_day(partner, apps),
            valid_to=None,
        )
        HistoricalAgreement.objects.create(
            id=agreement.pk,
            partner_id=partner.pk,
            order_type=None,
            percentage=agreement.percentage,
            valid_from=agreement.valid_from,
            valid_to=None,
            created_at=agreement.created_at,
            history_date=now,
            history_type="+",
            history_change_reason=REASON,
        )


def agreements_to_defaults(apps, schema_editor):
    """Back: each partner's default is the percentage of its latest general agreement."""
    Partner = apps.get_model("catalog", "Partner")
    Agreement = apps.get_model("orders", "RevenueShareAgreement")
    for partner in Partner.objects.order_by("pk"):
        latest = Agreement.objects.filter(partner_id=partner.pk, order_type__isnull=True).order_by("-valid_from").first()
        if latest is not None:
            partner.default_revenue_share_percent = latest.percentage
            partner.save(update_fields=["default_revenue_share_percent"])


class Migration(migrations.Migration):
    """A partner's single default revenue share becomes its general revenue-share agreement; catalog's
    0006_remove_partner_default_revenue_share then removes the field."""

    dependencies = [
        ("catalog", "0004_customer_sharing"),
        ("orders", "0003_revenue_share_agreements"),
    ]

    operations = [migrations.RunPython(defaults_to_agreements, agreements_to_defaults)]
