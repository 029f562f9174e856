"""Partner settlements in the admin (DESIGN.md, "Settlements"): the list, and a page per settlement with its
calculation, its approval and the buttons that decide it.

Settlements are never edited: nothing is added, changed or deleted here. Approve and Reject call
approvals.services (maker-checker is theirs: whoever calculated a settlement is refused with a message);
"Calculate again" calls orders.services.settlements.order_settle on its order. Only Finance and Admin
(orders.view_settlement) see settlements (orders.selectors.settlement_list_for).
"""

from datetime import date
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import action, display
from unfold.enums import ActionVariant

from approvals.forms import CommentRequiredForm, DecisionForm
from approvals.models import ApprovalRequest
from approvals.selectors import ApprovalState, approval_state_for
from approvals.services import approval_approve, approval_reject, request_for
from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import CheckedDateHierarchyMixin, ServiceButtonsMixin, back_to
from billing_project.errors import Conflict, DomainError
from billing_project.formatting import day, moment, percent, percentage
from ledger.forms import money_label
from orders.models import Order, Settlement
from orders.selectors import settlement_list_for, settlement_may_see, settlement_page
from orders.services.settlements import ENDED, order_settle, settlement_explanation

SETTLEMENT_COLOURS = {
    Settlement.Status.CALCULATED: "warning",
    Settlement.Status.APPROVED: "info",
    Settlement.Status.PAID: "success",
    Settlement.Status.VOID: "default",
}

# The calculation's inputs as its page lists them, in the order they are used (orders.services.settlements).
MONEY, RATE = "money", "rate"
CALCULATION_ROWS = [
    ("fee_billed", "Fee billed (before tax)", MONEY),
    ("fee_tax_rate", "Tax rate on the fee", RATE),
    ("base_charge_billed", "Base charge billed (a disbursement, no tax)", MONEY),
    ("fee_credited", "Fee credited by credit notes (before tax)", MONEY),
    ("base_charge_credited", "Base charge credited by credit notes", MONEY),
    ("owed_after_credit_notes", "Owed after credit notes (tax included)", MONEY),
    ("paid", "Paid by the client on the invoice", MONEY),
    ("fee_received_with_tax", "Fee received (tax included)", MONEY),
    ("fee_received", "Fee received (tax left out)", MONEY),
    ("base_charge_received", "Base charge received", MONEY),
    ("expenses", "Expenses of the order", MONEY),
    ("net", "Net revenue (received less expenses, never below 0.00)", MONEY),
    ("percentage", "Partner's percentage (the agreement's)", "percent"),
    ("share", "Partner share (net × percentage, rounded half up)", MONEY),
]


def settlement_kind(settlement: Settlement) -> str:
    return settlement.kind_label


def day_label(value) -> str:
    """A date (or an ISO date string from a calculation) as the admin writes dates: 3 Dec 2026."""
    if not value:
        return "—"
    return day(date.fromisoformat(value) if isinstance(value, str) else value)


def ended_text(calculation: dict) -> str:
    """What the order did and when, from the calculation: "completed on 3 Dec 2026"."""
    status = calculation.get("order_status")
    label = Order.Status(status).label.lower() if status in Order.Status.values else "ended"
    return f"{label} on {day_label(calculation.get('ended_on'))}"


def agreement_label(calculation: dict) -> str:
    agreement = calculation.get("agreement") or {}
    applies_to = agreement.get("order_type") or "all order types (general)"
    end = day_label(agreement.get("valid_to")) if agreement.get("valid_to") else "open-ended"
    shown = percentage(Decimal(str(agreement["percentage"]))) if agreement.get("percentage") is not None else "—"
    return f"{shown} · {applies_to} · {day_label(agreement.get('valid_from'))} – {end}"


def agreement_short(calculation: dict) -> tuple[str, str]:
    """The agreement in a table cell: what it applies to, and since when."""
    agreement = calculation.get("agreement") or {}
    end = f" to {day_label(agreement.get('valid_to'))}" if agreement.get("valid_to") else ""
    return agreement.get("order_type") or "General", f"from {day_label(agreement.get('valid_from'))}{end}"


