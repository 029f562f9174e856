from django.contrib.admin.apps import AdminConfig
from unfold.sites import UnfoldAdminSite


class CountinghouseAdminSite(UnfoldAdminSite):
    site_title = "Countinghouse"
    site_header = "Countinghouse"
    index_title = "Dashboard"

    def has_permission(self, request) -> bool:
        # Customer portal users never open the back-office, whatever flags their account has.
        user = request.user
        return super().has_permission(request) and not hasattr(user, "portal_membership")


class CountinghouseAdminConfig(AdminConfig):
    default_site = "billing_project.admin_site.CountinghouseAdminSite"
