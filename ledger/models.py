"""The journal, billing configurations, invoices, payments and month-end runs (docs/DESIGN.md, "The ledger").

Legs and transactions are append-only: the querysets refuse update and delete, `save()` refuses a
second save, and on PostgreSQL triggers refuse both even from raw SQL (migration 0002).
"""

from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from simple_history.models import HistoricalRecords

from accounts.roles import Role
from billing_project import money
from billing_project.formatting import day, moment
from billing_project.formatting import money as money_text
from catalog.models import Customer, Partner, Service
from ledger.vat import ZERO_RATE_CATEGORIES, VatCategory, validate_exemption_code

ZERO = Decimal("0.00")


def amount_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=money.AMOUNT_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, **kwargs)


def balance_field(**kwargs) -> models.DecimalField:
    """A running balance: wide enough that no number of postings can overflow it (billing_project/money.py)."""
    return models.DecimalField(
        max_digits=money.BALANCE_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, **kwargs
    )


class ImmutableError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError(f"{self.model.__name__} rows are never changed; post a reversing transaction.")

    def delete(self):
        raise ImmutableError(f"{self.model.__name__} rows are never deleted; post a reversing transaction.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(f"{type(self).__name__} rows are never changed; post a reversing transaction.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError(f"{type(self).__name__} rows are never deleted; post a reversing transaction.")


class Account(models.Model):
    """One account of the chart. `balance` is debits minus credits: a customer's receivable is
    positive when the customer owes, negative when it holds credit."""

    class Kind(models.TextChoices):
        RECEIVABLE = "receivable", "Receivable (customer)"
        PAYABLE = "payable", "Payable (partner)"
        REVENUE = "revenue", "Revenue"
        TAX = "tax", "Tax payable"
        CASH = "cash", "Cash and bank"
        ADJUSTMENTS = "adjustments", "Adjustments"
        EXPENSE = "expense", "Expense (order costs)"
        SUPPLIER_PAYABLE = "supplier_payable", "Payable (suppliers)"

    code = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=250)
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    category = models.CharField(
        max_length=16, choices=Service.Category.choices, blank=True, help_text="Revenue accounts: the service category."
    )
    balance = balance_field(default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "currency"], condition=Q(kind="receivable"), name="account_one_receivable"
            ),
            models.UniqueConstraint(
                fields=["partner", "currency"], condition=Q(kind="payable"), name="account_one_payable"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class Transaction(AppendOnlyModel):
    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"
        CREDIT_NOTE = "credit_note", "Credit note"
        SETTLEMENT = "settlement", "Settlement"
        PAYOUT = "payout", "Payout"
        EXPENSE = "expense", "Expense"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    description = models.CharField(max_length=500)
    reference = models.CharField(max_length=100, blank=True, help_text="The source document's number or reference.")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source_id = models.PositiveBigIntegerField(null=True, blank=True)
    source = GenericForeignKey("source_type", "source_id")
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "journal transaction"
        verbose_name_plural = "journal"
        indexes = [
            models.Index(fields=["customer", "created_at"], name="transaction_customer_idx"),
            models.Index(fields=["source_type", "source_id"], name="transaction_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference or 'of ' + day(self.created_at)}"


class Leg(AppendOnlyModel):
    """A positive debit or a positive credit on one account, with the account's balance after it."""

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="legs")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="legs")
    debit = amount_field(default=ZERO)
    credit = amount_field(default=ZERO)
    balance_after = balance_field()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "id"], name="leg_account_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(debit__gt=0) & Q(credit=0)) | (Q(credit__gt=0) & Q(debit=0)),
                name="leg_one_positive_side",
                violation_error_message="A leg is a positive debit or a positive credit.",
            ),
        ]

    def __str__(self) -> str:
        side = "Dr" if self.debit else "Cr"
        return f"{self.account.name} {side} {money_text(self.debit or self.credit, self.account.currency)}"

    @property
    def amount(self) -> Decimal:
        """Signed as the account's balance moves: debit positive."""
        return self.debit - self.credit


