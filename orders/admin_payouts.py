"""Payout batches in the admin (Finance and Admin only): the list, a batch's page with its settlements, the page
that creates batches (partners and a cut-off date), Approve and Cancel, and the bank file and statement downloads.

Every write is one call to orders.services.payouts; its refusal is shown as the page's error message.
"""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminDateWidget

from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import ServiceButtonsMixin
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from billing_project.formatting import day, moment
from billing_project.money import round_amount
from catalog.models import Partner
from ledger.forms import money_label
from ledger.views import ServiceFormView, show_domain_error
from orders import views
from orders.forms import ReasonForm
from orders.models import PayoutBatch, Settlement
from orders.services.payouts import (
    CREATE_PERMISSION,
    DECIDE_PERMISSION,
    payout_batch_approve,
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pain001,
    payout_statement_pdf,
)

Status = PayoutBatch.Status
STATUS_COLOURS = {Status.CREATED: "warning", Status.APPROVED: "success", Status.CANCELLED: "default"}


def person(user) -> str:
    return (user.full_name or user.email) if user is not None else "—"


def when(value) -> str:
    return moment(value) or "—"


def batch_url(batch: PayoutBatch) -> str:
    return reverse("admin:orders_payoutbatch_change", args=[batch.pk])


def waiting_partners():
    """Partners with approved settlements not yet in a batch, with how many."""
    waiting = Q(settlements__status=Settlement.Status.APPROVED, settlements__payout__isnull=True)
    return Partner.objects.annotate(waiting=Count("settlements", filter=waiting)).filter(waiting__gt=0).order_by("name")


def waiting_amounts() -> dict[int, str]:
    """Per partner, what its waiting settlements come to, each currency with its own sum: "EUR 873.00"."""
    sums: dict[int, list[str]] = {}
    rows = (
        Settlement.objects.filter(status=Settlement.Status.APPROVED, payout__isnull=True)
        .values("partner_id", "currency")
        .annotate(total=Sum("amount"))
        .order_by("partner_id", "currency")
    )
    for row in rows:
        # SQLite sums decimals to a number without trailing zeros: back to two places.
        sums.setdefault(row["partner_id"], []).append(money_label(round_amount(row["total"]), row["currency"]))
    return {partner_id: " + ".join(labels) for partner_id, labels in sums.items()}


class PartnerChoiceField(forms.ModelMultipleChoiceField):
    amounts: dict[int, str] = {}

    def label_from_instance(self, partner: Partner) -> str:
        bank = "" if partner.iban else " — no IBAN yet"
        count = f"{partner.waiting} settlement{'s' if partner.waiting != 1 else ''} waiting"
        amount = self.amounts.get(partner.pk)
        return f"{partner.name} ({count}{f', {amount}' if amount else ''}){bank}"


