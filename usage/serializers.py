from decimal import ROUND_HALF_UP

from rest_framework import serializers

from billing_project import money
from billing_project.billing_time import billing_day_range
from usage.models import Upload, UsageRecord

MAX_EVENTS = 10_000


class UsageEventBatchSerializer(serializers.Serializer):
    """The body of POST /api/usage/events; each event is checked by the import pipeline, not here."""

    events = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        max_length=MAX_EVENTS,
        error_messages={"max_length": f"A batch holds at most {MAX_EVENTS:,} events; split it into smaller batches."},
        help_text=(
            f"Up to {MAX_EVENTS:,} events, each {{serviceName, clientId, quantity, serviceTime, eventId?}} as in the "
            "CSV header; serviceTime is ISO 8601, read in BILLING_TIME_ZONE when it has no offset."
        ),
    )


class UsageEventBatchResultSerializer(serializers.ModelSerializer):
    upload = serializers.IntegerField(source="pk")
    imported = serializers.IntegerField(source="imported_count")

    class Meta:
        model = Upload
        fields = ["upload", "status", "row_count", "imported"]


class UsageQuerySerializer(serializers.Serializer):
    """Query parameters of GET /api/usage. `from` and `to` are days of service time in BILLING_TIME_ZONE."""

    customer = serializers.IntegerField(required=False, min_value=1, help_text="Customer id.")
    service = serializers.CharField(required=False, help_text="Service code.")
    to = serializers.DateField(required=False, help_text="Last day of service time, inclusive.")
    group_by = serializers.ChoiceField(choices=["day", "month"], required=False)

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as an attribute.
        fields["from"] = serializers.DateField(required=False, help_text="First day of service time, inclusive.")
        return fields

    def validate(self, attrs):
        attrs["days"] = billing_day_range(attrs.get("from"), attrs.get("to"))
        return attrs


class UsageRecordSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")
    client_id = serializers.CharField(source="customer.client_id")
    service = serializers.CharField(source="service.code")
    upload = serializers.IntegerField(source="upload_id")

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "customer",
            "client_id",
            "service",
            "quantity",
            "unit_price",
            "currency",
            "service_time",
            "period",
            "event_id",
            "upload",
        ]
        read_only_fields = fields


class UsageGroupSerializer(serializers.Serializer):
    """One customer, service and day (group_by=day) or billing month (group_by=month)."""

    customer = serializers.IntegerField(source="customer_id")
    service = serializers.CharField(source="service__code")
    day = serializers.DateField(required=False, help_text="With group_by=day: the day in BILLING_TIME_ZONE.")
    period = serializers.DateField(required=False, help_text="With group_by=month: the billing month's first day.")
    currency = serializers.CharField()
    quantity = serializers.DecimalField(
        source="total_quantity", max_digits=money.QUANTITY_MAX_DIGITS + 6, decimal_places=money.QUANTITY_DECIMAL_PLACES
    )
    record_count = serializers.IntegerField()
    amount = serializers.DecimalField(
        source="total_amount",
        max_digits=30,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        rounding=ROUND_HALF_UP,
        help_text="Quantity at the records' snapshot prices, before allowance and fees.",
    )
