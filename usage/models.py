from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from billing_project import money
from billing_project.formatting import moment, quantity
from catalog.models import Customer, PriceAgreement, Service


class Upload(models.Model):
    """One batch of usage: a file (upload page, admin import, command) or an API request."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload page"
        ADMIN_IMPORT = "admin_import", "Admin import"
        COMMAND = "command", "Command line"
        API = "api", "API"

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        IMPORTED = "imported", "Imported"
        FAILED = "failed", "Failed"

    source = models.CharField(max_length=16, choices=Source.choices)
    original_name = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to="usage/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size = models.PositiveBigIntegerField(default=0)
    row_count = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first rows in error.")
    warnings = models.JSONField(default=list, blank=True)
    forced = models.BooleanField(default=False, help_text="Imported although the same content was imported before.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["errors"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name or f"{self.get_source_display()} of {moment(self.created_at)}"


class UsageRecord(models.Model):
    """One usage line, with the price in force at its service time kept as a snapshot.

    Written only by usage.services in bulk (COPY on PostgreSQL), never one by one, so it keeps no
    per-row history: the upload it came from is its audit trail.

    The table grows by millions of rows a month, so it carries only the indexes its reads use, and its
    foreign keys are not database constraints: PostgreSQL would check four of them per row at commit,
    which costs more than the whole COPY. The import pipeline takes every id from the catalog in the
    same transaction and locks the catalog rows it used; deleting a referenced row is refused by PROTECT.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    price_agreement = models.ForeignKey(
        PriceAgreement, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    quantity = models.DecimalField(max_digits=money.QUANTITY_MAX_DIGITS, decimal_places=money.QUANTITY_DECIMAL_PLACES)
    service_time = models.DateTimeField()
    period = models.DateField(help_text="First day of the billing month the usage belongs to.")
    unit_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS, decimal_places=money.UNIT_PRICE_DECIMAL_PLACES
    )
    currency = models.CharField(max_length=3)
    upload = models.ForeignKey(
        Upload, on_delete=models.PROTECT, related_name="records", db_index=False, db_constraint=False
    )
    event_id = models.CharField(max_length=128, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "period", "service"], name="usage_customer_period_idx"),
            models.Index(fields=["service", "period"], name="usage_service_period_idx"),
            models.Index(fields=["period"], name="usage_period_idx"),
            # The lists' order, newest service time first (docs/BENCHMARKS.md, "Usage reads at 10 million
            # records"): every customer's records, and one customer's, walked from either end or a cursor.
            models.Index(fields=["service_time", "id"], name="usage_time_idx"),
            models.Index(fields=["customer", "service_time", "id"], name="usage_customer_time_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "event_id"], condition=Q(event_id__isnull=False), name="usage_event_unique"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="usage_quantity_positive"),
        ]

    def __str__(self) -> str:
        return (
            f"{quantity(self.quantity)} × {self.service.name} for {self.customer.name} at {moment(self.service_time)}"
        )


class MonthlySummary(models.Model):
    """Usage per customer, service, billing month and snapshot price, kept in step with every import.

    One agreement gives one price, and agreements of a customer and service never overlap, so a month's
    summaries in order of `first_service_time` are the month's usage in service time order: the
    allowance can be taken from them earliest first without reading the records (`usage.report_selectors`).
    """

    # An import adds tens of thousands of summaries at once. Like the records, they carry no foreign-key
    # constraints (the import holds the rows they point at locked until commit) and no index per key: the
    # unique constraint's index, customer first, serves every read; deleting a service or an agreement,
    # refused while summaries point at it, scans them.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    period = models.DateField(help_text="First day of the billing month.")
    price_agreement = models.ForeignKey(
        PriceAgreement, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    unit_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS, decimal_places=money.UNIT_PRICE_DECIMAL_PLACES
    )
    # Sums of records: wide enough for any number of them (billing_project/money.py).
    quantity = models.DecimalField(
        max_digits=money.SUMMARY_QUANTITY_MAX_DIGITS, decimal_places=money.QUANTITY_DECIMAL_PLACES
    )
    record_count = models.PositiveIntegerField()
    # Exact: a quantity (6 places) times a unit price (6 places) has 12 places, so sums never round.
    amount = models.DecimalField(
        max_digits=money.SUMMARY_AMOUNT_MAX_DIGITS,
        decimal_places=money.SUMMARY_AMOUNT_DECIMAL_PLACES,
        help_text="Quantity at the records' snapshot prices, before allowance.",
    )
    first_service_time = models.DateTimeField()
    last_service_time = models.DateTimeField()

    class Meta:
        ordering = ["-period", "customer", "service", "first_service_time"]
        verbose_name_plural = "monthly summaries"
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period", "service", "price_agreement", "unit_price"],
                name="summary_unique_per_month_and_price",
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.name} for {self.customer.name}, {self.period:%B %Y}"


class ServiceUsage(models.Model):
    """Usage at its snapshot prices per billing month, currency and service over every customer: the monthly
    summaries added up, kept in the same transaction by every import (`usage.services`), so that the dashboard's
    usage revenue reads a few rows instead of every summary. The currency is the customer's.
    """

    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    period = models.DateField(help_text="First day of the billing month.")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    amount = models.DecimalField(
        max_digits=money.SUMMARY_AMOUNT_MAX_DIGITS,
        decimal_places=money.SUMMARY_AMOUNT_DECIMAL_PLACES,
        help_text="Quantity at the records' snapshot prices, before allowance.",
    )

    class Meta:
        ordering = ["-period", "currency", "service"]
        constraints = [
            models.UniqueConstraint(fields=["period", "currency", "service"], name="service_usage_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.period:%Y-%m} {self.currency}"


class DailyUsage(models.Model):
    """Usage per customer, service and day of service time in BILLING_TIME_ZONE, kept in step with every import.

    What GET /api/usage answers totals by day (and by month for part of a month) from: a row per customer,
    service and day instead of every record of the range. Like the monthly summaries, it carries no foreign-key
    constraints (the import holds the rows it points at locked until commit).
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    day = models.DateField(help_text="The day of service time in BILLING_TIME_ZONE.")
    quantity = models.DecimalField(
        max_digits=money.SUMMARY_QUANTITY_MAX_DIGITS, decimal_places=money.QUANTITY_DECIMAL_PLACES
    )
    record_count = models.PositiveIntegerField()
    amount = models.DecimalField(
        max_digits=money.SUMMARY_AMOUNT_MAX_DIGITS,
        decimal_places=money.SUMMARY_AMOUNT_DECIMAL_PLACES,
        help_text="Quantity at the records' snapshot prices, before allowance.",
    )

    class Meta:
        ordering = ["day", "customer", "service"]
        verbose_name_plural = "daily usage"
        # The unique constraint's index, customer and day first, serves a customer's days; the day index every
        # customer's.
        constraints = [models.UniqueConstraint(fields=["customer", "day", "service"], name="daily_usage_unique")]
        indexes = [models.Index(fields=["day"], name="daily_usage_day_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.service_id} {self.day:%Y-%m-%d}"


class ClosedPeriod(models.Model):
    """A customer's billing month that accepts no more usage (closed by the month-end run)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    period = models.DateField(help_text="First day of the billing month.")
    closed_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    history = HistoricalRecords()

    class Meta:
        ordering = ["-period"]
        constraints = [models.UniqueConstraint(fields=["customer", "period"], name="closed_period_unique")]

    def __str__(self) -> str:
        return f"{self.customer.name}, {self.period:%B %Y}"
