from decimal import ROUND_HALF_UP

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_project import money
from billing_project.api_fields import CharField, ModelSerializer, URLField
from billing_project.api_filters import MAX_ID
from billing_project.api_schema import ErrorDetailSerializer
from billing_project.billing_time import FIRST_DAY, LAST_DAY, billing_day_range
from usage.models import Upload, UsageRecord
from usage.parsing import MAX_EVENT_ID_LENGTH

MAX_EVENTS = 10_000


@extend_schema_field({"anyOf": [{"type": "string"}, {"type": "number"}]})
class TextOrNumberField(CharField):
    pass


class UsageEventSerializer(serializers.Serializer):
    """The shape of one event, for the schema; the import pipeline reads and checks each value (as text).
    The names are the CSV header's."""

    serviceName = CharField(help_text="Service code.")
    clientId = CharField(help_text="The customer's client id.")
    quantity = TextOrNumberField(help_text="A number, as a JSON number or a string.")
    serviceTime = CharField(help_text="ISO 8601; read in BILLING_TIME_ZONE when it has no offset.")
    eventId = CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=MAX_EVENT_ID_LENGTH,
        help_text="Optional; an event id already imported is refused.",
    )


@extend_schema_field(UsageEventSerializer)
class UsageEventField(serializers.DictField):
    """An event as the client sent it: every key and value goes to the import pipeline, which reports each problem
    by row and column."""


class UsageEventBatchSerializer(serializers.Serializer):
    """The body of POST /api/usage/events; each event is checked by the import pipeline, not here."""

    events = serializers.ListField(
        child=UsageEventField(),
        allow_empty=False,
        max_length=MAX_EVENTS,
        error_messages={"max_length": f"A batch holds at most {MAX_EVENTS:,} events; split it into smaller batches."},
        help_text=(
            f"Up to {MAX_EVENTS:,} events, each {{serviceName, clientId, quantity, serviceTime, eventId?}} as in the "
            "CSV header; serviceTime is ISO 8601, read in BILLING_TIME_ZONE when it has no offset."
        ),
    )


class UsageRejectedRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The event's position in the batch, from 1.")
    column = CharField()
    value = CharField(allow_blank=True)
    reason = CharField()


class UsageRejectedDetailSerializer(ErrorDetailSerializer):
    upload = serializers.IntegerField(required=False, help_text="The failed upload, kept in the upload history.")
    row_count = serializers.IntegerField(required=False)
    error_count = serializers.IntegerField(required=False)
    rows = UsageRejectedRowSerializer(many=True, required=False, help_text="The first 1,000 errors.")


class UsageRejectedSerializer(serializers.Serializer):
    """A refused batch: the error format, with every bad event when the events themselves were read
    (`usage_rejected`); without them when the body was not a batch at all (`invalid`)."""

    error = UsageRejectedDetailSerializer()


class UsageEventBatchResultSerializer(ModelSerializer):
    upload = serializers.IntegerField(source="pk")
    imported = serializers.IntegerField(source="imported_count")

    class Meta:
        model = Upload
        fields = ["upload", "status", "row_count", "imported"]


DAYS = f"a day from {FIRST_DAY} to {LAST_DAY} (YYYY-MM-DD, BILLING_TIME_ZONE)"


class UsageQuerySerializer(serializers.Serializer):
    """Query parameters of GET /api/usage. `from` and `to` are days of service time in BILLING_TIME_ZONE."""

    customer = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Customer id; one the caller may not see answers 404."
    )
    service = CharField(required=False, help_text="Service code.")
    to = serializers.DateField(
        required=False, help_text=f"Last day of service time, inclusive; {DAYS}, not before `from`."
    )
    group_by = serializers.ChoiceField(choices=["day", "month"], required=False)

    def get_fields(self):
        fields = super().get_fields()
        # `from` is a Python keyword, so it cannot be declared as an attribute.
        fields["from"] = serializers.DateField(
            required=False, help_text=f"First day of service time, inclusive; {DAYS}."
        )
        return fields

    def validate(self, attrs):
        attrs["days"] = billing_day_range(attrs.get("from"), attrs.get("to"))
        # Records page by a cursor, totals by number. The other kind's parameter would be ignored, and a client
        # looping on it would read the first page forever.
        if attrs.get("group_by") and self.initial_data.get("cursor"):
            raise serializers.ValidationError({"cursor": ["Totals (group_by) are paged by number: use page."]})
        if not attrs.get("group_by") and self.initial_data.get("page"):
            raise serializers.ValidationError(
                {"page": ["Records are paged by cursor: follow next; page is for group_by."]}
            )
        return attrs


class UsageRecordSerializer(ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")
    client_id = CharField(source="customer.client_id")
    service = CharField(source="service.code")
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
    service = CharField(source="service__code")
    day = serializers.DateField(required=False, help_text="With group_by=day: the day in BILLING_TIME_ZONE.")
    period = serializers.DateField(required=False, help_text="With group_by=month: the billing month's first day.")
    currency = CharField()
    quantity = serializers.DecimalField(
        source="total_quantity",
        max_digits=money.SUMMARY_QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
    )
    record_count = serializers.IntegerField()
    amount = serializers.DecimalField(
        source="total_amount",
        max_digits=money.SUMMARY_AMOUNT_MAX_DIGITS,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        rounding=ROUND_HALF_UP,
        help_text="Quantity at the records' snapshot prices, before allowance and fees.",
    )


class UsageRecordPageSerializer(serializers.Serializer):
    """Records, newest first, a page at a time by a cursor (no count: the table grows without end)."""

    next = URLField(allow_null=True, read_only=True)
    previous = URLField(allow_null=True, read_only=True)
    results = UsageRecordSerializer(many=True, read_only=True)


class UsageGroupPageSerializer(serializers.Serializer):
    """Totals (group_by), a page at a time by number."""

    count = serializers.IntegerField(read_only=True)
    next = URLField(allow_null=True, read_only=True)
    previous = URLField(allow_null=True, read_only=True)
    results = UsageGroupSerializer(many=True, read_only=True)