def csm_problem(customer: Customer, csm, *, in_customer_success: bool) -> str | None:
    """Why `csm`, the customer's CSM, cannot approve its bills (there is none, or they are inactive or no longer
    in Customer Success), as the start of a sentence; None when they can."""
    if csm is None:
        return f"{customer.client_id} has no CSM"
    if not csm.is_active:
        return f"{customer.client_id}'s CSM, {csm}, is inactive"
    if not in_customer_success:
        return f"{customer.client_id}'s CSM, {csm}, is no longer in Customer Success"
    return None


def csm_cannot_approve(customer: Customer) -> str | None:
    """`csm_problem` of the customer's CSM, read from the database."""
    csm = customer.csm
    in_customer_success = csm is not None and csm.groups.filter(name=Role.CUSTOMER_SUCCESS).exists()
    return csm_problem(customer, csm, in_customer_success=in_customer_success)


class BillingConfig(models.Model):
    class Cycle(models.TextChoices):
        MONTHLY = "monthly", "Monthly"

    class ApprovalRule(models.TextChoices):
        NONE = "none", "No approval"
        CSM = "csm", "The customer's CSM"
        CS_OR_SALES = "cs_or_sales", "Any Customer Success or Sales user"

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="billing_config")
    cycle = models.CharField(max_length=16, choices=Cycle.choices, default=Cycle.MONTHLY)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    tax_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0"), help_text="As a fraction: 0.2000 is 20%."
    )
    tax_id = models.CharField("tax id", max_length=64, blank=True)
    tax_exempt = models.BooleanField(default=False)
    tax_exempt_reason = models.CharField(max_length=250, blank=True)
    tax_exemption_code = models.CharField(
        "VATEX exemption code",
        max_length=30,
        blank=True,
        validators=[validate_exemption_code],
        help_text="With an exemption: its code on e-invoices, e.g. VATEX-EU-132-1C.",
    )
    vat_category = models.CharField(
        "VAT category at 0 %",
        max_length=2,
        blank=True,
        choices=ZERO_RATE_CATEGORIES,
        help_text="With a tax rate of 0 and no exemption. Empty: reverse charge for a customer with a VAT id in "
        "another country, not subject to VAT for one without, zero rated in the seller's country.",
    )
    invoice_email = models.EmailField(blank=True, help_text="Where invoices are sent; the billing email if empty.")
    auto_issue = models.BooleanField(
        default=False, help_text="Issue and send invoices that need no approval as soon as month-end makes them."
    )
    reminder_interval_days = models.PositiveSmallIntegerField(default=7)
    send_zero_invoices = models.BooleanField(
        "Send a 0.00 invoice when there is nothing to bill",
        default=False,
        help_text="For customers who want a document every month. Otherwise a month with nothing to bill (no fee, "
        "and all usage within the allowance) gets no invoice: it takes no number and sends no email.",
    )
    approval_rule = models.CharField(
        max_length=16,
        choices=ApprovalRule.choices,
        default=ApprovalRule.NONE,
        help_text="Who approves bills before they are issued. 'Require CSM approval' on the customer means at least "
        "the CSM.",
    )
    sales_approval_above = amount_field(
        null=True,
        blank=True,
        validators=[money.WithinBound("amount")],
        help_text="A bill whose total exceeds this also needs a Sales approval. Empty: never.",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = "billing configuration"
        constraints = [
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0) & Q(tax_rate__lt=1), name="billing_config_tax_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(tax_exempt=False) | ~Q(tax_exempt_reason=""),
                name="billing_config_exempt_has_reason",
                violation_error_message="Give the reason the customer is exempt from tax.",
            ),
            models.CheckConstraint(condition=Q(reminder_interval_days__gte=1), name="billing_config_reminder_interval"),
        ]

    def __str__(self) -> str:
        return f"Billing of {self.customer}"

    @property
    def effective_tax_rate(self) -> Decimal:
        return Decimal(0) if self.tax_exempt else self.tax_rate

    def clean(self) -> None:
        super().clean()
        if self.vat_category and (self.tax_exempt or self.tax_rate > 0):
            raise ValidationError(
                {"vat_category": "Only for a tax rate of 0 without exemption: leave it empty, or set the rate to 0."}
            )
        if self.vat_category == VatCategory.REVERSE_CHARGE and not self.customer.vat_id:
            who = self.customer.client_id
            raise ValidationError({"vat_category": f"Reverse charge needs the VAT identifier of {who}: give it first."})
        if self.tax_exemption_code and not self.tax_exempt:
            raise ValidationError({"tax_exemption_code": "Only for a customer exempt from tax."})
        if self.approval_rule == self.ApprovalRule.CSM:
            problem = csm_cannot_approve(self.customer)
            if problem:
                raise ValidationError(
                    {"approval_rule": f"{problem}: set a CSM on the customer first, or choose another rule."}
                )

    @property
    def effective_approval_rule(self) -> str:
        if self.approval_rule == self.ApprovalRule.NONE and self.customer.require_csm_approval:
            return self.ApprovalRule.CSM
        return self.approval_rule


