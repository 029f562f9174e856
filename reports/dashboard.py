"""Figures for the back-office landing page."""

from django.utils import timezone

from catalog.models import Customer, PriceAgreement, Service
from catalog.selectors import customer_list_for


def dashboard_callback(request, context: dict) -> dict:
    today = timezone.localdate()
    customers = customer_list_for(request.user)
    context["kpis"] = [
        {
            "title": "Active customers",
            "value": customers.filter(status=Customer.Status.ACTIVE).count(),
            "link": "admin:catalog_customer_changelist",
            "query": "?status__exact=active",
        },
        {
            "title": "Active services",
            "value": Service.objects.filter(active=True).count(),
            "link": "admin:catalog_service_changelist",
            "query": "?active__exact=1",
        },
        {
            "title": "Agreements in force today",
            "value": PriceAgreement.objects.in_force_on(today).filter(customer__in=customers).count(),
            "link": "admin:catalog_priceagreement_changelist",
            "query": "",
        },
    ]
    return context
