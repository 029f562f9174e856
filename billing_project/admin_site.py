from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.urls import path
from django.utils.functional import SimpleLazyObject
from unfold.sites import UnfoldAdminSite


class CountinghouseAdminSite(UnfoldAdminSite):
    site_title = "Countinghouse"
    site_header = "Countinghouse"
    index_title = "Dashboard"

    def has_permission(self, request) -> bool:
        # Customer portal users never open the back-office, whatever flags their account has.
        user = request.user
        return super().has_permission(request) and not hasattr(user, "portal_membership")

    def get_app_list(self, request, app_label=None):
        # Built only when read: every admin page's context asks for every app (`available_apps`) and the index
        # for them again, to check each model's permissions and reverse its URLs, and neither the dashboard nor
        # the sidebar (its own navigation, settings.UNFOLD) shows them.
        return SimpleLazyObject(lambda: super(CountinghouseAdminSite, self).get_app_list(request, app_label))

    def autocomplete_view(self, request):
        # No stored text holds a NUL, and PostgreSQL refuses one in a query: such a search finds nothing.
        if "\x00" in request.GET.get("term", ""):
            return JsonResponse({"results": [], "pagination": {"more": False}})
        return super().autocomplete_view(request)

    def extra_urls(self) -> list:
        """Site-wide pages that belong to no one model (unfold adds them before the models' URLs)."""
        from reports.audit_views import AuditLogView  # this module loads before the apps' models
        from reports.finance_views import REPORT_VIEWS
        from reports.revenue_views import PartnerRevenueView

        audit_log = self.admin_view(AuditLogView.as_view(admin_site=self))
        partner_revenue = self.admin_view(PartnerRevenueView.as_view(admin_site=self))
        return [
            path("audit-log/", audit_log, name="audit_log"),
            path("partner-revenue/", partner_revenue, name="partner_revenue"),
            *(
                path(f"reports/{view.name}/", self.admin_view(view.as_view(admin_site=self)), name=view.url_name())
                for view in REPORT_VIEWS
            ),
        ]


class ReadOnlyHistoryMixin:
    """For a SimpleHistoryAdmin: history pages show only objects the changelist shows, and never write.

    django-simple-history looks objects up without the admin's queryset, so a CSM could read another
    customer's history, and its version page saves a POST for anyone who may view the object; a revert
    would also skip the services. Put this mixin before SimpleHistoryAdmin.
    """

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_view(self, request, object_id, extra_context=None):
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().history_form_view(request, object_id, version_id, extra_context)


class CountinghouseAdminConfig(AdminConfig):
    default_site = "billing_project.admin_site.CountinghouseAdminSite"
