"""Query filters of the ledger API. Customers are plain ids: a choice filter would answer 400 for an id that does
not exist and so reveal which do; a filter on someone else's customer finds nothing."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from billing_project.api_filters import ApiFilterSet, IdFilter, IsoDateFilter
from billing_project.billing_time import FIRST_DAY, LAST_DAY, DayRange, billing_day_range
from ledger.models import Account, Invoice, Payment, Transaction


@extend_schema_field({"type": "string", "pattern": r"^[0-9]{4}-[0-9]{1,2}(-[0-9]{1,2})?$"})
class PeriodFilter(django_filters.DateFilter):
    """A billing month written YYYY-MM (a full date is read as its month)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m", "%Y-%m-%d"])
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, value.replace(day=1) if value else value)


class BillingDayFilter(IsoDateFilter):
    """A day (YYYY-MM-DD) in BILLING_TIME_ZONE bounding a datetime: from its start, or (`last`) to its end.
    The filter set's form (DayRangeForm) has checked the day."""

    def __init__(self, *args, last: bool = False, **kwargs):
        self.last = last
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        if self.last:
            return qs.filter(**{f"{self.field_name}__lt": DayRange(None, value).end})
        return qs.filter(**{f"{self.field_name}__gte": DayRange(value, None).start})


class DayRangeForm(forms.Form):
    """The form of a filter set with `day_range` filters: `from` and `to` are checked as one range."""

    def clean(self):
        cleaned = super().clean()
        billing_day_range(cleaned.get("from"), cleaned.get("to"))
        return cleaned


def day_range(field_name: str, what: str) -> dict[str, BillingDayFilter]:
    """`from` and `to` filters on a datetime field; the filter set names DayRangeForm as its form."""
    # `from` is a Python keyword, so the pair cannot be declared as attributes (as in usage's query serializer).
    days = f"from {FIRST_DAY} to {LAST_DAY}, the last not before the first"
    return {
        "from": BillingDayFilter(
            field_name=field_name, label=f"First day (YYYY-MM-DD, BILLING_TIME_ZONE) {what}; {days}"
        ),
        "to": BillingDayFilter(
            field_name=field_name,
            last=True,
            label=f"Last day (YYYY-MM-DD, inclusive, BILLING_TIME_ZONE) {what}; {days}",
        ),
    }


class InvoiceFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")
    period = PeriodFilter(label="Billing month, YYYY-MM")

    class Meta:
        model = Invoice
        fields = ["customer", "client_id", "status", "kind", "period", "number"]


class PaymentFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")

    class Meta:
        model = Payment
        form = DayRangeForm
        fields = ["customer", "client_id", "method", "bank_reference"]

    @classmethod
    def get_filters(cls):
        return {**super().get_filters(), **day_range("received_at", "the payment was received")}


class TransactionFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")

    class Meta:
        model = Transaction
        form = DayRangeForm
        fields = ["customer", "client_id", "kind", "reference"]

    @classmethod
    def get_filters(cls):
        return {**super().get_filters(), **day_range("created_at", "the transaction was posted")}


class BalanceFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")

    class Meta:
        model = Account
        fields = ["customer", "client_id", "currency"]
