from django.urls import path

from usage import api

urlpatterns = [
    path("usage/events", api.UsageEventsView.as_view(), name="usage-events"),
    path("usage", api.UsageListView.as_view(), name="usage-list"),
]
