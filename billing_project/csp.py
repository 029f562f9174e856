"""The Content-Security-Policy header (django-csp): settings.CONTENT_SECURITY_POLICY on every page, the admin's own
policy (settings.CONTENT_SECURITY_POLICY_ADMIN_DIRECTIVES) on the admin's pages."""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.urls import reverse


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.config is None and request.path_info.startswith(reverse("admin:index")):
            parts.config = settings.CONTENT_SECURITY_POLICY_ADMIN_DIRECTIVES
        return parts
