"""reports reads the other apps and keeps no data of its own; this module only names its permissions."""

from django.db import models


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
