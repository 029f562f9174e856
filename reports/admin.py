"""The user's exports run in the background (reports.services.exports): their list, each one's page (its
progress while it is written, then its file) with a small status read for the page to poll, and the download.

Everyone who may open the back-office has the list, of their own exports only; an export's page and file are
its owner's (and a superuser's): anyone else gets 404."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import FileResponse, Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.decorators import display

from billing_project.admin_tools import ReadOnlyAdmin, moment_column
from billing_project.spreadsheets import XLSX
from reports.models import Export

EXPORT_STATUS_COLOURS = {
    Export.Status.QUEUED: "info",
    Export.Status.RUNNING: "warning",
    Export.Status.DONE: "success",
    Export.Status.FAILED: "danger",
}


def progress_text(export: Export) -> str:
    """ "12,000 of 150,000 rows (8 %)", or what there is to say before the rows are counted."""
    if export.total_rows is None:
        return "Counting the rows…" if export.status == Export.Status.RUNNING else "Waiting for a worker…"
    if export.status == Export.Status.DONE:
        return f"{export.rows_written:,} rows"
    return f"{export.rows_written:,} of {export.total_rows:,} rows ({export.percent} %)"


def export_status(export: Export) -> dict:
    """What the export's page shows of its progress, as the page's poll reads it."""
    return {
        "status": export.status,
        "status_label": export.get_status_display(),
        "rows_written": export.rows_written,
        "total_rows": export.total_rows,
        "percent": export.percent,
        "progress": progress_text(export),
        "open": export.is_open,
    }


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    empty_message = (
        "No export yet. A report or list of more than the rows a page can answer at once is exported here, in the "
        "background: ask for its CSV or XLSX on its page."
    )
    list_display = ["export_link", "format", "status_label", "progress", "filters_shown", "created", "finished"]
    list_filter = ["status", "format"]
    list_select_related = ["user"]
    created = moment_column("created_at", "Asked for")
    finished = moment_column("finished_at", "Finished")

    # Every back-office user may export; the rows are each user's own (get_queryset).
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def get_queryset(self, request):
        return Export.objects.filter(user=request.user)

    def get_object(self, request, object_id, from_field=None):
        exports = Export.objects.all() if request.user.is_superuser else self.get_queryset(request)
        try:
            return exports.select_related("user").get(pk=int(object_id))
        except (ValueError, Export.DoesNotExist):
            return None

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/status/", wrap(self.status_view), name="reports_export_status"),
            path("<path:object_id>/download/", wrap(self.download_view), name="reports_export_download"),
            *super().get_urls(),
        ]

    def _owned(self, request, object_id) -> Export:
        export = self.get_object(request, unquote(object_id))
        if export is None:
            raise Http404("No such export.")
        return export

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The export's page: its progress while it is written, then its file or why it failed."""
        export = self._owned(request, object_id)
        context = self.admin_site.each_context(request) | {
            "title": str(export),
            "opts": self.opts,
            "export": export,
            "progress": progress_text(export),
            "keep_until": export.finished_at + timedelta(days=settings.EXPORT_KEEP_DAYS)
            if export.finished_at
            else None,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "reports/export.html", context)

    def status_view(self, request, object_id):
        return JsonResponse(export_status(self._owned(request, object_id)))

    def download_view(self, request, object_id):
        export = self._owned(request, object_id)
        if export.status != Export.Status.DONE or not export.file:
            raise Http404("This export has no file.")
        content_type = "text/csv; charset=utf-8" if export.format == Export.Format.CSV else XLSX
        return FileResponse(
            export.file.open("rb"), as_attachment=True, filename=export.file_name, content_type=content_type
        )

    @display(description="Export", ordering="title")
    def export_link(self, export: Export) -> str:
        return format_html(
            '<a class="text-primary-600 font-semibold" href="{}">{}</a>',
            reverse("admin:reports_export_change", args=[export.pk]),
            export.title,
        )

    @display(description="Status", ordering="status", label=EXPORT_STATUS_COLOURS)
    def status_label(self, export: Export) -> tuple[str, str]:
        return export.status, export.get_status_display()

    @display(description="Progress")
    def progress(self, export: Export) -> str:
        return progress_text(export)

    @display(description="Filters")
    def filters_shown(self, export: Export) -> str:
        return " · ".join(f"{label}: {value}" for label, value in export.filters) or "—"