def calculation_rows(settlement: Settlement) -> list[dict]:
    """The calculation's inputs as (label, value) rows, money with its currency; then what this settlement adds."""
    calculation, currency = settlement.calculation, settlement.currency
    rows = []
    for key, label, kind in CALCULATION_ROWS:
        if key not in calculation:
            continue
        value = Decimal(str(calculation[key]))
        if kind == MONEY:
            text = money_label(value, currency)
        elif kind == RATE:
            text = percent(value)
        else:
            text = percentage(value)
        rows.append({"key": key, "label": label, "value": text, "total": key in ("net", "share")})
    given = settlement.share - settlement.amount
    if settlement.is_correction or given:
        rows.append(
            {"key": "given", "label": "Given by the order's earlier settlements", "value": money_label(given, currency)}
        )
    rows.append(
        {
            "key": "amount",
            "label": "This settlement adds",
            "value": money_label(settlement.amount, currency),
            "total": True,
        }
    )
    return rows


def settlement_url(settlement: Settlement) -> str:
    return reverse("admin:orders_settlement_change", args=[settlement.pk])


def settle_again_message(order: Order, settlement: Settlement | None) -> tuple[str, int]:
    """What "Calculate again" tells the user: the new settlement, or why nothing changed."""
    if settlement is not None:
        return (
            f"{settlement} calculated for {settlement.partner.name}: "
            f"{money_label(settlement.amount, settlement.currency)}; another Finance user approves it.",
            messages.SUCCESS,
        )
    explanation = settlement_explanation(order)
    if explanation is not None:
        return f"No settlement: {explanation.reason}", messages.WARNING
    return f"Nothing changed: {order.number}'s settlements already match its money.", messages.INFO


SETTLEMENT_DIALOGS = {
    "approve": {
        "title": "Approve this settlement?",
        "description": "The partner's share is posted to its payable at once, and the settlement waits for a "
        "payout batch. You cannot approve a settlement your own action calculated.",
        "form_class": DecisionForm,
        "form_submit_text": "Approve",
    },
    "reject": {
        "title": "Reject this settlement?",
        "description": "It becomes void; once what was wrong is fixed (an expense reversed, the agreement "
        "corrected), “Calculate again” makes a new one.",
        "form_class": CommentRequiredForm,
        "form_submit_text": "Reject",
    },
    "calculate_again": {
        "title": "Calculate the order's settlement again?",
        "description": "From the order's invoice, credit notes, payments and expenses now. Nothing is written when "
        "nothing changed; a settlement not yet approved is replaced, an approved one is corrected by a new one.",
        "form_submit_text": "Calculate again",
    },
}


