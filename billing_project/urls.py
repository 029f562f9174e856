from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.generic import RedirectView


def health(request):
    return JsonResponse({"status": "ok"})


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#312e81"/>'
    '<path d="M6 13h20L16 6zM8 15h3v8H8zm6.5 0h3v8h-3zM21 15h3v8h-3zM6 25h20v2H6z" fill="#fff"/></svg>'
)


@cache_control(max_age=24 * 60 * 60, public=True)
def favicon(request):
    """Browsers ask every site for /favicon.ico; without one each first visit logs a 404."""
    return HttpResponse(FAVICON, content_type="image/svg+xml")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("portal/", include("reports.portal_urls")),
    path("api/", include("billing_project.api_urls")),
    path("health", health, name="health"),
    path("favicon.ico", favicon, name="favicon"),
]

handler404 = "billing_project.api_errors.not_found"