class PayoutBatchCreateForm(forms.Form):
    partners = PartnerChoiceField(
        queryset=Partner.objects.none(),
        widget=UnfoldAdminCheckboxSelectMultipleWidget(),
        help_text="Partners with approved settlements not yet in a batch.",
        error_messages={"required": "Choose at least one partner to pay."},
    )
    cut_off = forms.DateField(
        label="Cut-off date",
        widget=UnfoldAdminDateWidget(),
        help_text="Settlements approved on or before this day are paid.",
    )

    def __init__(self, *args, customers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["partners"].queryset = waiting_partners()
        self.fields["partners"].amounts = waiting_amounts()
        self.fields["cut_off"].initial = billing_today()


class PayoutBatchCreateView(ServiceFormView):
    title = "Create payout batches"
    template_name = "orders/payout_batch_create.html"
    permission_required = CREATE_PERMISSION
    form_class = PayoutBatchCreateForm
    submit_label = "Create batches"
    intro = (
        "One batch per partner and currency gathers its approved, unpaid settlements up to the cut-off date; a "
        "currency whose settlements do not come to more than zero waits. Another Finance user approves each batch, "
        "which pays it; then download its bank file."
    )

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            batches = payout_batch_create(actor=self.request.user, partners=data["partners"], cut_off=data["cut_off"])
        except DomainError as error:
            show_domain_error(form, error)
            return self.form_invalid(form)
        made = ", ".join(f"{b.number} ({b.partner.name}, {money_label(b.total, b.currency)})" for b in batches)
        messages.success(self.request, f"Created {made}. Another Finance user approves each to pay it.")
        if len(batches) == 1:
            return redirect(batch_url(batches[0]))
        return redirect(reverse("admin:orders_payoutbatch_changelist") + "?status__exact=created")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if not context["form"].fields["partners"].queryset.exists():
            context["intro"] = (
                "No approved settlement is waiting to be paid. Settlements are paid once they are approved; "
                "come back when some are."
            )
            context["nothing_waits"] = True
            context["awaiting_approval_url"] = (
                reverse("admin:orders_settlement_changelist") + f"?status__exact={Settlement.Status.CALCULATED}"
            )
        return context


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ServiceButtonsMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    list_display = ["number_label", "partner", "total_label", "status_label", "cut_off_label", "created", "approved"]
    list_filter = [("partner", RelatedDropdownFilter), "currency", "status"]
    list_filter_submit = True
    list_select_related = ["partner", "created_by", "approved_by"]
    search_fields = ["number", "partner__name"]
    search_help_text = "Batch number or partner name"
    actions_detail = ["approve", "cancel", "bank_file", "statement"]
    list_before_template = "orders/payout_batch_list_before.html"
    fieldsets = [
        (None, {"fields": ["partner", "total_label", "status_badge", "cut_off_label", "bank_details"]}),
        ("Settlements", {"fields": ["settlements_table"]}),
        ("Record", {"fields": ["created", "approved", "cancelled", "payout_posting"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("partner", "created_by", "approved_by", "cancelled_by")

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return PayoutBatchCreateView.as_view(model_admin=self)(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the page is view-only; its buttons call the services

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_decide_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION)

    def get_actions_detail(self, request, object_id):
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            return []
        offered = {
            "approve": batch.status == Status.CREATED and batch.created_by_id != request.user.pk,
            "cancel": batch.status == Status.CREATED,
            "bank_file": batch.status == Status.APPROVED and batch.currency == "EUR",
            "statement": batch.status != Status.CANCELLED,
        }
        return [
            detail_action
            for detail_action in super().get_actions_detail(request, object_id)
            if offered.get(detail_action.method.original_function_name, True)
        ]

    # Columns and fields --------------------------------------------------------------------------------------

    @display(description="Number", ordering="number")
    def number_label(self, batch: PayoutBatch) -> str:
        return format_html('<span class="whitespace-nowrap font-medium">{}</span>', batch.number)

    @display(description="Total", ordering="total")
    def total_label(self, batch: PayoutBatch) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', money_label(batch.total, batch.currency))

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def status_label(self, batch: PayoutBatch) -> tuple[str, str]:
        return batch.status, batch.get_status_display()

    @display(description="Status")
    def status_badge(self, batch: PayoutBatch) -> str:
        # The page's field: unfold's `label` display renders in lists only (a page would show the raw pair).
        return render_to_string(
            "unfold/helpers/label.html", {"text": batch.get_status_display(), "type": STATUS_COLOURS[batch.status]}
        )

    @display(description="Cut-off", ordering="cut_off")
    def cut_off_label(self, batch: PayoutBatch) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', day(batch.cut_off))

    @display(description="Created", ordering="created_at")
    def created(self, batch: PayoutBatch) -> str:
        return f"{when(batch.created_at)} by {person(batch.created_by)}"

    @display(description="Approved (paid)", ordering="approved_at")
    def approved(self, batch: PayoutBatch) -> str:
        if batch.approved_at is None:
            return "—"
        return f"{when(batch.approved_at)} by {person(batch.approved_by)}"

    @display(description="Cancelled")
    def cancelled(self, batch: PayoutBatch) -> str:
        if batch.cancelled_at is None:
            return "—"
        return f"{when(batch.cancelled_at)} by {person(batch.cancelled_by)}: {batch.cancel_reason}"

    @display(description="Paid to")
    def bank_details(self, batch: PayoutBatch) -> str:
        grouped = " ".join(batch.iban[i : i + 4] for i in range(0, len(batch.iban), 4))
        return f"IBAN {grouped}" + (f", BIC {batch.bic}" if batch.bic else "")

    @display(description="Posting")
    def payout_posting(self, batch: PayoutBatch) -> str:
        if batch.ledger_transaction_id is None:
            return "Posted when the batch is approved."
        url = reverse("admin:ledger_transaction_change", args=[batch.ledger_transaction_id])
        return format_html('<a class="text-primary-600" href="{}">Payout {}</a>', url, batch.number)

    @display(description="In this batch")
    def settlements_table(self, batch: PayoutBatch) -> str:
        settlements = list(
            batch.settlements.select_related("order", "order__order_type").order_by("order__number", "sequence")
        )
        if not settlements:
            return "None: a cancelled batch gives its settlements back to be paid in another batch."
        rows = [
            {
                "order_url": views.order_url(s.order),
                "order": s.order.number,
                "kind": f"({s.kind_label.lower()})" if s.is_correction else "",
                "order_type": s.order.order_type.name,
                "ended": _ended(s.order),
                "net": money_label(s.net, s.currency),
                "percentage": s.percentage,
                "share": money_label(s.share, s.currency),
                "amount": money_label(s.amount, s.currency),
            }
            for s in settlements
        ]
        return render_to_string(
            "orders/_payout_batch_settlements.html", {"rows": rows, "total": money_label(batch.total, batch.currency)}
        )

    # Buttons -------------------------------------------------------------------------------------------------

    def _batch(self, request, object_id) -> PayoutBatch:
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404("No such payout batch.")
        return batch

    def _download(self, request, object_id, render: Callable, *, suffix: str, content_type: str) -> HttpResponse:
        batch = self._batch(request, object_id)
        try:
            content = render(batch)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(batch_url(batch))
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{batch.number}{suffix}"'
        return response

    @action(
        description="Approve and pay",
        icon="check_circle",
        permissions=["decide"],
        variant=ActionVariant.SUCCESS,
        dialog={
            "title": "Approve this payout batch?",
            "description": "The payout is posted (the partner's payable to cash) and its settlements are marked "
            "paid. Then download the bank file and send it to the bank. You cannot approve a batch you created.",
            "form_submit_text": "Approve",
        },
    )
    def approve(self, request, form, object_id):
        batch = self._batch(request, object_id)
        return self.run_service(
            request,
            batch_url(batch),
            lambda: payout_batch_approve(actor=request.user, batch=batch),
            lambda paid: (
                f"{paid.number} approved: {money_label(paid.total, paid.currency)} to {paid.partner.name}. "
                "Download its bank file and send it to the bank."
            ),
        )

    @action(
        description="Cancel",
        icon="cancel",
        permissions=["decide"],
        variant=ActionVariant.DANGER,
        dialog={
            "title": "Cancel this payout batch?",
            "description": "Nothing is paid; its settlements wait for another batch. Say why.",
            "form_class": ReasonForm,
            "form_submit_text": "Cancel batch",
        },
    )
    def cancel(self, request, form, object_id):
        batch = self._batch(request, object_id)
        return self.run_service(
            request,
            batch_url(batch),
            lambda: payout_batch_cancel(actor=request.user, batch=batch, reason=form.cleaned_data["reason"]),
            lambda cancelled: f"{cancelled.number} cancelled; its settlements wait for another batch.",
        )

    @action(description="Bank file", icon="download", url_path="bank-file", permissions=["view"])
    def bank_file(self, request, object_id):
        return self._download(
            request, object_id, payout_batch_pain001, suffix="-pain001.xml", content_type="application/xml"
        )

    @action(description="Statement", icon="picture_as_pdf", url_path="statement", permissions=["view"])
    def statement(self, request, object_id):
        return self._download(
            request, object_id, payout_statement_pdf, suffix="-statement.pdf", content_type="application/pdf"
        )


def _ended(order) -> tuple[str, str]:
    """How the order ended and the day: ("Completed", "03 Dec 2026")."""
    if order.completed_at:
        return "Completed", day(order.completed_at)
    if order.failed_at:
        return "Failed", day(order.failed_at)
    return "—", ""