@admin.register(Settlement)
class SettlementAdmin(
    ServiceButtonsMixin, CheckedDateHierarchyMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin
):
    """Every settlement Finance and Admin may see, read-only; approval and recalculation are buttons."""

    list_display = [
        "settlement_label",
        "partner_name",
        "order_type_name",
        "status_label",
        "amount_label",
        "calculated_on",
    ]
    list_filter = [("partner", RelatedDropdownFilter), "status", "currency"]
    list_filter_submit = True
    list_select_related = ["order", "order__order_type", "partner"]
    search_fields = ["order__number", "partner__name"]
    search_help_text = "Order number or partner name"
    date_hierarchy = "calculated_at"
    ordering = ["-calculated_at", "-id"]
    show_full_result_count = False
    actions_detail = ["approve", "reject", "calculate_again"]
    change_form_after_template = "orders/settlement_after_form.html"
    fieldsets = [
        (None, {"fields": ["order_link", "partner_name", "order_type_name", "kind", "status_badge"]}),
        ("Amounts", {"fields": ["amount_label", "share_label", "net_label", "percentage_label"]}),
        ("Record", {"fields": ["ended_on", "calculated", "approved", "paid", "voided"]}),
    ]

    def get_queryset(self, request):
        return settlement_list_for(request.user)

    def get_object(self, request, object_id, from_field=None):
        cache = request.__dict__.setdefault("_settlement_pages", {})
        if object_id not in cache:
            cache[object_id] = settlement_page(request.user, object_id)
        return cache[object_id]

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    def has_view_permission(self, request, obj=None) -> bool:
        return settlement_may_see(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # settlements are never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_decide_permission(self, request, object_id=None) -> bool:
        # Approve and reject: approvals.services decides each decision itself (the rule's roles, maker-checker).
        return settlement_may_see(request.user) and request.user.has_perm("approvals.view_approvalrequest")

    def has_settle_permission(self, request, object_id=None) -> bool:
        return settlement_may_see(request.user) and request.user.has_perm("orders.add_settlement")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        settlement = self.get_object(request, unquote(object_id))
        if settlement is None:
            raise Http404("No such settlement.")  # someone else's, or a role that sees none: a 404
        title = f"{settlement.order.number} · {settlement_kind(settlement)}"
        return super().change_view(request, object_id, form_url, (extra_context or {}) | {"title": title})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context |= {
                "settlement": obj,
                "calculation_rows": calculation_rows(obj),
                "calculation_invoice": obj.calculation.get("invoice"),
                "ended_text": ended_text(obj.calculation),
                "agreement_text": agreement_label(obj.calculation),
                "agreement_url": reverse("admin:orders_revenueshareagreement_change", args=[obj.agreement_id]),
                "approval": self._approval_state(request, obj),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _approval_state(self, request, settlement: Settlement) -> ApprovalState:
        """The settlement's approval timeline and what the user may decide, read once per page."""
        cache = request.__dict__.setdefault("_settlement_approval_states", {})
        if settlement.pk not in cache:
            cache[settlement.pk] = approval_state_for(settlement, request.user)
        return cache[settlement.pk]

    def get_actions_detail(self, request, object_id):
        settlement = self.get_object(request, unquote(object_id))
        if settlement is None:
            return []
        state = self._approval_state(request, settlement)
        offered = {
            "approve": state.may_approve,
            "reject": state.may_reject,
            "calculate_again": settlement.order.status in ENDED,
        }
        return [
            detail_action
            for detail_action in super().get_actions_detail(request, object_id)
            if offered.get(detail_action.method.original_function_name, True)
        ]

    # Columns and fields ----------------------------------------------------------------------------------------

    @display(description="Settlement", ordering="order__number")
    def settlement_label(self, settlement: Settlement) -> str:
        return format_html(
            '<span class="whitespace-nowrap font-medium">{}</span> <span class="opacity-70">{}</span>',
            settlement.order.number,
            settlement_kind(settlement),
        )

    @display(description="Order")
    def order_link(self, settlement: Settlement) -> str:
        order = settlement.order
        return format_html(
            '<a class="text-primary-600 font-medium" href="{}#settlement">{}</a> · {} · {}',
            reverse("admin:orders_order_change", args=[order.pk]),
            order.number,
            order.customer.name,
            order.get_status_display(),
        )

    @display(description="Partner", ordering="partner__name")
    def partner_name(self, settlement: Settlement) -> str:
        return settlement.partner.name

    @display(description="Order type", ordering="order__order_type__name")
    def order_type_name(self, settlement: Settlement) -> str:
        return settlement.order.order_type.name

    @display(description="Kind")
    def kind(self, settlement: Settlement) -> str:
        if settlement.is_correction:
            return f"{settlement_kind(settlement)}: the difference from the order's earlier settlements"
        return "Settlement: the order's first"

    @display(description="Status", ordering="status", label=SETTLEMENT_COLOURS)
    def status_label(self, settlement: Settlement) -> tuple[str, str]:
        return settlement.status, settlement.get_status_display()

    @display(description="Status")
    def status_badge(self, settlement: Settlement) -> str:
        # The page's field: unfold's `label` display renders in lists only.
        return render_to_string(
            "unfold/helpers/label.html",
            {"text": settlement.get_status_display(), "type": SETTLEMENT_COLOURS[settlement.status]},
        )

    @display(description="Amount", ordering="amount")
    def amount_label(self, settlement: Settlement) -> str:
        return format_html(
            '<span class="whitespace-nowrap">{}</span>', money_label(settlement.amount, settlement.currency)
        )

    @display(description="Partner share")
    def share_label(self, settlement: Settlement) -> str:
        return money_label(settlement.share, settlement.currency)

    @display(description="Net revenue")
    def net_label(self, settlement: Settlement) -> str:
        return money_label(settlement.net, settlement.currency)

    @display(description="Percentage")
    def percentage_label(self, settlement: Settlement) -> str:
        return percentage(settlement.percentage)

    @display(description="Calculated", ordering="calculated_at")
    def calculated_on(self, settlement: Settlement) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', day_label(settlement.calculated_at.date()))

    @display(description="Order ended")
    def ended_on(self, settlement: Settlement) -> str:
        return day_label(settlement.calculation.get("ended_on"))

    @display(description="Calculated")
    def calculated(self, settlement: Settlement) -> str:
        return _moment_by(settlement.calculated_at, settlement.calculated_by, nobody="by the system")

    @display(description="Approved")
    def approved(self, settlement: Settlement) -> str:
        return _moment_by(settlement.approved_at, settlement.approved_by)

    @display(description="Paid")
    def paid(self, settlement: Settlement) -> str:
        if settlement.paid_at is None:
            return "—"
        batch = f" in payout batch {settlement.payout.number}" if settlement.payout_id else ""
        return f"{_moment(settlement.paid_at)}{batch}"

    @display(description="Void")
    def voided(self, settlement: Settlement) -> str:
        if settlement.voided_at is None:
            return "—"
        return f"{_moment(settlement.voided_at)}: {settlement.void_reason}"

    # Buttons ---------------------------------------------------------------------------------------------------

    def _settlement(self, request, object_id) -> Settlement:
        settlement = self.get_object(request, unquote(object_id))
        if settlement is None:
            raise Http404("No such settlement.")
        return settlement

    @staticmethod
    def _approval_request(settlement: Settlement) -> ApprovalRequest:
        approval = request_for(settlement)
        if approval is None:
            raise Conflict(f"{settlement} has no approval request open.", code="not_submitted")
        return approval

    @action(
        description="Approve",
        icon="check_circle",
        permissions=["decide"],
        variant=ActionVariant.SUCCESS,
        dialog=SETTLEMENT_DIALOGS["approve"],
    )
    def approve(self, request, form, object_id):
        settlement = self._settlement(request, object_id)
        return self.run_service(
            request,
            settlement_url(settlement),
            lambda: approval_approve(
                actor=request.user, request=self._approval_request(settlement), comment=form.cleaned_data["comment"]
            ),
            lambda _: (
                f"{settlement} approved: {money_label(settlement.amount, settlement.currency)} posted to "
                f"{settlement.partner.name}'s payable."
            ),
        )

    @action(
        description="Reject",
        icon="block",
        permissions=["decide"],
        variant=ActionVariant.DANGER,
        dialog=SETTLEMENT_DIALOGS["reject"],
    )
    def reject(self, request, form, object_id):
        settlement = self._settlement(request, object_id)
        return self.run_service(
            request,
            settlement_url(settlement),
            lambda: approval_reject(
                actor=request.user, request=self._approval_request(settlement), comment=form.cleaned_data["comment"]
            ),
            lambda _: f"{settlement} rejected: it is void. Correct what was wrong, then calculate the order again.",
        )

    @action(
        description="Calculate again",
        icon="calculate",
        url_path="calculate-again",
        permissions=["settle"],
        dialog=SETTLEMENT_DIALOGS["calculate_again"],
    )
    def calculate_again(self, request, form, object_id):
        settlement = self._settlement(request, object_id)
        try:
            new = order_settle(actor=request.user, order=settlement.order)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return back_to(request, settlement_url(settlement))
        text, level = settle_again_message(settlement.order, new)
        self.message_user(request, text, level)
        return back_to(request, settlement_url(new or settlement))


def _moment(value) -> str:
    return moment(value)


def _moment_by(value, user, *, nobody: str = "") -> str:
    if value is None:
        return "—"
    who = (user.full_name or user.email) if user is not None else nobody
    return f"{_moment(value)} · {who}" if who else _moment(value)
