"""Query filters of the order desk's API. Customers, partners and assignees are plain ids: a choice filter would
answer 400 for an id that does not exist and so reveal which do; a filter on someone else's finds nothing."""

import django_filters
from django.db.models import Q

from billing_project.api_filters import ApiFilterSet, IdFilter, IsoDateFilter, StrictBooleanFilter
from billing_project.billing_time import billing_today
from ledger.filters import DayRangeForm, day_range
from orders.models import Company, DocumentType, Order, OrderType, Registrar, RevenueShareAgreement, Settlement


class OrderFilter(ApiFilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=Order.Status.choices, label="Status; repeat the parameter for several (`?status=a&status=b`)"
    )
    order_type = django_filters.CharFilter(field_name="order_type__code", label="Order type code")
    customer = IdFilter(field_name="customer_id", label="Customer id")
    partner = IdFilter(field_name="partner_id", label="Partner id")
    assignee = IdFilter(field_name="assignee_id", label="User id of the assignee")
    due_after = IsoDateFilter(field_name="due_date", lookup_expr="gte", label="Due on or after (YYYY-MM-DD)")
    due_before = IsoDateFilter(field_name="due_date", lookup_expr="lte", label="Due on or before (YYYY-MM-DD)")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Open and past its due date (true), or not (false)")
    search = django_filters.CharFilter(
        method="filter_search", label="Number, customer name or client id, or company name or number contains"
    )

    class Meta:
        model = Order
        fields = ["status", "order_type", "customer", "partner", "assignee"]

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status__in=Order.OPEN_STATUSES, due_date__lt=billing_today())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_search(self, queryset, name, value):
        return queryset.filter(
            Q(number__icontains=value)
            | Q(customer__name__icontains=value)
            | Q(customer__client_id__icontains=value)
            | Q(company__name__icontains=value)
            | Q(company__registration_number__icontains=value)
        )


class CompanyFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    registrar = IdFilter(field_name="registrar_id", label="Registrar id")
    search = django_filters.CharFilter(method="filter_search", label="Name or registration number contains")

    class Meta:
        model = Company
        fields = ["customer", "registrar", "status", "jurisdiction"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(registration_number__icontains=value))


class OrderTypeFilter(ApiFilterSet):
    class Meta:
        model = OrderType
        fields = ["code", "active"]


class DocumentTypeFilter(ApiFilterSet):
    class Meta:
        model = DocumentType
        fields = ["code", "active"]


class RegistrarFilter(ApiFilterSet):
    class Meta:
        model = Registrar
        fields = ["jurisdiction"]


class RevenueShareAgreementFilter(ApiFilterSet):
    partner = IdFilter(field_name="partner_id", label="Partner id")
    order_type = django_filters.CharFilter(field_name="order_type__code", label="Order type code")
    general = StrictBooleanFilter(
        field_name="order_type", lookup_expr="isnull", label="The partners' general agreements (true), or not (false)"
    )
    in_force_on = IsoDateFilter(method="filter_in_force_on", label="In force on that day (YYYY-MM-DD)")

    class Meta:
        model = RevenueShareAgreement
        fields = ["partner", "order_type", "general"]

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force_on(value)


class SettlementFilter(ApiFilterSet):
    partner = IdFilter(field_name="partner_id", label="Partner id")
    order = IdFilter(field_name="order_id", label="Order id")
    status = django_filters.MultipleChoiceFilter(
        choices=Settlement.Status.choices, label="Status; repeat the parameter for several (`?status=a&status=b`)"
    )
    currency = django_filters.CharFilter(field_name="currency", label="ISO 4217 currency, e.g. EUR")

    class Meta:
        model = Settlement
        form = DayRangeForm
        fields = ["partner", "order", "status", "currency"]

    @classmethod
    def get_filters(cls):
        return {**super().get_filters(), **day_range("calculated_at", "the settlement was calculated")}
