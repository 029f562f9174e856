from django.urls import path

from reports import api

urlpatterns = [
    path("reports/partner-revenue", api.PartnerRevenueView.as_view(), name="reports-partner-revenue"),
    *(path(f"reports/{view.name}", view.as_view(), name=f"reports-{view.name}") for view in api.FINANCE_REPORT_VIEWS),
]
