"""The order desk: reference data, orders and their documents, tasks and comments (DESIGN.md, "Orders").

Statuses move only through `orders.services.orders.order_transition`; these tables hold what the lifecycle
leaves behind and the constraints the database can keep on its own.
"""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django_countries.fields import CountryField
from guardian.models import UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from billing_project import money
from catalog.models import Customer, Partner, external_key_validator
from orders.files import FILE_KINDS


def amount_field(verbose_name: str, **kwargs) -> models.DecimalField:
    return models.DecimalField(
        verbose_name,
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("amount")],
        **kwargs,
    )


def validate_file_kinds(value: str) -> None:
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(FILE_KINDS))
    if not kinds:
        raise ValidationError("Name at least one file kind.")
    if unknown:
        raise ValidationError(f"Unknown file kind: {', '.join(unknown)}. Known kinds: {', '.join(sorted(FILE_KINDS))}.")


class DocumentType(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[external_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    accepted_kinds = models.CharField(
        "accepted file kinds",
        max_length=100,
        default="pdf",
        validators=[validate_file_kinds],
        help_text=f"Comma-separated, from: {', '.join(sorted(FILE_KINDS))}.",
    )
    max_size_bytes = models.PositiveIntegerField(
        "maximum size (bytes)",
        default=5 * 1024 * 1024,
        validators=[MinValueValidator(1)],
    )
    validity_days = models.PositiveIntegerField(
        "valid for (days)", null=True, blank=True, help_text="Days an accepted document stays valid; empty: forever."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def kinds(self) -> list[str]:
        return [kind.strip() for kind in self.accepted_kinds.split(",") if kind.strip()]

    def clean(self) -> None:
        super().clean()
        limit = settings.MAX_DOCUMENT_BYTES
        if self.max_size_bytes and self.max_size_bytes > limit:
            raise ValidationError({"max_size_bytes": f"At most {limit:,} bytes (MAX_DOCUMENT_BYTES)."})


class OrderType(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[external_key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_fee = amount_field("default fee")
    default_base_charge = amount_field(
        "default base charge", help_text="A cost passed through to the client (e.g. the registrar's fee), untaxed."
    )
    target_duration_days = models.PositiveIntegerField("target duration (days)", default=14)
    active = models.BooleanField(default=True)
    document_types = models.ManyToManyField(DocumentType, through="OrderTypeDocument", related_name="order_types")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_fee__gte=0) & Q(default_base_charge__gte=0),
                name="order_type_amounts_not_negative",
                violation_error_message="Fee and base charge cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OrderTypeDocument(models.Model):
    """A document type an order type asks for: required, or optional, with a note shown to the client."""

    order_type = models.ForeignKey(OrderType, on_delete=models.CASCADE, related_name="requirements")
    document_type = models.ForeignKey(DocumentType, on_delete=models.PROTECT, related_name="requirements")
    required = models.BooleanField(default=True)
    client_note = models.CharField(max_length=300, blank=True, help_text="Shown to the client in the portal.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["order_type", "-required", "document_type__name"]
        constraints = [
            models.UniqueConstraint(fields=["order_type", "document_type"], name="order_type_document_once"),
        ]

    def __str__(self) -> str:
        return f"{self.order_type} · {self.document_type} ({'required' if self.required else 'optional'})"


class Registrar(models.Model):
    name = models.CharField(max_length=200, unique=True)
    jurisdiction = CountryField()
    website = models.URLField(blank=True)
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Company(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Being formed"
        ACTIVE = "active", "Active"
        DORMANT = "dormant", "Dormant"
        DISSOLVED = "dissolved", "Dissolved"

    name = models.CharField(max_length=250)
    registration_number = models.CharField(max_length=64, blank=True)
    jurisdiction = CountryField()
    registrar = models.ForeignKey(Registrar, on_delete=models.PROTECT, null=True, blank=True, related_name="companies")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="companies")
    incorporation_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(
                fields=["registrar", "registration_number"],
                condition=~Q(registration_number=""),
                name="company_number_unique_per_registrar",
                violation_error_message="This registrar already has a company with this registration number.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.registration_number})" if self.registration_number else self.name


class Order(models.Model):
    class Status(models.TextChoices):
        STARTED = "started", "Started"
        DOCUMENTS_PENDING = "documents_pending", "Documents pending"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.STARTED, Status.DOCUMENTS_PENDING, Status.IN_PROGRESS)
    FINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    number = models.CharField(max_length=20, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    order_type = models.ForeignKey(OrderType, on_delete=models.PROTECT, related_name="orders")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES, editable=False)
    fee = amount_field("fee")
    base_charge = amount_field("base charge", help_text="Passed through to the client without tax.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_orders",
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    start_date = models.DateField(default=date.today)
    due_date = models.DateField()
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why the order failed or was cancelled.")
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="created_orders"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The invoice (kind `order`) that bills the fee and base charge: one per order, and an invoice bills one order.
    # Only a cancelled or void one is ever replaced (orders.services.billing); the history keeps the former.
    invoice = models.OneToOneField(
        "ledger.Invoice", on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="order"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("view_order_money", "Can see an order's money beyond its fee"),
            ("override_order", "Can start work with documents missing, and reopen a finished order"),
            ("share_order", "Can share an order with other staff"),
        ]
        indexes = [
            models.Index(fields=["status", "due_date"], name="order_status_due_idx"),
            models.Index(fields=["customer", "-created_at"], name="order_customer_idx"),
            models.Index(fields=["assignee", "status"], name="order_assignee_idx"),
            models.Index(fields=["-created_at", "-id"], name="order_newest_idx"),
            # The dashboard's orders completed or failed this month (reports.order_kpis), among 100,000 orders.
            models.Index(fields=["status", "completed_at"], name="order_completed_idx"),
            models.Index(fields=["status", "failed_at"], name="order_failed_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(due_date__gte=F("start_date")),
                name="order_due_not_before_start",
                violation_error_message="The due date cannot be before the start date.",
            ),
            models.CheckConstraint(
                condition=Q(fee__gte=0) & Q(base_charge__gte=0),
                name="order_amounts_not_negative",
                violation_error_message="Fee and base charge cannot be negative.",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["failed", "cancelled"]) | ~Q(reason=""),
                name="order_final_failure_has_reason",
                violation_error_message="A failed or cancelled order needs a reason.",
            ),
            models.CheckConstraint(
                condition=Q(status="completed", completed_at__isnull=False) | ~Q(status="completed"),
                name="order_completed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status="failed", failed_at__isnull=False) | ~Q(status="failed"),
                name="order_failed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False) | ~Q(status="cancelled"),
                name="order_cancelled_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        from billing_project.billing_time import billing_today

        return self.is_open and self.due_date < billing_today()


class OrderStatusHistory(models.Model):
    """One change of an order's status: its timeline. Append-only."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_history")
    from_status = models.CharField(max_length=20, choices=Order.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Order.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    comment = models.TextField(blank=True)
    override = models.BooleanField(default=False, help_text="An Admin moved the order past a rule, with a reason.")

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = "status change"
        verbose_name_plural = "status history"
        indexes = [
            models.Index(fields=["order", "at"], name="order_history_idx"),
            models.Index(fields=["to_status", "-at", "-id"], name="order_history_newest_idx"),  # recent activity
        ]

    def __str__(self) -> str:
        return f"{self.order.number}: {self.from_status or '—'} → {self.to_status}"


class OrderDocument(models.Model):
    """One document an order needs; its uploads are `OrderDocumentFile` rows, the newest being `current_file`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RECEIVED = "received", "Received"
        SUBMITTED = "submitted", "Submitted"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="documents")
    document_type = models.ForeignKey(DocumentType, on_delete=models.PROTECT, related_name="documents")
    required = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    current_file = models.OneToOneField(
        "OrderDocumentFile", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    expires_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["order", "-required", "document_type__name"]
        constraints = [
            models.UniqueConstraint(fields=["order", "document_type"], name="order_document_once"),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""),
                name="order_document_rejection_has_reason",
                violation_error_message="A rejected document needs a reason.",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(current_file__isnull=False),
                name="order_document_file_after_pending",
                violation_error_message="A document past pending has a file.",
            ),
        ]
        indexes = [models.Index(fields=["order", "status"], name="order_document_status_idx")]

    def __str__(self) -> str:
        return f"{self.order.number} · {self.document_type.name}"


class OrderDocumentFile(models.Model):
    """One upload of a document, kept after a newer one replaces it (the document's file history)."""

    document = models.ForeignKey(OrderDocument, on_delete=models.CASCADE, related_name="files")
    sequence = models.PositiveIntegerField(help_text="1 for the first upload of the document, then 2, …")
    file = models.FileField(max_length=300)
    original_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["document", "sequence"]
        constraints = [models.UniqueConstraint(fields=["document", "sequence"], name="order_document_file_sequence")]

    def __str__(self) -> str:
        return self.file.name


class Task(models.Model):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_tasks",
        limit_choices_to={"is_staff": True, "is_active": True},
    )
    due_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["done_at", "due_date", "pk"]
        indexes = [
            models.Index(fields=["assignee", "due_date"], condition=Q(done_at__isnull=True), name="task_open_idx"),
            models.Index(fields=["order"], name="task_order_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(done_at__isnull=True, done_by__isnull=True)
                | Q(done_at__isnull=False, done_by__isnull=False),
                name="task_done_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class Comment(models.Model):
    """A note on an order. Append-only: never edited or deleted, so it is its own trail."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["order", "created_at"], name="comment_order_idx")]

    def __str__(self) -> str:
        return f"{self.order.number} · {self.author} · {self.created_at:%Y-%m-%d}"


class CommentAttachment(models.Model):
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(max_length=300)
    original_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)

    class Meta:
        ordering = ["comment", "pk"]

    def __str__(self) -> str:
        return self.original_name


class OrderUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's grant of a permission on one order to one user (a direct foreign key, so grants join)."""

    content_object = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="user_grants")

    history = HistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "order access"
        verbose_name_plural = "order access"


class TaskDigest(models.Model):
    """An assignee's daily task digest, sent: the row that lets the daily job email each assignee once a day.

    The row is written before the email goes and in the same transaction, so two runs at once send one
    email (the second waits on the unique key, then finds the row) and a failed send leaves no row behind.
    """

    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(help_text="The day in the billing time zone the digest is for.")
    sent_at = models.DateTimeField()
    task_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-day", "assignee"]
        constraints = [models.UniqueConstraint(fields=["assignee", "day"], name="task_digest_once_a_day")]

    def __str__(self) -> str:
        return f"Task digest for {self.assignee} on {self.day:%d %b %Y}"


class RevenueShareAgreementQuerySet(models.QuerySet):
    def in_force_on(self, day: date):
        return self.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day), valid_from__lte=day)

    def overlapping(self, *, partner_id: int, order_type_id: int | None, valid_from: date, valid_to: date | None):
        """The agreements of the same partner and order type (the general one counts as a type of its own) whose
        days meet [valid_from, valid_to]."""
        overlap = Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from)
        if valid_to is not None:
            overlap &= Q(valid_from__lte=valid_to)
        return self.filter(overlap, partner_id=partner_id, order_type_id=order_type_id)


class RevenueShareAgreement(models.Model):
    """A partner's share of the revenue of the orders they bring in, over a period; both ends inclusive.

    Without an order type it is the partner's general agreement; one for an order type wins over it for that type
    (`orders.selectors.agreement_in_force`). Periods of one partner and order type never overlap: a new percentage
    ends one agreement and starts another (`orders.services.agreements`). On PostgreSQL an exclusion constraint
    holds it too.
    """

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="revenue_share_agreements")
    order_type = models.ForeignKey(
        OrderType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="revenue_share_agreements",
        help_text="Empty: the partner's general agreement, for every order type without one of its own.",
    )
    percentage = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="The partner's share of an order's net revenue, in per cent.",
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty means open-ended.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    objects = RevenueShareAgreementQuerySet.as_manager()

    class Meta:
        ordering = ["partner__name", "order_type__name", "valid_from"]
        indexes = [
            models.Index(fields=["partner", "order_type", "valid_from"], name="revenue_share_lookup_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="revenue_share_valid_to_after_from",
                violation_error_message="The agreement cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(percentage__gte=0) & Q(percentage__lte=100),
                name="revenue_share_between_0_and_100",
                violation_error_message="The revenue share is a percentage between 0 and 100.",
            ),
        ]

    def __str__(self) -> str:
        applies_to = self.order_type.name if self.order_type_id else "all order types"
        return f"{self.partner.name} · {applies_to} from {self.valid_from:%d %b %Y}"

    def clean(self) -> None:
        super().clean()
        if not (self.partner_id and self.valid_from):
            return
        if self.valid_to is not None and self.valid_to < self.valid_from:
            return  # reported by the check constraint's validation
        clash = (
            RevenueShareAgreement.objects.overlapping(
                partner_id=self.partner_id,
                order_type_id=self.order_type_id,
                valid_from=self.valid_from,
                valid_to=self.valid_to,
            )
            .exclude(pk=self.pk)
            .first()
        )
        if clash is not None:
            clash_end = f"{clash.valid_to:%d %b %Y}" if clash.valid_to else "open-ended"
            applies_to = f"order type {self.order_type.name}" if self.order_type_id else "all order types (general)"
            message = (
                f"Overlaps {self.partner.name}'s agreement for {applies_to} in force "
                f"{clash.valid_from:%d %b %Y} – {clash_end}; end that one first."
            )
            raise ValidationError({"valid_from": ValidationError(message, code="overlap")})


class Expense(models.Model):
    """A cost incurred on an order (a registrar's fee, a courier), posted to the ledger as it is recorded.

    Never edited after posting: a mistake is corrected by a reversing expense (`reverses`), whose amount is the
    original's, negated, so an order's expenses are the sum of its rows' amounts. Written only by
    orders.services.expenses.
    """

    class Category(models.TextChoices):
        REGISTRAR_FEE = "registrar_fee", "Registrar fee"
        COURIER = "courier", "Courier"
        NOTARY = "notary", "Notary"
        TRANSLATION = "translation", "Translation"
        OTHER = "other", "Other"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="expenses")
    amount = models.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        validators=[money.WithinBound("amount")],
        help_text="Positive; a reversing expense holds the original's amount negated.",
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES, help_text="The order's.")
    date = models.DateField(help_text="When the cost was incurred, in the billing time zone.")
    payee = models.CharField(max_length=200)
    category = models.CharField(max_length=16, choices=Category.choices)
    reference = models.CharField(max_length=100, blank=True, help_text="The supplier's invoice or receipt number.")
    receipt = models.FileField(max_length=300, blank=True)
    receipt_name = models.CharField("receipt file name", max_length=255, blank=True)
    receipt_kind = models.CharField(max_length=16, blank=True)
    paid = models.BooleanField(
        default=True, help_text="Paid from cash when recorded; otherwise owed to the supplier (suppliers payable)."
    )
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by")
    reason = models.TextField(blank=True, help_text="Why a reversing expense corrects the one it reverses.")
    ledger_transaction = models.OneToOneField(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The `expense` posting; set in the same database transaction as the row.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["date", "pk"]
        indexes = [
            models.Index(fields=["order", "date"], name="expense_order_idx"),
            models.Index(fields=["-date", "-id"], name="expense_newest_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(reverses__isnull=True, amount__gt=0) | Q(reverses__isnull=False, amount__lt=0),
                name="expense_amount_signed_by_reversal",
                violation_error_message="An expense is positive; only a reversing expense is negative.",
            ),
            models.CheckConstraint(
                condition=Q(reverses__isnull=True) | ~Q(reason=""),
                name="expense_reversal_has_reason",
                violation_error_message="A reversing expense needs a reason.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.number} · {self.get_category_display()} · {self.payee}"

    @property
    def is_reversal(self) -> bool:
        return self.reverses_id is not None


def signed_amount_field(verbose_name: str, **kwargs) -> models.DecimalField:
    return models.DecimalField(
        verbose_name,
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        validators=[money.WithinBound("amount")],
        **kwargs,
    )


class PayoutBatch(models.Model):
    """One transfer to a partner: its approved, unpaid settlements in one currency up to a cut-off date.

    Created by Finance (`orders.services.payouts`), approved by another Finance user; approval posts `payout`
    (the partner's payable to cash), marks the settlements paid and makes the bank's credit-transfer file.
    """

    class Status(models.TextChoices):
        CREATED = "created", "Awaiting approval"
        APPROVED = "approved", "Approved (paid)"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=20, unique=True, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="payout_batches")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    cut_off = models.DateField(help_text="Settlements approved on or before this day are gathered.")
    total = signed_amount_field("total", help_text="The sum of its settlements: what is transferred.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    iban = models.CharField("IBAN", max_length=34, help_text="The partner's, when the batch was created.")
    bic = models.CharField("BIC", max_length=11, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    ledger_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True, help_text="Why the batch was cancelled; its settlements wait again.")

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "payout batches"
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="payout_batch_total_positive"),
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(approved_at__isnull=False, ledger_transaction__isnull=False),
                name="payout_batch_approved_is_posted",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | (Q(cancelled_at__isnull=False) & ~Q(cancel_reason="")),
                name="payout_batch_cancelled_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Settlement(models.Model):
    """A partner's share of an ended order's revenue (DESIGN.md, "Settlements"), with its whole calculation.

    Never edited. The first settlement of an order has `sequence` 1; a receipt, credit note or expense that
    arrives later makes a correcting settlement for the difference (positive or negative), the next sequence.
    A calculated settlement not yet approved is voided and calculated again instead. Written only by
    `orders.services.settlements`.
    """

    class Status(models.TextChoices):
        CALCULATED = "calculated", "Calculated"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    LIVE_STATUSES = (Status.CALCULATED, Status.APPROVED, Status.PAID)

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="settlements")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="settlements")
    agreement = models.ForeignKey(RevenueShareAgreement, on_delete=models.PROTECT, related_name="settlements")
    sequence = models.PositiveIntegerField(help_text="1 for the order's first settlement; one more for each change.")
    is_correction = models.BooleanField(
        default=False, help_text="Carries a difference after the order's earlier settlements were approved."
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    net = amount_field(
        "net revenue", help_text="Received, less credit notes and expenses, tax excluded; never below 0."
    )
    percentage = models.DecimalField(max_digits=5, decimal_places=2)
    share = amount_field("partner share", help_text="The partner's whole share of the order at this calculation.")
    amount = signed_amount_field(
        "amount", help_text="What this settlement adds: the share less what the order's earlier settlements gave."
    )
    calculation = models.JSONField(help_text="Every input of the calculation and the agreement used, for display.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CALCULATED)
    calculated_at = models.DateTimeField()
    calculated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ledger_transaction = models.OneToOneField(
        "ledger.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payout = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="settlements")
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-calculated_at", "-pk"]
        indexes = [
            models.Index(fields=["partner", "status", "currency"], name="settlement_partner_idx"),
            models.Index(fields=["-calculated_at", "-id"], name="settlement_newest_idx"),
        ]
        constraints = [
            # One settlement per change: a recalculation run twice at once collides here.
            models.UniqueConstraint(fields=["order", "sequence"], name="settlement_once_per_change"),
            models.UniqueConstraint(
                fields=["order"], condition=Q(status="calculated"), name="settlement_one_calculated_per_order"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "paid"]) | Q(approved_at__isnull=False),
                name="settlement_approved_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status="paid", payout__isnull=False, paid_at__isnull=False) | ~Q(status="paid"),
                name="settlement_paid_by_a_payout",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.number} · {self.kind_label.lower()}"

    @property
    def kind_label(self) -> str:
        """An order's first is "Settlement"; a later one shows its sequence: "Correction #3" when it carries a
        difference from approved ones, "Settlement #2" when it replaced one never approved."""
        if self.is_correction:
            return f"Correction #{self.sequence}"
        return "Settlement" if self.sequence == 1 else f"Settlement #{self.sequence}"
