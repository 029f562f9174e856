from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("portal/", include("reports.portal_urls")),
    path("api/", include("billing_project.api_urls")),
    path("health", health, name="health"),
]

handler404 = "billing_project.api_errors.not_found"
