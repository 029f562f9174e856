"""Shapes of the order desk's API. Inputs are plain serializers that the services check further; outputs are
read-only.

Money is a string with two decimals beside its `currency` (the customer's), as in the ledger's API. An order's
base charge is money beyond its fee: callers who may not see it (Operations) get null
(orders.selectors.order_may_see_money), and so does an order type's default base charge.
"""

from decimal import Decimal

from django.db.models import TextChoices
from django_countries import countries
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from accounts.models import User
from approvals.selectors import ApprovalState
from billing_project import money
from billing_project.api_fields import (
    AmountField,
    BooleanField,
    CharField,
    ModelSerializer,
    StrictPrimaryKeyRelatedField,
)
from catalog.models import Customer, Partner
from catalog.selectors import customer_list_for
from ledger.models import Allocation, Invoice
from ledger.serializers import (
    ApprovalActionSerializer,
    ApprovalAllowedSerializer,
    InvoiceApprovalSerializer,
    InvoiceStatusField,
)
from orders.models import (
    Comment,
    CommentAttachment,
    Company,
    DocumentType,
    Expense,
    Order,
    OrderDocument,
    OrderDocumentFile,
    OrderStatusHistory,
    OrderType,
    OrderTypeDocument,
    Registrar,
    RevenueShareAgreement,
    Settlement,
    Task,
)
from orders.selectors import (
    PaymentStatus,
    SettlementStatus,
    company_list_for,
    order_payment_status,
    settlement_status_of,
)
from orders.services.orders import transitions_from

HIDDEN_MONEY = "Null for callers who do not see an order's money beyond its fee (Operations)."


def enum_field(choices: type[TextChoices], component_name: str, **defaults) -> type[serializers.ChoiceField]:
    """A choice field published as its own OpenAPI enum component (`status` names several choice sets)."""

    @extend_schema_field({"type": "string", "enum": list(choices.values)}, component_name=component_name)
    class EnumField(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices.choices, **{**defaults, **kwargs})

    EnumField.__name__ = EnumField.__qualname__ = component_name.removesuffix("Enum") + "Field"
    return EnumField


OrderStatusField = enum_field(Order.Status, "OrderStatusEnum")
DocumentStatusField = enum_field(OrderDocument.Status, "OrderDocumentStatusEnum", read_only=True)
TaskPriorityField = enum_field(Task.Priority, "TaskPriorityEnum")
CompanyStatusField = enum_field(Company.Status, "CompanyStatusEnum")
PaymentStatusField = enum_field(PaymentStatus, "OrderPaymentStatusEnum", read_only=True)
OrderSettlementStatusField = enum_field(SettlementStatus, "OrderSettlementStatusEnum", read_only=True)
SettlementStatusField = enum_field(Settlement.Status, "SettlementStatusEnum", read_only=True)
HIDDEN_SETTLEMENT = (
    "Derived from the order's live settlements: none, calculated, approved or paid (the least advanced one). "
    "Null for callers who do not see settlements (all but Finance and Admin)."
)


def amount_out(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, read_only=True, **kwargs
    )


class MoneyHidingMixin:
    """Nulls `money_fields` unless the view's context says the caller may see an order's money."""

    money_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("may_see_money", False):
            for field in self.money_fields:
                if field in data:
                    data[field] = None
        return data


