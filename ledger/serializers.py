"""Shapes of the ledger API. Inputs are plain serializers that the services check further; outputs are read-only.

Money is a string with two decimals (DRF's DecimalField), unit prices and quantities with six.
"""

from decimal import Decimal

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from approvals.models import ApprovalAction, ApprovalRequest
from billing_project import money
from billing_project.api_fields import (
    AmountField,
    BooleanField,
    CharField,
    EmailField,
    ModelSerializer,
    QuantityField,
    StrictPrimaryKeyRelatedField,
    UnitPriceField,
    URLField,
)
from billing_project.billing_time import billing_zone
from catalog.models import Customer, Service
from catalog.selectors import customer_list_for
from ledger.models import Account, Allocation, CreditNote, Invoice, InvoiceItem, Leg, Payment, Transaction
from ledger.selectors import invoice_list_for


def amount_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, **kwargs
    )


def balance_field(**kwargs) -> serializers.DecimalField:
    """An account's running balance, as wide as its column (ledger.models.balance_field)."""
    return serializers.DecimalField(
        max_digits=money.BALANCE_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, **kwargs
    )


def enum_field(choices: type[models.TextChoices], component_name: str) -> type[serializers.ChoiceField]:
    """A read-only choice field published as its own OpenAPI enum component.

    `status` and `kind` name different choice sets across the API (customers, uploads, invoices, transactions);
    drf-spectacular would otherwise name them by a hash of their values, with a warning.
    """

    @extend_schema_field({"type": "string", "enum": list(choices.values)}, component_name=component_name)
    class EnumField(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices.choices, read_only=True, **kwargs)

    EnumField.__name__ = EnumField.__qualname__ = component_name.removesuffix("Enum") + "Field"
    return EnumField


InvoiceStatusField = enum_field(Invoice.Status, "InvoiceStatusEnum")
InvoiceKindField = enum_field(Invoice.Kind, "InvoiceKindEnum")
TransactionKindField = enum_field(Transaction.Kind, "TransactionKindEnum")
ApprovalStatusField = enum_field(ApprovalRequest.Status, "ApprovalStatusEnum")
ApprovalActionKindField = enum_field(ApprovalAction.Kind, "ApprovalActionKindEnum")


@extend_schema_field(OpenApiTypes.INT)
class VisibleCustomerField(StrictPrimaryKeyRelatedField):
    """A customer id among those the caller may see; any other id is reported as not existing."""

    def get_queryset(self):
        request = self.context.get("request")
        return customer_list_for(request.user) if request is not None else Customer.objects.none()


@extend_schema_field(OpenApiTypes.INT)
class VisibleInvoiceField(StrictPrimaryKeyRelatedField):
    """An invoice id among those the caller may see; any other id is reported as not existing."""

    def get_queryset(self):
        request = self.context.get("request")
        return invoice_list_for(request.user) if request is not None else Invoice.objects.none()


class BillingDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime; one without an offset is read in BILLING_TIME_ZONE, as usage times are."""

    def default_timezone(self):
        return billing_zone()


# --- Inputs ---------------------------------------------------------------------------------------------------


class InvoiceDraftCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField(help_text="Customer id.")
    period = serializers.DateField(
        input_formats=["%Y-%m", "iso-8601"], help_text="Billing month, YYYY-MM (a full date is read as its month)."
    )


class InvoiceIssueSerializer(serializers.Serializer):
    send = BooleanField(default=True, help_text="Email the PDF to the customer once issued.")


class CreditNoteCreateSerializer(serializers.Serializer):
    reason = CharField(max_length=500)
    amount = AmountField(
        required=False,
        allow_null=True,
        help_text="Tax included. Leave out to credit the whole invoice (it becomes void).",
    )


class ApprovalNoteSerializer(serializers.Serializer):
    """Submitting or approving: a comment is optional."""

    comment = CharField(
        required=False, allow_blank=True, default="", help_text="Optional; kept in the approval's history."
    )


class ApprovalReasonSerializer(serializers.Serializer):
    """Rejecting or reverting: the comment says why."""

    # Not required here on purpose: the approvals service refuses a missing or blank comment with the one code
    # `comment_required`; this serializer would refuse a missing one with another.
    comment = CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Required: why. Missing or blank answers 400 `comment_required`.",
    )


class ApprovalRerouteSerializer(ApprovalReasonSerializer):
    """Re-routing (an Admin): the route, one of `approval_allowed.reroute_routes`, and why."""

    route = CharField(
        max_length=64,
        help_text="The key of one of the routes in `approval_allowed.reroute_routes`, e.g. `cs_or_sales` or "
        "`approver:12`. Any other answers 400 `unknown_route`.",
    )


class PaymentCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField(help_text="Customer id; the payment is in the customer's currency.")
    amount = AmountField(help_text="At most MAX_AMOUNT (by default 1,000,000,000.00).")
    received_at = BillingDateTimeField(help_text="ISO 8601; without an offset, in BILLING_TIME_ZONE.")
    bank_reference = CharField(
        max_length=140, help_text="The bank line's reference; a line is booked once per customer."
    )
    method = serializers.ChoiceField(choices=Payment.Method.choices, default=Payment.Method.BANK_TRANSFER)
    note = CharField(max_length=500, allow_blank=True, default="")
    invoice = VisibleInvoiceField(
        required=False,
        allow_null=True,
        help_text="Optional: the invoice the payment is for (an issued or overdue invoice of the customer, in its "
        "currency); it is paid first. Without it, or for what it does not need, the oldest open invoices are paid "
        "first and any excess stays as credit.",
    )
    currency = serializers.ChoiceField(
        choices=money.CURRENCY_CHOICES,
        required=False,
        help_text="Optional: when given it must be the customer's currency; a payment in another is refused.",
    )


class PaymentReallocateSerializer(serializers.Serializer):
    invoice = VisibleInvoiceField(
        help_text="The open invoice (issued or overdue) of the payment's customer to set the money against."
    )
    from_invoice = VisibleInvoiceField(
        required=False,
        allow_null=True,
        help_text="The invoice the payment's money leaves (one it is set against, issued, overdue or paid). "
        "Leave out to use the payment's unallocated part.",
    )
    amount = AmountField(
        required=False,
        allow_null=True,
        help_text="Leave out to move as much as fits: what is available, up to what the invoice still owes.",
    )


# --- Outputs --------------------------------------------------------------------------------------------------


class InvoiceItemSerializer(ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = InvoiceItem
        fields = [
            "id",
            "position",
            "source",
            "description",
            "service",
            "quantity",
            "unit_price",
            "amount",
            "tax_rate",
            "tax_amount",
        ]
        read_only_fields = fields


class CreditNoteSerializer(ModelSerializer):
    invoice_number = CharField(source="invoice.number", read_only=True)

    class Meta:
        model = CreditNote
        fields = [
            "id",
            "number",
            "invoice",
            "invoice_number",
            "customer",
            "currency",
            "subtotal",
            "tax",
            "total",
            "unallocated",
            "reason",
            "full",
            "issued_at",
        ]
        read_only_fields = fields


class AllocationSerializer(ModelSerializer):
    """Part of a payment, or of a credit note's excess, set against an invoice."""

    invoice_number = CharField(source="invoice.number", read_only=True)

    class Meta:
        model = Allocation
        fields = ["id", "invoice", "invoice_number", "payment", "credit_note", "amount", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "amount": {
                "help_text": "Negative: taken back from the invoice when the payment moved to another; rows are "
                "never changed, so a payment's or an invoice's allocations add up to what is set against it."
            }
        }


class InvoiceSerializer(ModelSerializer):
    kind = InvoiceKindField()
    status = InvoiceStatusField()
    client_id = CharField(source="customer.client_id", read_only=True)
    outstanding = amount_field(read_only=True, help_text="Total less credit notes and payments.")

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "customer",
            "client_id",
            "kind",
            "period",
            "status",
            "currency",
            "subtotal",
            "tax",
            "total",
            "amount_credited",
            "amount_paid",
            "outstanding",
            "issued_at",
            "due_date",
            "paid_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ApprovalStepSerializer(serializers.Serializer):
    """One approval a request needs: from one of `users`, or from anyone holding one of the roles in `groups`."""

    name = CharField(read_only=True)
    label = CharField(read_only=True)
    users = serializers.ListField(child=serializers.IntegerField(), read_only=True, help_text="User ids.")
    groups = serializers.ListField(child=CharField(), read_only=True, help_text="Role names.")


class ApprovalRuleSerializer(serializers.Serializer):
    """The customer's approval rule as it was when the request was opened; later changes do not alter it."""

    name = CharField(read_only=True)
    label = CharField(read_only=True)
    amount = amount_field(read_only=True, allow_null=True, help_text="The invoice's total when submitted.")
    sales_approval_above = amount_field(
        read_only=True, allow_null=True, help_text="Above this total a Sales approval was needed as well."
    )
    steps = ApprovalStepSerializer(many=True, read_only=True)


