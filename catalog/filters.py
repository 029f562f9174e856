import django_filters
from django.db.models import Q

from billing_project.api_filters import ApiFilterSet, IdFilter, IsoDateFilter
from catalog.models import Customer, PriceAgreement, Service


class CustomerFilter(ApiFilterSet):
    # Plain ids, not choice filters: those would answer 400 for an id that does not exist and so reveal which do.
    csm = IdFilter(field_name="csm_id", label="User id of the customer's CSM")
    sales_owner = IdFilter(field_name="sales_owner_id", label="User id of the customer's sales owner")
    search = django_filters.CharFilter(method="filter_search", label="Name or client id contains")

    class Meta:
        model = Customer
        fields = ["status", "currency", "csm", "sales_owner", "client_id"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(client_id__icontains=value))


class ServiceFilter(ApiFilterSet):
    class Meta:
        model = Service
        fields = ["category", "active", "code"]


class PriceAgreementFilter(ApiFilterSet):
    customer = IdFilter(field_name="customer_id", label="Customer id")
    service = django_filters.CharFilter(field_name="service__code", label="Service code")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")
    in_force_on = IsoDateFilter(method="filter_in_force_on", label="In force on (YYYY-MM-DD)")
    valid_from_after = IsoDateFilter(field_name="valid_from", lookup_expr="gte")
    valid_from_before = IsoDateFilter(field_name="valid_from", lookup_expr="lte")

    class Meta:
        model = PriceAgreement
        fields = ["customer", "service", "client_id", "in_force_on"]

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force_on(value)
