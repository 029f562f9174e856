"""Monthly summaries per agreement and snapshot price, with the service times they cover.

The existing summaries are dropped and rebuilt from the usage records in the new shape.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, DecimalField, F, Max, Min, Sum


def drop_summaries(apps, schema_editor):
    apps.get_model("usage", "MonthlySummary").objects.all().delete()


def rebuild_summaries(apps, schema_editor):
    summary_model = apps.get_model("usage", "MonthlySummary")
    totals = (
        apps.get_model("usage", "UsageRecord")
        .objects.values("customer_id", "service_id", "period", "price_agreement_id", "unit_price")
        .annotate(
            total_quantity=Sum("quantity"),
            record_count=Count("pk"),
            amount=Sum(F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=30, decimal_places=12)),
            first_service_time=Min("service_time"),
            last_service_time=Max("service_time"),
        )
        .order_by()
    )
    summary_model.objects.bulk_create(
        (
            summary_model(
                customer_id=total["customer_id"],
                service_id=total["service_id"],
                period=total["period"],
                price_agreement_id=total["price_agreement_id"],
                unit_price=total["unit_price"],
                quantity=total["total_quantity"],
                record_count=total["record_count"],
                amount=total["amount"],
                first_service_time=total["first_service_time"],
                last_service_time=total["last_service_time"],
            )
            for total in totals.iterator()
        ),
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0002_agreement_no_overlap"),
        ("usage", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(drop_summaries, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="monthlysummary", name="summary_unique_per_month"),
        migrations.AddField(
            model_name="monthlysummary",
            name="price_agreement",
            field=models.ForeignKey(
                default=None,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="catalog.priceagreement",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="monthlysummary",
            name="unit_price",
            field=models.DecimalField(decimal_places=6, default=0, max_digits=18),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="monthlysummary",
            name="first_service_time",
            field=models.DateTimeField(default=None),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="monthlysummary",
            name="last_service_time",
            field=models.DateTimeField(default=None),
            preserve_default=False,
        ),
        migrations.AlterModelOptions(
            name="monthlysummary",
            options={
                "ordering": ["-period", "customer", "service", "first_service_time"],
                "verbose_name_plural": "monthly summaries",
            },
        ),
        migrations.AddConstraint(
            model_name="monthlysummary",
            constraint=models.UniqueConstraint(
                fields=("customer", "period", "service", "price_agreement", "unit_price"),
                name="summary_unique_per_month_and_price",
            ),
        ),
        migrations.RunPython(rebuild_summaries, migrations.RunPython.noop),
    ]
