import django_filters
from django.db.models import Q

from catalog.models import Customer, PriceAgreement


class CustomerFilter(django_filters.FilterSet):
    # Plain ids, not choice filters: those would answer 400 for an id that does not exist and so reveal which do.
    csm = django_filters.NumberFilter(field_name="csm_id")
    sales_owner = django_filters.NumberFilter(field_name="sales_owner_id")
    search = django_filters.CharFilter(method="filter_search", label="Name or client id contains")

    class Meta:
        model = Customer
        fields = ["status", "currency", "csm", "sales_owner", "client_id"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(client_id__icontains=value))


class PriceAgreementFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id", label="Customer id")
    service = django_filters.CharFilter(field_name="service__code", label="Service code")
    client_id = django_filters.CharFilter(field_name="customer__client_id", label="Customer client id")
    in_force_on = django_filters.DateFilter(method="filter_in_force_on", label="In force on (YYYY-MM-DD)")
    valid_from_after = django_filters.DateFilter(field_name="valid_from", lookup_expr="gte")
    valid_from_before = django_filters.DateFilter(field_name="valid_from", lookup_expr="lte")

    class Meta:
        model = PriceAgreement
        fields = ["customer", "service", "client_id", "in_force_on"]

    def filter_in_force_on(self, queryset, name, value):
        return queryset.in_force_on(value)