class InvoiceApprovalSerializer(ModelSerializer):
    """The invoice's current approval request (pending, approved or rejected)."""

    status = ApprovalStatusField()
    rule = ApprovalRuleSerializer(read_only=True)
    opened_by = EmailField(
        source="opened_by.email", read_only=True, allow_null=True, help_text="Null when month-end submitted it."
    )

    class Meta:
        model = ApprovalRequest
        fields = ["id", "status", "summary", "rule", "opened_by", "opened_at", "decided_at"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "format": "uri", "nullable": True})
class ApprovalAttachmentField(serializers.Field):
    """The API address that serves an action's attachment to those who may see the invoice; never a MEDIA link."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, action: ApprovalAction) -> str | None:
        if not action.attachment:
            return None
        kwargs = {"pk": action.request.target_id, "action_id": action.pk}
        return reverse("invoice-approval-attachment", kwargs=kwargs, request=self.context.get("request"))


class ApprovalActionSerializer(ModelSerializer):
    """One entry of the approval history: submitted, approved, rejected, commented, reverted, withdrawn or
    re-routed."""

    action = ApprovalActionKindField(source="kind")
    actor = EmailField(
        source="actor.email", read_only=True, allow_null=True, help_text="Null for a scheduled job (month-end)."
    )
    attachment = ApprovalAttachmentField(help_text="Where to download the attached file; null without one.")

    class Meta:
        model = ApprovalAction
        fields = [
            "id",
            "request",
            "action",
            "step",
            "actor",
            "comment",
            "attachment",
            "reverts",
            "old_rule",
            "new_rule",
            "at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "request": {"help_text": "The approval request it belongs to; a resubmitted invoice has several."},
            "reverts": {"help_text": "For a revert: the approval or rejection it took back."},
        }

    old_rule = ApprovalRuleSerializer(read_only=True, allow_null=True, help_text="For a re-route: the rule before.")
    new_rule = ApprovalRuleSerializer(read_only=True, allow_null=True, help_text="For a re-route: the rule since.")


class RerouteRouteSerializer(serializers.Serializer):
    route = CharField(read_only=True, help_text="What to send as `route` to …/reroute.")
    label = CharField(read_only=True, help_text="Who would approve on that route.")

    def to_representation(self, instance: tuple[str, str]) -> dict:
        return {"route": instance[0], "label": instance[1]}


class ApprovalAllowedSerializer(serializers.Serializer):
    """What the caller may do now on the current request: hints for a client's buttons; each call is checked again."""

    approve = BooleanField(source="may_approve", read_only=True)
    reject = BooleanField(source="may_reject", read_only=True)
    revert = BooleanField(source="may_revert", read_only=True)
    reroute = BooleanField(
        source="may_reroute", read_only=True, help_text="An Admin, with at least one route someone can approve."
    )
    reroute_routes = RerouteRouteSerializer(
        source="reroutes",
        many=True,
        read_only=True,
        help_text="The routes the caller may re-route the pending request to; empty for anyone but an Admin.",
    )
    blocked = CharField(
        read_only=True,
        allow_null=True,
        help_text="Why nobody can give an approval the pending request waits for, and what to fix; null when "
        "someone can.",
    )


class InvoiceDetailSerializer(InvoiceSerializer):
    """An invoice with its lines, credit notes, allocations, and (for staff) its approval.

    The approval fields read `approval_state` (an approvals.selectors.ApprovalState) that the view sets on the
    invoice. Approvals are internal: a portal user gets them empty.
    """

    items = InvoiceItemSerializer(many=True, read_only=True)
    credit_notes = CreditNoteSerializer(many=True, read_only=True)
    allocations = AllocationSerializer(many=True, read_only=True)
    approval = InvoiceApprovalSerializer(
        source="approval_state.current",
        read_only=True,
        allow_null=True,
        help_text="The current approval request; null when none is open (never submitted, no approval needed, "
        "withdrawn) and for portal users.",
    )
    approval_allowed = ApprovalAllowedSerializer(source="approval_state", read_only=True)
    approval_history = ApprovalActionSerializer(
        source="approval_state.actions",
        many=True,
        read_only=True,
        help_text="Every action of every approval request of the invoice, oldest first; empty for portal users.",
    )

    class Meta(InvoiceSerializer.Meta):
        fields = [
            *InvoiceSerializer.Meta.fields,
            "items",
            "credit_notes",
            "allocations",
            "approval",
            "approval_allowed",
            "approval_history",
        ]
        read_only_fields = fields


class InvoiceSubmitResultSerializer(serializers.Serializer):
    approval_required = BooleanField(
        read_only=True, help_text="False: the customer's rule needs no approval; the draft can be issued as it is."
    )
    message = CharField(read_only=True)
    invoice = InvoiceDetailSerializer(read_only=True)


