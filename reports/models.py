"""reports reads the other apps; its own rows are the exports run in the background (Export). The other models
only name its permissions."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditLog(models.Model):
    """No table (unmanaged, never queried): holds the permission to open and export the audit log.

    Admin holds it like every permission; Finance gets it from accounts/roles.py. The log itself is read
    from the history tables of the other apps (reports.audit).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_audit_log", "Can view and export the audit log")]
        verbose_name = "audit log"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return "Audit log"


class PartnerRevenueReport(models.Model):
    """No table (unmanaged, never queried): holds the permission to open and export the partner revenue report.

    Admin holds it like every permission; Finance and Sales get it from accounts/roles.py. Not Operations (it shows
    base charges, expenses and partner shares: money beyond the fee) nor Customer Success. The report is read from
    the orders app (reports.revenue).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_partner_revenue", "Can view and export the partner revenue report")]
        verbose_name = "partner revenue report"
        verbose_name_plural = "partner revenue report"

    def __str__(self) -> str:
        return "Partner revenue report"


class FinanceReport(models.Model):
    """No table (unmanaged, never queried): holds one permission per finance report (reports.finance).

    Admin holds them like every permission; accounts/roles.py gives them to Finance (all), Sales (all but the tax
    report) and Customer Success (receivables and the registers, of their own customers only).
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_aged_receivables", "Can view and export the aged receivables report"),
            ("view_invoice_register", "Can view and export the invoice register"),
            ("view_payments_register", "Can view and export the payments register"),
            ("view_revenue_by_service", "Can view and export the revenue by month and service report"),
            ("view_tax_report", "Can view and export the tax report"),
        ]
        verbose_name = "finance report"
        verbose_name_plural = "finance reports"

    def __str__(self) -> str:
        return "Finance reports"


class Export(models.Model):
    """A report or an admin list written to a file by a Celery task, because it has too many rows to answer in a
    request (settings.EXPORT_BACKGROUND_ROWS; reports.services.exports). Only the user who asked (and a superuser)
    may see it and download its file.

    `source` names what is exported ("report:<name>", "list:<app>.<model>") and `query` its filters as the page's
    query string, so the task rebuilds the very rows the page showed; `filters` are those filters as people read
    them. `run_token` is the claim of the task writing it: a second delivery of the task finds it taken."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    OPEN = (Status.QUEUED, Status.RUNNING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="exports")
    source = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    query = models.TextField(blank=True)
    filters = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=4, choices=Format.choices)
    file_name = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows_written = models.PositiveBigIntegerField(default=0)
    total_rows = models.PositiveBigIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/%Y/%m/", max_length=300, blank=True)
    error = models.TextField(blank=True)
    run_token = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Asking again for an export still being written gives the same one (a double click, a reload).
            models.UniqueConstraint(
                fields=["user", "source", "query", "format"],
                condition=Q(status__in=["queued", "running"]),
                name="reports_export_one_open_per_request",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="reports_export_user_created")]
        verbose_name = "export"
        verbose_name_plural = "my exports"

    def __str__(self) -> str:
        return f"{self.title} ({self.get_format_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def percent(self) -> int | None:
        """How much is written, in whole percent (100 only once done); None before the rows are counted."""
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return None
        return min(99, self.rows_written * 100 // self.total_rows)