@extend_schema_field(OpenApiTypes.INT)
class StaffUserField(StrictPrimaryKeyRelatedField):
    """An active staff user's id; the service says why another is refused."""

    def __init__(self, **kwargs):
        super().__init__(queryset=User.objects.filter(is_active=True), **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class VisibleCustomerField(StrictPrimaryKeyRelatedField):
    """A customer id among those the caller may see; any other id is reported as not existing."""

    def get_queryset(self):
        request = self.context.get("request")
        return customer_list_for(request.user) if request is not None else Customer.objects.none()


@extend_schema_field(OpenApiTypes.INT)
class VisibleCompanyField(StrictPrimaryKeyRelatedField):
    """A company id among those the caller may see; any other id is reported as not existing."""

    def get_queryset(self):
        request = self.context.get("request")
        return company_list_for(request.user) if request is not None else Company.objects.none()


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = CharField(read_only=True)
    full_name = CharField(read_only=True)


# --- Reference data ---------------------------------------------------------------------------------------------


class DocumentTypeSerializer(ModelSerializer):
    accepted_kinds = serializers.ListField(
        source="kinds", child=CharField(), read_only=True, help_text="File kinds, as sniffed from the bytes."
    )

    class Meta:
        model = DocumentType
        fields = ["id", "code", "name", "description", "accepted_kinds", "max_size_bytes", "validity_days", "active"]
        read_only_fields = fields


class RequirementSerializer(ModelSerializer):
    document_type = serializers.SlugRelatedField(slug_field="code", read_only=True)
    document_type_name = CharField(source="document_type.name", read_only=True)

    class Meta:
        model = OrderTypeDocument
        fields = ["document_type", "document_type_name", "required", "client_note"]
        read_only_fields = fields


class OrderTypeSerializer(MoneyHidingMixin, ModelSerializer):
    money_fields = ("default_base_charge",)
    default_fee = amount_out(help_text="In the customer's currency when an order is created.")
    default_base_charge = amount_out(allow_null=True, help_text=HIDDEN_MONEY)
    requirements = RequirementSerializer(many=True, read_only=True)

    class Meta:
        model = OrderType
        fields = [
            "id",
            "code",
            "name",
            "description",
            "default_fee",
            "default_base_charge",
            "target_duration_days",
            "active",
            "requirements",
        ]
        read_only_fields = fields


class RegistrarSerializer(ModelSerializer):
    jurisdiction = CharField(read_only=True, help_text="ISO 3166 country code.")
    contact_email = CharField(read_only=True, help_text="An email address, or empty when none is known.")

    class Meta:
        model = Registrar
        fields = ["id", "name", "jurisdiction", "website", "contact_email"]
        read_only_fields = fields


class CompanySerializer(ModelSerializer):
    customer = VisibleCustomerField(help_text="The owning customer's id.")
    registrar = StrictPrimaryKeyRelatedField(queryset=Registrar.objects.all(), allow_null=True, required=False)
    jurisdiction = serializers.ChoiceField(choices=list(countries), help_text="ISO 3166 country code.")
    status = CompanyStatusField(required=False)

    class Meta:
        model = Company
        fields = [
            "id",
            "name",
            "registration_number",
            "jurisdiction",
            "registrar",
            "customer",
            "incorporation_date",
            "status",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        # The model's rules (the registration number once per registrar) are checked on save, with their message.
        validators = []


# --- Orders -----------------------------------------------------------------------------------------------------


class OrderCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField(help_text="Customer id; the order is in the customer's currency.")
    order_type = serializers.SlugRelatedField(
        slug_field="code", queryset=OrderType.objects.all(), help_text="The order type's code."
    )
    partner = StrictPrimaryKeyRelatedField(queryset=Partner.objects.all(), allow_null=True, required=False)
    company = VisibleCompanyField(allow_null=True, required=False, help_text="A company of the same customer.")
    fee = AmountField(min_value=Decimal(0), required=False, help_text="Leave out for the order type's default fee.")
    base_charge = AmountField(
        min_value=Decimal(0),
        required=False,
        help_text="Leave out for the order type's default. Only callers who see an order's money may set it.",
    )
    assignee = StaffUserField(allow_null=True, required=False)
    start_date = serializers.DateField(required=False, help_text="Leave out for today (BILLING_TIME_ZONE).")
    due_date = serializers.DateField(
        required=False, help_text="Leave out for the start date plus the type's target duration."
    )
    description = CharField(allow_blank=True, required=False, default="")


class OrderUpdateSerializer(serializers.Serializer):
    partner = StrictPrimaryKeyRelatedField(queryset=Partner.objects.all(), allow_null=True, required=False)
    company = VisibleCompanyField(allow_null=True, required=False)
    fee = AmountField(min_value=Decimal(0), required=False)
    base_charge = AmountField(
        min_value=Decimal(0), required=False, help_text="Only callers who see an order's money may change it."
    )
    assignee = StaffUserField(allow_null=True, required=False)
    due_date = serializers.DateField(required=False)
    description = CharField(allow_blank=True, required=False)


class OrderTransitionSerializer(serializers.Serializer):
    to_status = OrderStatusField()
    reason = CharField(
        allow_blank=True,
        required=False,
        default="",
        help_text="Required to cancel, fail, reopen, and for an Admin's override; kept in the timeline.",
    )
    override = BooleanField(
        required=False,
        default=False,
        help_text="An Admin starts work while required documents are not accepted (with a reason).",
    )


class OrderCreditSerializer(serializers.Serializer):
    amount = AmountField(
        min_value=Decimal("0.01"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Tax included, off the fee and its tax. Leave out to credit the whole invoice.",
    )
    reason = CharField(max_length=500, help_text="Printed on the credit note.")


class TransitionSerializer(serializers.Serializer):
    to_status = OrderStatusField(source="to", read_only=True)
    label = CharField(read_only=True)
    needs_reason = BooleanField(read_only=True)
    needs_documents = BooleanField(read_only=True, help_text="Refused while a required document is not accepted.")


class StatusChangeSerializer(ModelSerializer):
    from_status = CharField(read_only=True, help_text="Empty for the order's creation.")
    to_status = OrderStatusField(read_only=True)
    actor = serializers.EmailField(source="actor.email", read_only=True, allow_null=True)

    class Meta:
        model = OrderStatusHistory
        fields = ["from_status", "to_status", "actor", "at", "comment", "override"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "format": "uri"})
class DownloadField(serializers.Field):
    """The API address that serves an uploaded file to those who may see its order; never a MEDIA link."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, file: OrderDocumentFile) -> str:
        # The view names the order all its files belong to, sparing a query per file.
        order_pk = self.context.get("order_pk") or file.document.order_id
        kwargs = {"order_pk": order_pk, "document_pk": file.document_id, "file_pk": file.pk}
        return reverse("order-document-file-download", kwargs=kwargs, request=self.context.get("request"))


class DocumentFileSerializer(ModelSerializer):
    uploaded_by = serializers.EmailField(source="uploaded_by.email", read_only=True)
    download = DownloadField()

    class Meta:
        model = OrderDocumentFile
        fields = ["id", "sequence", "original_name", "kind", "size", "sha256", "uploaded_by", "uploaded_at", "download"]
        read_only_fields = fields


class OrderDocumentSerializer(ModelSerializer):
    """One line of the order's documents checklist."""

    document_type = serializers.SlugRelatedField(slug_field="code", read_only=True)
    document_type_name = CharField(source="document_type.name", read_only=True)
    status = DocumentStatusField()
    current_file = DocumentFileSerializer(read_only=True, allow_null=True)
    reviewed_by = serializers.EmailField(source="reviewed_by.email", read_only=True, allow_null=True)

    class Meta:
        model = OrderDocument
        fields = [
            "id",
            "document_type",
            "document_type_name",
            "required",
            "status",
            "rejection_reason",
            "reviewed_by",
            "reviewed_at",
            "expires_on",
            "current_file",
        ]
        read_only_fields = fields


class OrderDocumentDetailSerializer(OrderDocumentSerializer):
    files = DocumentFileSerializer(many=True, read_only=True, help_text="Every upload, oldest first.")

    class Meta(OrderDocumentSerializer.Meta):
        fields = [*OrderDocumentSerializer.Meta.fields, "files"]
        read_only_fields = fields


class OrderSerializer(MoneyHidingMixin, ModelSerializer):
    money_fields = ("base_charge",)
    status = OrderStatusField(read_only=True)
    customer_name = CharField(source="customer.name", read_only=True)
    client_id = CharField(source="customer.client_id", read_only=True)
    partner_name = CharField(source="partner.name", read_only=True, allow_null=True)
    order_type = serializers.SlugRelatedField(slug_field="code", read_only=True)
    order_type_name = CharField(source="order_type.name", read_only=True)
    company_name = CharField(source="company.name", read_only=True, allow_null=True)
    fee = amount_out()
    base_charge = amount_out(allow_null=True, help_text=HIDDEN_MONEY)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    overdue = BooleanField(source="is_overdue", read_only=True, help_text="Open and past its due date.")
    settlement_status = serializers.SerializerMethodField(help_text=HIDDEN_SETTLEMENT)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "customer",
            "customer_name",
            "client_id",
            "partner",
            "partner_name",
            "order_type",
            "order_type_name",
            "company",
            "company_name",
            "currency",
            "fee",
            "base_charge",
            "assignee",
            "start_date",
            "due_date",
            "overdue",
            "started_at",
            "completed_at",
            "failed_at",
            "cancelled_at",
            "reason",
            "settlement_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OrderSettlementStatusField(allow_null=True))
    def get_settlement_status(self, order: Order) -> str | None:
        # The view prefetches the live settlements (orders.selectors.live_settlements_prefetch) for those who see
        # them; without the prefetch the caller does not see settlements.
        if not self.context.get("may_see_settlements") or not hasattr(order, "live_settlements"):
            return None
        return settlement_status_of(order.live_settlements).value


class OrderInvoicePaymentSerializer(ModelSerializer):
    """Money set against the order's invoice: a payment, or credit from a credit note on another invoice."""

    amount = amount_out(help_text="Negative when a payment's money was moved to another invoice.")
    received_at = serializers.SerializerMethodField()
    reference = serializers.SerializerMethodField(help_text="The bank reference, or the credit note's number.")

    class Meta:
        model = Allocation
        fields = ["amount", "payment", "credit_note", "received_at", "reference"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_received_at(self, allocation: Allocation):
        moment = allocation.payment.received_at if allocation.payment else allocation.credit_note.issued_at
        return serializers.DateTimeField().to_representation(moment)

    @extend_schema_field(OpenApiTypes.STR)
    def get_reference(self, allocation: Allocation) -> str:
        return allocation.payment.bank_reference if allocation.payment else allocation.credit_note.number


class OrderInvoiceSerializer(ModelSerializer):
    status = InvoiceStatusField()
    number = CharField(read_only=True, allow_null=True, help_text="Given at issue; null for a draft.")
    total = amount_out()
    amount_paid = amount_out()
    amount_credited = amount_out()
    outstanding = amount_out(help_text="Still owed: total less what was paid and credited.")
    payments = OrderInvoicePaymentSerializer(source="allocations", many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "total",
            "amount_paid",
            "amount_credited",
            "outstanding",
            "issued_at",
            "due_date",
            "payments",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    description = CharField(read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True, allow_null=True)
    documents = OrderDocumentSerializer(many=True, read_only=True, help_text="The documents checklist.")
    tasks_open = serializers.IntegerField(source="open_tasks", read_only=True, help_text="Tasks not done yet.")
    tasks_total = serializers.IntegerField(source="all_tasks", read_only=True)
    timeline = StatusChangeSerializer(source="status_history", many=True, read_only=True, help_text="Oldest first.")
    transitions = serializers.SerializerMethodField(
        help_text="Where the order may go next by a person's hand; each move is checked again."
    )
    payment_status = serializers.SerializerMethodField(
        help_text="Derived from the order's invoice. Null for callers who do not see it (Operations)."
    )
    invoice = serializers.SerializerMethodField(
        help_text="The invoice that bills the fee and base charge, with the money set against it. Null when there "
        "is none, and for callers who do not see payment status (Operations)."
    )

    class Meta(OrderSerializer.Meta):
        fields = [
            *OrderSerializer.Meta.fields,
            "description",
            "created_by",
            "documents",
            "tasks_open",
            "tasks_total",
            "timeline",
            "transitions",
            "payment_status",
            "invoice",
        ]
        read_only_fields = fields

    @extend_schema_field(PaymentStatusField(allow_null=True))
    def get_payment_status(self, order: Order) -> str | None:
        return order_payment_status(order).value if self.context.get("may_see_payment_status") else None

    @extend_schema_field(OrderInvoiceSerializer(allow_null=True))
    def get_invoice(self, order: Order) -> dict | None:
        if order.invoice is None or not self.context.get("may_see_payment_status"):
            return None
        return OrderInvoiceSerializer(order.invoice, context=self.context).data

    @extend_schema_field(TransitionSerializer(many=True))
    def get_transitions(self, order: Order) -> list[dict]:
        return TransitionSerializer(transitions_from(order.status), many=True).data


# --- Documents, tasks, comments, access -------------------------------------------------------------------------


class DocumentUploadSerializer(serializers.Serializer):
    document_type = serializers.SlugRelatedField(
        slug_field="code", queryset=DocumentType.objects.all(), help_text="The document type's code."
    )
    file = serializers.FileField(
        help_text="Its kind is read from its bytes and must be one the document type accepts, within its size; the "
        "name must be a plain file name whose extension agrees with the bytes."
    )


class DocumentReviewSerializer(serializers.Serializer):
    accept = BooleanField()
    reason = CharField(
        allow_blank=True, required=False, default="", help_text="Required to reject; the client sees it."
    )


class TaskSerializer(ModelSerializer):
    priority = TaskPriorityField(read_only=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    done_by = serializers.EmailField(source="done_by.email", read_only=True, allow_null=True)

    class Meta:
        model = Task
        fields = ["id", "title", "description", "assignee", "due_date", "priority", "done_at", "done_by", "created_at"]
        read_only_fields = fields


class TaskCreateSerializer(serializers.Serializer):
    title = CharField(max_length=200)
    description = CharField(allow_blank=True, required=False, default="")
    assignee = StaffUserField(allow_null=True, required=False)
    due_date = serializers.DateField(allow_null=True, required=False)
    priority = TaskPriorityField(required=False, default=Task.Priority.NORMAL)


class TaskUpdateSerializer(serializers.Serializer):
    title = CharField(max_length=200, required=False)
    description = CharField(allow_blank=True, required=False)
    assignee = StaffUserField(allow_null=True, required=False)
    due_date = serializers.DateField(allow_null=True, required=False)
    priority = TaskPriorityField(required=False)


class CommentAttachmentSerializer(ModelSerializer):
    class Meta:
        model = CommentAttachment
        fields = ["id", "original_name", "kind", "size", "sha256"]
        read_only_fields = fields


class CommentSerializer(ModelSerializer):
    author = serializers.EmailField(source="author.email", read_only=True)
    attachments = CommentAttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "body", "created_at", "attachments"]
        read_only_fields = fields


class CommentCreateSerializer(serializers.Serializer):
    body = CharField(max_length=10_000)


class CommentUploadSerializer(CommentCreateSerializer):
    attachments = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        default=list,
        help_text="Up to 5 files (PDF, JPEG, PNG, TIFF), each a plain file name whose extension agrees with its bytes.",
    )


class GrantSerializer(serializers.Serializer):
    user = StrictPrimaryKeyRelatedField(queryset=User.objects.all(), help_text="The user's id.")


# --- Revenue-share agreements -----------------------------------------------------------------------------------


class PercentageField(serializers.DecimalField):
    """A percentage from 0 to 100 with two decimals, given as text as the schema says (a decimal string): a JSON
    number is refused."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError('Give the percentage as text, e.g. "30.00".', code="invalid")
        return super().to_internal_value(data)


class RevenueShareAgreementSerializer(ModelSerializer):
    """A partner's share of an order's net revenue over a period (both ends inclusive); without an order type, the
    partner's general agreement, which an agreement for the order's type beats."""

    partner = StrictPrimaryKeyRelatedField(queryset=Partner.objects.all(), help_text="The partner's id.")
    partner_name = CharField(source="partner.name", read_only=True)
    order_type = serializers.SlugRelatedField(
        slug_field="code",
        queryset=OrderType.objects.all(),
        allow_null=True,
        required=False,
        help_text="The order type's code; null or left out: the partner's general agreement.",
    )

    percentage = PercentageField(help_text="The partner's share of an order's net revenue, in per cent.")

    class Meta:
        model = RevenueShareAgreement
        fields = ["id", "partner", "partner_name", "order_type", "percentage", "valid_from", "valid_to", "created_at"]
        read_only_fields = ["id", "partner_name", "created_at"]
        validators = []


class RevenueShareAgreementUpdateSerializer(serializers.Serializer):
    """Corrects an agreement's terms; its partner and order type stay."""

    percentage = PercentageField(required=False)
    valid_from = serializers.DateField(required=False)
    valid_to = serializers.DateField(allow_null=True, required=False, help_text="Last day in force; null: open-ended.")


# --- Expenses ---------------------------------------------------------------------------------------------------

ExpenseCategoryField = enum_field(Expense.Category, "ExpenseCategoryEnum")


@extend_schema_field({"type": "string", "format": "uri", "nullable": True})
class ReceiptDownloadField(serializers.Field):
    """The API address that serves an expense's receipt to those who may see expenses; null without a receipt."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, expense: Expense) -> str | None:
        if not expense.receipt:
            return None
        kwargs = {"order_pk": expense.order_id, "expense_pk": expense.pk}
        return reverse("order-expense-receipt", kwargs=kwargs, request=self.context.get("request"))


class ExpenseSerializer(ModelSerializer):
    amount = amount_out(help_text="Positive; a reversing expense holds the amount it reverses, negated.")
    category = ExpenseCategoryField(read_only=True)
    receipt = ReceiptDownloadField()
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    reversed_by = serializers.SerializerMethodField(help_text="The reversing expense's id, once reversed.")

    class Meta:
        model = Expense
        fields = [
            "id",
            "order",
            "amount",
            "currency",
            "date",
            "payee",
            "category",
            "reference",
            "paid",
            "receipt",
            "receipt_name",
            "receipt_kind",
            "reverses",
            "reversed_by",
            "reason",
            "ledger_transaction",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_reversed_by(self, expense: Expense) -> int | None:
        reversal = getattr(expense, "reversed_by", None)
        return reversal.pk if reversal is not None else None


class ExpenseCreateSerializer(serializers.Serializer):
    amount = AmountField(min_value=Decimal(0), help_text="Greater than zero, two decimals, in the order's currency.")
    currency = CharField(
        required=False, help_text="Leave out, or give the order's currency: an expense in another is refused."
    )
    date = serializers.DateField(help_text="When the cost was incurred: from 2000-01-01 to tomorrow.")
    payee = CharField(max_length=200)
    category = ExpenseCategoryField()
    reference = CharField(max_length=100, allow_blank=True, required=False, default="")
    paid = BooleanField(
        required=False, default=True, help_text="true: paid from cash now; false: owed to the supplier."
    )


class ExpenseUploadSerializer(ExpenseCreateSerializer):
    receipt = serializers.FileField(
        required=False,
        help_text="PDF, JPEG or PNG, read from its bytes; a plain file name whose extension agrees with them.",
    )


class ExpenseReverseSerializer(serializers.Serializer):
    reason = CharField(max_length=2000, help_text="Why the expense is corrected; kept with the reversing expense.")


# --- Settlements ------------------------------------------------------------------------------------------------


class SettlementSerializer(ModelSerializer):
    """A partner's share of an ended order: sequence 1 is the order's settlement, more are corrections, each
    carrying the difference (`amount`, signed) from what the order's earlier settlements gave."""

    order_number = CharField(source="order.number", read_only=True)
    partner_name = CharField(source="partner.name", read_only=True)
    order_type = CharField(source="order.order_type.code", read_only=True)
    order_type_name = CharField(source="order.order_type.name", read_only=True)
    kind = serializers.SerializerMethodField(help_text="`settlement` (sequence 1) or `correction`.")
    status = SettlementStatusField()
    net = amount_out(help_text="Received, less credit notes and expenses, tax excluded; never below 0.00.")
    percentage = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)
    share = amount_out(help_text="The partner's whole share of the order at this calculation.")
    amount = amount_out(help_text="What this settlement adds: the share less what earlier settlements gave.")

    class Meta:
        model = Settlement
        fields = [
            "id",
            "order",
            "order_number",
            "partner",
            "partner_name",
            "order_type",
            "order_type_name",
            "sequence",
            "kind",
            "status",
            "currency",
            "net",
            "percentage",
            "share",
            "amount",
            "agreement",
            "calculated_at",
            "approved_at",
            "paid_at",
            "payout",
            "voided_at",
            "void_reason",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": ["settlement", "correction"]})
    def get_kind(self, settlement: Settlement) -> str:
        return "correction" if settlement.is_correction else "settlement"


class SettlementApprovalActionSerializer(ApprovalActionSerializer):
    attachment = None  # settlements' approvals take no attachments

    class Meta(ApprovalActionSerializer.Meta):
        fields = [field for field in ApprovalActionSerializer.Meta.fields if field != "attachment"]
        read_only_fields = fields
        extra_kwargs = {
            "request": {"help_text": "The approval request it belongs to."},
            "reverts": {"help_text": "For a revert: the approval or rejection it took back."},
        }


class SettlementDetailSerializer(SettlementSerializer):
    """A settlement with its whole calculation and its approval. The approval fields read `approval_state` (an
    approvals.selectors.ApprovalState) that the view sets on the settlement."""

    calculation = serializers.JSONField(
        read_only=True,
        help_text="Every input, as calculated: fee_billed, fee_tax_rate, base_charge_billed, fee_credited, "
        "base_charge_credited, owed_after_credit_notes, paid, fee_received_with_tax, fee_received, "
        "base_charge_received, expenses, net, percentage, share (strings with two decimals), the invoice's number, "
        "the day the order ended (`ended_on`) and the `agreement` used.",
    )
    calculated_by = serializers.EmailField(
        source="calculated_by.email", read_only=True, allow_null=True, help_text="Null: a scheduled job."
    )
    approved_by = serializers.EmailField(source="approved_by.email", read_only=True, allow_null=True)
    approval = InvoiceApprovalSerializer(
        source="approval_state.current",
        read_only=True,
        allow_null=True,
        help_text="The current approval request; null once none is open (a void settlement's was withdrawn).",
    )
    approval_allowed = ApprovalAllowedSerializer(source="approval_state", read_only=True)
    approval_history = SettlementApprovalActionSerializer(
        source="approval_state.actions", many=True, read_only=True, help_text="Every action, oldest first."
    )

    class Meta(SettlementSerializer.Meta):
        fields = [
            *SettlementSerializer.Meta.fields,
            "calculation",
            "calculated_by",
            "approved_by",
            "approval",
            "approval_allowed",
            "approval_history",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        if not hasattr(instance, "approval_state"):
            instance.approval_state = ApprovalState()
        return super().to_representation(instance)


class SettleResultSerializer(serializers.Serializer):
    changed = BooleanField(read_only=True, help_text="False: nothing changed, nothing was written.")
    message = CharField(read_only=True)
    settlement_status = OrderSettlementStatusField()
    settlement = SettlementDetailSerializer(
        read_only=True, allow_null=True, help_text="The new settlement; null when nothing changed."
    )
