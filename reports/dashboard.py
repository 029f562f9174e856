"""Figures for the back-office landing page."""

from billing_project.billing_time import billing_today
from catalog.models import Customer, PriceAgreement, Service
from catalog.selectors import customer_list_for


def dashboard_callback(request, context: dict) -> dict:
    """KPIs scoped like the changelists they link to; a KPI shows only to who may open its list."""
    user = request.user
    today = billing_today()
    customers = customer_list_for(user)
    figures = [
        (
            "catalog.view_customer",
            "Active customers",
            lambda: customers.filter(status=Customer.Status.ACTIVE).count(),
            "admin:catalog_customer_changelist",
            "?status__exact=active",
        ),
        (
            "catalog.view_service",
            "Active services",
            lambda: Service.objects.filter(active=True).count(),
            "admin:catalog_service_changelist",
            "?active__exact=1",
        ),
        (
            "catalog.view_priceagreement",
            "Agreements in force today",
            lambda: PriceAgreement.objects.in_force_on(today).filter(customer__in=customers).count(),
            "admin:catalog_priceagreement_changelist",
            "",
        ),
    ]
    context["kpis"] = [
        {"title": title, "value": value(), "link": link, "query": query}
        for permission, title, value, link, query in figures
        if user.has_perm(permission)
    ]
    return context