class PaymentSerializer(ModelSerializer):
    client_id = CharField(source="customer.client_id", read_only=True)
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "customer",
            "client_id",
            "method",
            "amount",
            "currency",
            "received_at",
            "bank_reference",
            "unallocated",
            "note",
            "allocations",
            "created_at",
        ]
        read_only_fields = fields


class LegSerializer(ModelSerializer):
    account = CharField(source="account.code", read_only=True, help_text="The account's code.")
    account_kind = serializers.ChoiceField(source="account.kind", choices=Account.Kind.choices, read_only=True)

    class Meta:
        model = Leg
        fields = ["account", "account_kind", "debit", "credit", "balance_after"]
        read_only_fields = fields


class TransactionSerializer(ModelSerializer):
    kind = TransactionKindField()
    client_id = CharField(source="customer.client_id", read_only=True, allow_null=True)
    legs = LegSerializer(
        many=True,
        read_only=True,
        help_text="All legs for those who see the whole chart of accounts; otherwise the legs on the receivable "
        "accounts of the caller's customers.",
    )

    class Meta:
        model = Transaction
        fields = ["id", "kind", "description", "reference", "currency", "customer", "client_id", "created_at", "legs"]
        read_only_fields = fields


class BalanceSerializer(ModelSerializer):
    """A customer's receivable account: positive, the customer owes; negative, the customer holds credit."""

    customer = serializers.IntegerField(source="customer_id", read_only=True, help_text="Customer id.")
    client_id = CharField(source="customer.client_id", read_only=True)
    name = CharField(source="customer.name", read_only=True)

    class Meta:
        model = Account
        fields = ["customer", "client_id", "name", "currency", "balance"]
        read_only_fields = fields


class StatementLineSerializer(serializers.Serializer):
    date = serializers.DateTimeField(read_only=True)
    kind = TransactionKindField()
    kind_label = CharField(read_only=True)
    reference = CharField(read_only=True)
    description = CharField(read_only=True)
    amount = amount_field(read_only=True, help_text="Positive: the customer owes more; negative: less.")
    balance_after = balance_field(read_only=True)


class StatementSerializer(serializers.Serializer):
    """A customer's statement: every movement on its receivable account, oldest first."""

    customer = serializers.IntegerField(source="customer.pk", read_only=True)
    client_id = CharField(source="customer.client_id", read_only=True)
    currency = CharField(source="customer.currency", read_only=True)
    balance = balance_field(read_only=True, help_text="Positive: the customer owes; negative: it holds credit.")
    lines = StatementLineSerializer(many=True, read_only=True)


class StatementPageSerializer(StatementSerializer):
    """A page of the statement: `count`, `next` and `previous` as on every list, and the balance the page's
    lines start from."""

    count = serializers.IntegerField(read_only=True, help_text="Lines in the whole statement.")
    next = URLField(read_only=True, allow_null=True)
    previous = URLField(read_only=True, allow_null=True)
    opening_balance = balance_field(
        read_only=True, allow_null=True, help_text="The balance before the page's first line; null on an empty page."
    )


class PriceQuoteQuerySerializer(serializers.Serializer):
    """The price calculator's question (GET parameters): a customer, a service, a month and a quantity."""

    customer = StrictPrimaryKeyRelatedField(queryset=Customer.objects.none(), help_text="The customer's id.")
    service = serializers.SlugRelatedField(
        slug_field="code", queryset=Service.objects.all(), help_text="The service's code."
    )
    month = serializers.DateField(input_formats=["%Y-%m"], help_text="The billing month, as YYYY-MM.")
    quantity = QuantityField(min_value=Decimal(0), help_text="Units used in the month, before the allowance.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = customer_list_for(request.user)


class QuoteLineSerializer(serializers.Serializer):
    description = CharField()
    quantity = QuantityField()
    unit_price = UnitPriceField()
    amount = AmountField()
    tax_amount = AmountField()


class PriceQuoteSerializer(serializers.Serializer):
    """The lines and totals the quantity would bill, as month-end would rate and tax them."""

    customer = serializers.IntegerField(source="customer.pk")
    service = CharField(source="service.code")
    month = serializers.DateField(source="period", format="%Y-%m")
    quantity = QuantityField()
    currency = CharField(source="customer.currency")
    pricing_model = CharField(source="agreement.pricing_model")
    lines = QuoteLineSerializer(source="invoice.items", many=True)
    subtotal = AmountField(source="invoice.subtotal")
    tax = AmountField(source="invoice.tax")
    total = AmountField(source="invoice.total")
    minimum_commitment = AmountField(
        source="commitment.amount",
        allow_null=True,
        default=None,
        help_text="The customer's monthly minimum over all its services, when one is in force (not added here).",
    )
