from django.urls import path

from reports import api

urlpatterns = [
    path("reports/partner-revenue", api.PartnerRevenueView.as_view(), name="reports-partner-revenue"),
]