class DocumentSequence(models.Model):
    """The last number given in a series and year; locked while a number is taken, so numbers are gapless."""

    series = models.CharField(max_length=8)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="document_sequence_unique")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_number}"


class BillingRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Completed with failures"

    period = models.DateField(help_text="First day of the billed month.")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Empty: all customers."
    )
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    customer_count = models.PositiveIntegerField(default=0)
    customers_done = models.PositiveIntegerField(default=0)
    invoices_created = models.PositiveIntegerField(default=0)
    invoices_submitted = models.PositiveIntegerField(default=0, help_text="Sent for approval.")
    invoices_issued = models.PositiveIntegerField(default=0)
    already_invoiced = models.PositiveIntegerField(default=0)
    nothing_to_bill = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True)

    # Who started it, each failure noted and how it ended; the progress counters move with update() between
    # versions (ledger.services.month_end), and the finishing version carries the final counts.
    history = HistoricalRecords()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "month-end run"

    def __str__(self) -> str:
        started = f", started {moment(self.started_at)}" if self.started_at else ""
        return f"Month-end {self.period:%B %Y}{started}"


class BillingRunCustomer(models.Model):
    """A customer a run has billed: so a task delivered twice bills and counts the customer once.

    `routed` turns true once the customer's new draft went its way (issued, submitted or left as a
    draft); only then is the customer counted done, so the run never finishes while one is in flight.
    `created_at` is when the run reached the customer: the newest tells whether a run still moves
    (ledger.selectors.billing_run_list). The database sets it, so set-based inserts that name only the
    other columns keep it too; empty on rows made before it was kept.
    """

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="customers")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    routed = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_default=Now(), null=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="billing_run_customer_once")]
        indexes = [models.Index(fields=["run", "created_at"], name="billing_run_progress_idx")]

    def __str__(self) -> str:
        return f"{self.run} / {self.customer.name}"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"
        OVERDUE = "overdue", "Overdue"
        CANCELLED = "cancelled", "Cancelled"
        VOID = "void", "Void"

    class Kind(models.TextChoices):
        USAGE = "usage", "Usage (month-end)"
        MANUAL = "manual", "Manual"
        ORDER = "order", "Order"  # an order's fee and base charge (orders.services.billing); month-end skips it

    EDITABLE = {Status.DRAFT, Status.REJECTED}
    OPEN = {Status.ISSUED, Status.OVERDUE}  # issued and not yet paid in full

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.USAGE)
    period = models.DateField(help_text="First day of the billed month.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    subtotal = amount_field(default=ZERO)
    tax = amount_field(default=ZERO)
    total = amount_field(default=ZERO)
    amount_paid = amount_field(default=ZERO)
    amount_credited = amount_field(default=ZERO)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="invoices/%Y/", blank=True)
    einvoice = models.FileField(
        "UBL e-invoice",
        upload_to="einvoices/%Y/",
        blank=True,
        help_text="UBL 2.1, made once at issue for customers who receive e-invoices; like the PDF, it never changes.",
    )
    facturx = models.FileField(
        "Factur-X PDF",
        upload_to="einvoices/%Y/",
        blank=True,
        help_text="The PDF with its CII XML embedded (Factur-X, EN 16931 profile), made once at issue for customers "
        "who receive e-invoices; it never changes.",
    )
    buyer_reference = models.CharField(
        max_length=200, blank=True, help_text="The customer's reference for this invoice; empty: the customer's own."
    )
    billing_run = models.ForeignKey(BillingRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-period", "-id"]
        indexes = [
            models.Index(fields=["customer", "period"], name="invoice_customer_period_idx"),
            # What was issued in a period: the invoice register, the tax report; DSO's sum from the index alone.
            models.Index(fields=["issued_at"], include=["currency", "total"], name="invoice_issued_idx"),
            # The open invoices credit is set against (ledger.services.credit), oldest due first: only open rows.
            models.Index(
                fields=["customer", "due_date", "issued_at", "id"],
                condition=Q(status__in=["issued", "overdue"]),
                name="invoice_open_idx",
            ),
        ]
        # Sums (total = subtotal + tax, not overpaid) are checked on PostgreSQL only (migration 0002):
        # SQLite compares decimals as floating point.
        constraints = [
            # At most one usage invoice per customer and month, whatever reruns or races happen.
            models.UniqueConstraint(
                fields=["customer", "period"], condition=Q(kind="usage"), name="invoice_one_usage_per_period"
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_credited__gte=0), name="invoice_settled_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft invoice for {self.customer.name}, {self.period:%B %Y}"

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.amount_credited - self.amount_paid

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE


class InvoiceItem(models.Model):
    class Source(models.TextChoices):
        FEE = "fee", "Monthly fee"
        INCLUDED = "included", "Included units"
        USAGE = "usage", "Usage"
        COMMITMENT = "commitment", "Minimum commitment top-up"
        MANUAL = "manual", "Manual line"
        ORDER_FEE = "order_fee", "Order fee"
        DISBURSEMENT = "disbursement", "Disbursement (no tax)"

    USAGE_SOURCES = {
        Source.FEE,
        Source.INCLUDED,
        Source.USAGE,
        Source.COMMITMENT,
    }  # rated from usage: a regenerated draft rates again
    UNTAXED_SOURCES = {Source.DISBURSEMENT}  # a cost passed through to the client: never taxed

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices)
    description = models.CharField(max_length=300)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    quantity = models.DecimalField(max_digits=money.QUANTITY_MAX_DIGITS, decimal_places=money.QUANTITY_DECIMAL_PLACES)
    unit_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS, decimal_places=money.UNIT_PRICE_DECIMAL_PLACES
    )
    amount = amount_field()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    tax_amount = amount_field()
    # EN 16931's VAT category of the line and, for exempt and zero-rate categories, why (ledger/vat.py).
    vat_category = models.CharField(max_length=2, choices=VatCategory.choices, default=VatCategory.STANDARD)
    vat_exemption_reason = models.CharField(max_length=250, blank=True)
    vat_exemption_code = models.CharField(max_length=30, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["invoice", "position", "id"]

    def __str__(self) -> str:
        return self.description


class CreditNote(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=32, unique=True)
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    subtotal = amount_field()
    tax = amount_field()
    total = amount_field()
    unallocated = amount_field(
        default=ZERO, help_text="The part that exceeded what was owed on the invoice: customer credit."
    )
    reason = models.CharField(max_length=500)
    full = models.BooleanField(default=False, help_text="Credits the whole invoice and voids it.")
    issued_at = models.DateTimeField()
    pdf = models.FileField(upload_to="credit_notes/%Y/", blank=True)
    einvoice = models.FileField(
        "UBL e-invoice",
        upload_to="einvoices/%Y/",
        blank=True,
        help_text="UBL 2.1 CreditNote, made once at issue for customers who receive e-invoices; it never changes.",
    )
    facturx = models.FileField(
        "Factur-X PDF",
        upload_to="einvoices/%Y/",
        blank=True,
        help_text="The PDF with its CII XML (type 381) embedded, made once at issue for customers who receive "
        "e-invoices; it never changes.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="credit_note_positive"),
            models.CheckConstraint(
                condition=Q(unallocated__gte=0) & Q(unallocated__lte=F("total")), name="credit_note_unallocated_range"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Payment(models.Model):
    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        CARD = "card", "Card"
        DIRECT_DEBIT = "direct_debit", "Direct debit"
        CASH = "cash", "Cash"
        OTHER = "other", "Other"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.BANK_TRANSFER)
    amount = amount_field()
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    received_at = models.DateTimeField()
    bank_reference = models.CharField(max_length=140, help_text="The bank line's reference: one booking per line.")
    unallocated = amount_field(default=ZERO, help_text="Not yet set against an invoice: customer credit.")
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-received_at", "-id"]
        # The customer's credit, oldest first (ledger.services.credit): only payments with some left, so the
        # look-up does not grow with the payments already spent.
        indexes = [
            models.Index(
                fields=["customer", "received_at", "id"], condition=Q(unallocated__gt=0), name="payment_credit_idx"
            ),
            # What was received in a period: the payments register.
            models.Index(fields=["received_at", "id"], name="payment_received_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["customer", "bank_reference"], name="payment_bank_reference_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=Q(unallocated__gte=0) & Q(unallocated__lte=F("amount")), name="payment_unallocated_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Payment of {money_text(self.amount, self.currency)} ({self.bank_reference})"


class Allocation(models.Model):
    """Part of a payment, or of a credit note's excess, set against an invoice.

    Rows are never changed or deleted. Moving a payment's money to another invoice (payment_reallocate) writes a
    negative row on the invoice it leaves and a positive one on the invoice it goes to, so the rows of a payment
    or an invoice always add up to what is set against it, and the history shows every move.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations")
    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="allocations"
    )
    amount = amount_field(help_text="Negative: taken back from the invoice when the payment moved to another.")
    created_at = models.DateTimeField(auto_now_add=True)

    # The row has no author column: its history names who set the money against the invoice.
    history = HistoricalRecords()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="allocation_not_zero"),
            # Only a payment's money is moved between invoices; a credit note's excess is only ever set against one.
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(payment__isnull=False), name="allocation_taken_back_from_a_payment"
            ),
            models.CheckConstraint(
                condition=(Q(payment__isnull=False) & Q(credit_note__isnull=True))
                | (Q(payment__isnull=True) & Q(credit_note__isnull=False)),
                name="allocation_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{money_text(self.amount, self.invoice.currency)} to {self.invoice}"


class Refund(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    amount = amount_field()
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    method = models.CharField(max_length=16, choices=Payment.Method.choices, default=Payment.Method.BANK_TRANSFER)
    reference = models.CharField(max_length=140, blank=True)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive")]

    def __str__(self) -> str:
        return f"Refund of {money_text(self.amount, self.currency)} to {self.customer.name}"


class Adjustment(models.Model):
    class Direction(models.TextChoices):
        DEBIT = "debit", "Debit (the customer owes more)"
        CREDIT = "credit", "Credit (the customer owes less)"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="adjustments")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    amount = amount_field()
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="adjustment_positive"),
            models.CheckConstraint(condition=~Q(reason=""), name="adjustment_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Adjustment of {money_text(self.amount, self.currency)} for {self.customer.name}"


class MonthFigures(models.Model):
    """A month's money in the billing time zone (ledger.services.monthly_totals.FIELDS):

    - invoiced: totals (tax included) of the invoices issued in the month; credited: of the credit notes issued in it;
    - received: payments received in it; refunded: refunds paid in it;
    - revenue: subtotals of the issued invoices that bill the month (their period; order invoices: the month they
      were issued); revenue_credited: subtotals of the credit notes on those invoices, in the invoice's month.
    """

    month = models.DateField(help_text="First day of the month.")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    invoiced = balance_field(default=ZERO)
    credited = balance_field(default=ZERO)
    received = balance_field(default=ZERO)
    refunded = balance_field(default=ZERO)
    revenue = balance_field(default=ZERO)
    revenue_credited = balance_field(default=ZERO)

    class Meta:
        abstract = True


class MonthlyTotal(MonthFigures):
    """A customer's month (MonthFigures), kept in the same database transaction as the rows it sums
    (ledger.services.monthly_totals): what the dashboard reads instead of every invoice and payment. Rebuilt from
    those rows by `manage.py rebuild_ledger_monthly_totals` (ledger.services.monthly_totals).
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        ordering = ["-month", "customer"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "month", "currency"], name="monthly_total_unique"),
        ]
        # By month (what Finance's dashboard read before MonthlyGrandTotal); a CSM's customers: the unique index,
        # customer first.
        indexes = [models.Index(fields=["month"], name="monthly_total_month_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.month:%Y-%m} {self.currency}"


class MonthlyGrandTotal(MonthFigures):
    """Every customer's monthly totals added up, per month and currency: what the dashboard reads for a user who
    sees every customer, a few rows instead of a row per customer and month. Kept with the customers' monthly
    totals (ledger.services.monthly_totals), in the same transaction; rebuilt from them."""

    class Meta:
        ordering = ["-month", "currency"]
        constraints = [models.UniqueConstraint(fields=["month", "currency"], name="monthly_grand_total_unique")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.currency}"


class TrailingRevenue(models.Model):
    """A customer's revenue over the twelve months ending with `month` (that month included): the monthly totals'
    revenue less revenue credited, added up over the window. An issue or credit note that changes a month's revenue
    changes the twelve windows that hold it, in the same transaction (ledger.services.monthly_totals), so the
    dashboard's top customers read one row per customer instead of twelve monthly totals."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", db_index=False)
    month = models.DateField(help_text="First day of the window's last month.")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    amount = balance_field(default=ZERO)

    class Meta:
        ordering = ["-month", "-amount"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "month", "currency"], name="trailing_revenue_unique"),
        ]
        # The largest windows ending this month, per currency, read in order (the top customers); a CSM's customers:
        # the unique index.
        indexes = [models.Index(fields=["month", "currency", "-amount", "customer"], name="trailing_revenue_rank_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} twelve months to {self.month:%Y-%m} {self.currency}"


class ServiceRevenue(models.Model):
    """Revenue without tax of one month billed, currency and service over every customer, kept in the same database
    transaction as the invoices and credit notes it sums (ledger.services.revenue_totals): what the revenue report
    reads for every customer instead of every invoice line.

    - invoiced: the amounts of the issued invoices' lines of the service that bill the month (their period; order
      invoices: the month they were issued);
    - credited: the credit notes' shares of those lines (ledger.credit_shares), in the invoice's month billed.

    A line without a service counts under its source (a disbursement, an adjustment); `source` is empty for the
    lines of a service. Rebuilt from the rows by `manage.py rebuild_ledger_monthly_totals`.
    """

    month = models.DateField(help_text="First day of the month billed.")
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    source = models.CharField(max_length=16, blank=True, default="", help_text="The lines' source, without a service.")
    invoiced = balance_field(default=ZERO)
    credited = balance_field(default=ZERO)

    class Meta:
        ordering = ["-month", "currency", "service", "source"]
        constraints = [
            models.UniqueConstraint(
                fields=["month", "currency", "service"],
                condition=Q(service__isnull=False),
                name="service_revenue_unique_service",
            ),
            models.UniqueConstraint(
                fields=["month", "currency", "source"],
                condition=Q(service__isnull=True),
                name="service_revenue_unique_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.currency} {self.service_id or self.source}"


class ReminderLog(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    sent_to = models.CharField(max_length=254)
    sent_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"Reminder for {self.invoice} on {day(self.sent_at)}"


class ReconciliationReport(models.Model):
    ran_at = models.DateTimeField(auto_now_add=True, db_index=True)
    account_count = models.PositiveIntegerField(default=0)
    transaction_count = models.PositiveIntegerField(default=0)
    differences = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"Reconciliation of {moment(self.ran_at)}"

    @property
    def balanced(self) -> bool:
        return not self.differences
