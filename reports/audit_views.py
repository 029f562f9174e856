"""The admin's audit log page (/admin/audit-log/) and its CSV and XLSX exports; the reads are reports.audit's.

Open to whoever holds `reports.view_audit_log`: Admin (every permission) and Finance (accounts/roles.py).
The admin site adds the URL (billing_project.admin_site), so only staff who pass the site's check get here.
"""

from datetime import timedelta

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView
from simple_history.admin import SimpleHistoryAdmin
from unfold.widgets import UnfoldAdminDateWidget, UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget

from accounts.models import User
from billing_project.billing_time import billing_day_range, billing_today, billing_zone
from billing_project.spreadsheets import csv_download, spreadsheet_safe, xlsx_download
from reports.audit import SYSTEM, AuditEntry, AuditLog, AuditQuery, audited_model_choices

PERMISSION = "reports.view_audit_log"
PAGE_SIZE = 50
DEFAULT_DAYS = 30
# One sheet holds 1,048,576 rows, and a workbook is written whole before it is sent: past this, narrow the
# filters or take CSV.
XLSX_MAX_ROWS = 100_000
EXPORT_HEADERS = ["when", "user", "model", "object_id", "object", "change", "fields"]


class AuditLogForm(forms.Form):
    date_from = forms.DateField(label="From", widget=UnfoldAdminDateWidget)
    date_to = forms.DateField(label="To", widget=UnfoldAdminDateWidget, help_text="Inclusive.")
    user = forms.ChoiceField(label="User", required=False, widget=UnfoldAdminSelectWidget)
    model = forms.ChoiceField(label="Model", required=False, widget=UnfoldAdminSelectWidget)
    object_id = forms.IntegerField(label="Object id", required=False, min_value=1, widget=UnfoldAdminIntegerFieldWidget)

    def __init__(self, data=None, **kwargs):
        if data is not None:
            # The page opens on the last DEFAULT_DAYS days; a link may name only some of the filters.
            data = data.copy()
            today = billing_today()
            data.setdefault("date_to", today.isoformat())
            data.setdefault("date_from", (today - timedelta(days=DEFAULT_DAYS)).isoformat())
        super().__init__(data, **kwargs)
        staff = User.objects.filter(portal_membership__isnull=True).order_by("email").only("email", "full_name")
        self.fields["user"].choices = [
            ("", "Anyone"),
            (SYSTEM, "System (commands and scheduled jobs)"),
            *((str(user.pk), str(user)) for user in staff),
        ]
        self.fields["model"].choices = [("", "Every model"), *audited_model_choices()]

    def clean(self):
        cleaned = super().clean()
        cleaned["days"] = billing_day_range(
            cleaned.get("date_from"), cleaned.get("date_to"), first_field="date_from", last_field="date_to"
        )
        return cleaned

    def query(self) -> AuditQuery:
        """The period's days are whole days in the billing time zone."""
        data = self.cleaned_data
        user = data["user"] or None
        return AuditQuery(
            start=data["days"].start,
            end=data["days"].end,
            user=user if user in (None, SYSTEM) else int(user),
            model=data["model"] or None,
            object_id=data["object_id"],
        )


class AuditLogView(PermissionRequiredMixin, TemplateView):
    title = "Audit log"
    template_name = "reports/audit_log.html"
    admin_site: admin.AdminSite = None
    permission_required = PERMISSION
    raise_exception = True  # a signed-in user without it gets 403, not the login page

    def get(self, request, *args, **kwargs):
        form = AuditLogForm(request.GET)
        context = {"form": form}
        if form.is_valid():
            log = AuditLog(form.query())
            export = request.GET.get("export")
            if export == "csv":
                return audit_csv(log, form)
            if export == "xlsx":
                if log.count() <= XLSX_MAX_ROWS:
                    return audit_xlsx(log, form)
                context["export_error"] = (
                    f"{log.count():,} changes are more than one XLSX export holds ({XLSX_MAX_ROWS:,}): "
                    "narrow the filters or export CSV."
                )
            page = Paginator(log, PAGE_SIZE).get_page(request.GET.get("page"))
            rows = [(entry, history_url(self.admin_site, entry)) for entry in page.object_list]
            context |= {"page": page, "rows": rows}
        return self.render_to_response(self.get_context_data(**context))

    def get_context_data(self, **kwargs):
        self.request.current_app = self.admin_site.name
        return (
            super().get_context_data(**kwargs)
            | self.admin_site.each_context(self.request)
            | {"title": self.title, "billing_time_zone": billing_zone()}
        )


def history_url(admin_site: admin.AdminSite, entry: AuditEntry) -> str | None:
    """The object's history page in the admin (simple-history's, with its diffs), where its admin has one."""
    model = apps.get_model(entry.model_label)
    if entry.change_type == "-" or not admin_site.is_registered(model):
        return None
    if not isinstance(admin_site.get_model_admin(model), SimpleHistoryAdmin):
        return None
    opts = model._meta
    return reverse(f"{admin_site.name}:{opts.app_label}_{opts.model_name}_history", args=[entry.object_id])


def changes_text(entry: AuditEntry) -> str:
    if entry.change_type == "+":
        return "; ".join(f"{change.label}: {change.new}" for change in entry.changes)
    return "; ".join(f"{change.label}: {change.old or '—'} → {change.new or '—'}" for change in entry.changes)


def export_row(entry: AuditEntry, when) -> list:
    return [
        when,
        spreadsheet_safe(entry.user_email),
        entry.model_label,
        entry.object_id,
        spreadsheet_safe(entry.object_repr),
        entry.change_label,
        spreadsheet_safe(changes_text(entry)),
    ]


def export_name(form: AuditLogForm, extension: str) -> str:
    data = form.cleaned_data
    return f"audit-log-{data['date_from']:%Y-%m-%d}-to-{data['date_to']:%Y-%m-%d}.{extension}"


def audit_csv(log: AuditLog, form: AuditLogForm) -> StreamingHttpResponse:
    """Every change of the query, streamed: the file is written while the entries are read, a chunk at a time."""
    zone = billing_zone()
    rows = (export_row(entry, timezone.localtime(entry.when, zone).isoformat()) for entry in log)
    return csv_download(EXPORT_HEADERS, rows, export_name(form, "csv"))


def audit_xlsx(log: AuditLog, form: AuditLogForm) -> FileResponse:
    """Every change of the query in one sheet; times are in the billing time zone (a sheet keeps no zone)."""
    zone = billing_zone()
    rows = (export_row(entry, timezone.localtime(entry.when, zone).replace(tzinfo=None)) for entry in log)
    return xlsx_download(EXPORT_HEADERS, rows, export_name(form, "xlsx"), sheet="Audit log")
