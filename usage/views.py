"""The admin's usage upload page, its result page and the error report download; thin: they call usage.services."""

import csv
from datetime import date
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.generic import DetailView, FormView, TemplateView, View
from unfold.views import UnfoldModelAdminViewMixin

from billing_project.billing_time import billing_today
from billing_project.spreadsheets import spreadsheet_safe
from billing_project.text import printable
from catalog.selectors import customer_list_for
from usage.forms import MonthlyReportForm, UsageUploadForm
from usage.models import MonthlySummary, Upload
from usage.report_exports import month_label, usage_report_download
from usage.report_selectors import (
    last_month,
    usage_month_report,
    usage_report_customers,
    usage_report_month_totals,
)
from usage.selectors import upload_list_for, visible_customer_ids
from usage.services import DuplicateFile, usage_import_file

ERRORS_SHOWN = 50
CUSTOMERS_PER_PAGE = 40  # a page of the monthly usage report; its totals and exports cover every customer
ERROR_REPORT_COLUMNS = ["row", "column", "value", "reason"]


class UsageUploadView(UnfoldModelAdminViewMixin, FormView):
    title = "Upload usage"
    permission_required = "usage.add_upload"
    raise_exception = True
    template_name = "usage/upload.html"
    form_class = UsageUploadForm

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"opts": Upload._meta, "max_bytes": settings.USAGE_UPLOAD_MAX_BYTES}

    def form_valid(self, form):
        file = form.cleaned_data["file"]
        try:
            upload = usage_import_file(
                actor=self.request.user,
                stream=file,
                name=file.name,
                source=Upload.Source.UPLOAD,
                force=form.cleaned_data["force"],
            )
        except DuplicateFile as error:
            return self.render_to_response(self.get_context_data(form=form, duplicate=error.message), status=409)
        return redirect(reverse("admin:usage_upload_result", args=[upload.pk]))


class UploadResultView(UnfoldModelAdminViewMixin, DetailView):
    title = "Upload result"
    permission_required = "usage.view_upload"
    raise_exception = True
    template_name = "usage/upload_result.html"
    context_object_name = "upload"

    def get_queryset(self):
        return upload_list_for(self.request.user).select_related("created_by")

    def get_context_data(self, **kwargs):
        upload = self.object
        return super().get_context_data(**kwargs) | {
            "opts": Upload._meta,
            "errors_shown": upload.errors[:ERRORS_SHOWN],
            "more_errors": upload.error_count > ERRORS_SHOWN,
            "can_upload": self.request.user.has_perm("usage.add_upload"),
        }


class ErrorReportView(UnfoldModelAdminViewMixin, View):
    """The kept rows in error of an upload as CSV: row, column, value, reason."""

    title = "Error report"
    permission_required = "usage.view_upload"
    raise_exception = True

    def get(self, request, pk):
        upload = upload_list_for(request.user).filter(pk=pk).only("pk", "original_name", "errors").first()
        if upload is None:
            raise Http404
        # Names and errors are stored escaped; printable again for uploads kept before they were.
        stem = printable(upload.original_name.rsplit(".", 1)[0]) or "upload"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, f"{stem}-errors-{upload.pk}.csv")
        writer = csv.writer(response)
        writer.writerow(ERROR_REPORT_COLUMNS)
        for error in upload.errors:
            writer.writerow(
                [spreadsheet_safe(printable(str(error.get(column, "")))) for column in ERROR_REPORT_COLUMNS]
            )
        return response


class MonthlyReportView(UnfoldModelAdminViewMixin, TemplateView):
    """Usage per customer and service for one billing month (last month unless asked), rated under DESIGN.md's
    rule, with totals per currency; CSV, XLSX or PDF export."""

    title = "Monthly usage report"
    permission_required = "usage.view_monthlysummary"
    raise_exception = True
    template_name = "usage/month_report.html"

    def get(self, request, *args, **kwargs):
        period = last_month(billing_today())
        data = request.GET if "year" in request.GET else {"year": period.year, "month": period.month}
        form = MonthlyReportForm(data, customers=customer_list_for(request.user))
        rows, period, page, totals = [], None, None, []
        if form.is_valid():
            period = date(form.cleaned_data["year"], form.cleaned_data["month"], 1)
            customer = form.cleaned_data["customer"]  # one of those the user may see (the field's queryset)
            customer_ids = [customer.pk] if customer else visible_customer_ids(request.user)
            month = {"year": period.year, "month": period.month}
            export = request.GET.get("export")
            if export in {"csv", "xlsx", "pdf"}:
                rows = usage_month_report(**month, customer_ids=customer_ids)
                filters = [("Month", month_label(period)), ("Customer", str(customer) if customer else "All customers")]
                return usage_report_download(rows, export, period=period, filters=filters, stem="usage-report")
            # A page of customers is rated; the totals cover them all (kept while nothing they rate changes).
            page = Paginator(usage_report_customers(**month, customer_ids=customer_ids), CUSTOMERS_PER_PAGE).get_page(
                request.GET.get("page")
            )
            rows = usage_month_report(**month, customer_ids=list(page))
            totals = usage_report_month_totals(**month, customer_ids=customer_ids)
        context = self.get_context_data(
            form=form,
            rows=rows,
            page=page,
            totals=totals,
            period=period,
            month=month_label(period) if period else "",
            query=urlencode({name: form.data.get(name) or "" for name in ("year", "month", "customer")}),
            opts=MonthlySummary._meta,
        )
        return self.render_to_response(context)
