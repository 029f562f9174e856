"""The ledger in the admin: invoices and their actions, payments, refunds, adjustments, credit notes, month-end,
billing configurations, the journal, accounts and reconciliation, and the balance and statement on the customer page.

Every write goes through ledger.services: add pages are forms that call a service (ledger.views), actions call
one service each, and the journal is read-only. Lists are scoped with ledger.selectors to what the user may see.
"""

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery, Sum
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display
from unfold.enums import ActionVariant
from unfold.views import ChangeList

from approvals.forms import CommentRequiredForm, DecisionForm
from approvals.models import ApprovalRequest
from approvals.selectors import ApprovalState, approval_state_for
from approvals.services import (
    approval_approve,
    approval_reject,
    approval_reroute,
    approval_revert,
    approval_submit,
    open_steps,
    request_for,
)
from billing_project import formatting
from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import (
    ReadOnlyAdmin,
    ServiceButtonsMixin,
    SpreadsheetExportMixin,
    back_to,
    local_time,
    moment_column,
    money_column,
    month_label,
    price_column,
    quantity_column,
)
from billing_project.errors import Conflict, DomainError
from billing_project.money import round_amount
from catalog import admin as catalog_admin
from catalog.models import Customer
from catalog.selectors import customer_list_for
from ledger.einvoice import STORED
from ledger.forms import (
    CreditNoteForm,
    InvoiceLineForm,
    InvoiceRerouteForm,
    MarkFailedForm,
    PaymentMoveForm,
    money_label,
    payment_state_label,
)
from ledger.models import (
    Account,
    Adjustment,
    Allocation,
    BillingConfig,
    BillingRun,
    CreditNote,
    Invoice,
    InvoiceItem,
    Leg,
    Payment,
    ReconciliationReport,
    Refund,
    Transaction,
)
from ledger.selectors import (
    billing_run_is_stalled,
    billing_run_list,
    billing_run_stalled_list,
    credit_note_list_for,
    customer_statement,
    customers_with_balance,
    invoice_list_for,
    invoice_open_list,
    overdue_amounts,
    payment_list_for,
    transaction_list_for,
)
from ledger.services.billing import billing_config_update
from ledger.services.invoices import (
    ISSUABLE,
    credit_note_issue,
    invoice_add_line,
    invoice_cancel,
    invoice_issue,
    invoice_recipient,
    invoice_send_again,
)
from ledger.services.month_end import billing_run_mark_failed
from ledger.services.payments import payment_reallocate
from ledger.services.reconciliation import ledger_reconcile
from ledger.views import (
    AdjustmentCreateView,
    CustomerStatementView,
    InvoiceCreateView,
    InvoicePreviewView,
    MonthEndView,
    PaymentCreateView,
    PriceCalculatorView,
    RefundCreateView,
    change_url,
    open_invoices_json,
    pdf_download,
    show_domain_error,
)
from usage.admin import CustomerFilter, EstimatedCountPaginator, MonthFilter

STATEMENT_LINES_ON_CUSTOMER_PAGE = 10
AMOUNT = Leg._meta.get_field("debit")
CREDITABLE = {Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID}
STATUS_COLOURS = {
    Invoice.Status.DRAFT: "info",
    Invoice.Status.PENDING_APPROVAL: "warning",
    Invoice.Status.APPROVED: "info",
    Invoice.Status.REJECTED: "danger",
    Invoice.Status.ISSUED: "primary",
    Invoice.Status.PAID: "success",
    Invoice.Status.OVERDUE: "danger",
}


amount_with_currency = money_column("amount", "Amount")
total_with_currency = money_column("total", "Total")


class PeriodFilter(MonthFilter):
    """Billing month; offers the months of the rows the user may see."""

    def lookups(self, request, model_admin):
        periods = model_admin.get_queryset(request).order_by("-period").values_list("period", flat=True).distinct()
        return [(f"{period:%Y-%m}", month_label(period)) for period in periods]


class MonthEndButtonMixin:
    """A button above the list to the month-end page."""

    actions_list = ["open_month_end"]

    def has_month_end_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_billingrun")

    @action(description="Month-end", icon="event_repeat", permissions=["month_end"])
    def open_month_end(self, request):
        return redirect("admin:ledger_billingrun_month_end")


class ServiceWrittenAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    """Rows that only ledger services write. The change page shows a row and its history; adding is a form page
    (`add_view_class`) that calls the service; nothing is changed or deleted here."""

    add_view_class = None

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self.add_view_class.as_view(model_admin=self)(request)

    def has_add_permission(self, request) -> bool:
        return self.add_view_class is not None and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


DOCUMENTS_BEING_MADE = "Being made"  # an invoice month-end issued, its files made by a task after the batch


class EinvoiceDownloadsMixin:
    """Links to an issued document's stored e-invoices (UBL, Factur-X) and the page that serves them, to whoever
    may see the document (get_object scopes it)."""

    def get_urls(self):
        meta = self.model._meta
        view = self.admin_site.admin_view(self.einvoice_download)
        name = f"{meta.app_label}_{meta.model_name}_einvoice"
        return [path("<path:object_id>/einvoice/<str:syntax>/", view, name=name), *super().get_urls()]

    def einvoice_download(self, request, object_id, syntax):
        document = self.get_object(request, unquote(object_id))
        stored = STORED.get(syntax)
        if document is None or stored is None or not self.has_view_permission(request, document):
            raise Http404
        file = stored.file_of(document)
        if file is None:
            raise Http404
        return FileResponse(
            file.open("rb"), as_attachment=True, filename=stored.file_name(document), content_type=stored.content_type
        )

    @display(description="E-invoice")
    def einvoice_files(self, document) -> str:
        meta = self.model._meta
        links = [
            (
                reverse(f"admin:{meta.app_label}_{meta.model_name}_einvoice", args=[document.pk, syntax]),
                stored.file_name(document),
                stored.label,
            )
            for syntax, stored in STORED.items()
            if stored.file_of(document) is not None
        ]
        if not links:
            return "—"
        return format_html_join(" · ", '<a href="{}" class="text-primary-600">{}</a> ({})', links)


class ReadOnlyInline(TabularInline):
    """Rows shown on their parent's page, written only by services."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InvoiceItemInline(ReadOnlyInline):
    model = InvoiceItem
    fields = [
        "position",
        "source",
        "description",
        "service",
        "quantity_shown",
        "unit_price_shown",
        "amount_shown",
        "tax_rate_shown",
        "tax_amount_shown",
        "vat_category",
    ]
    tab = True
    quantity_shown = quantity_column("quantity", "Quantity")
    unit_price_shown = price_column("unit_price", "Unit price", currency="invoice.currency")
    amount_shown = money_column("amount", "Amount", currency="invoice.currency")
    tax_amount_shown = money_column("tax_amount", "Tax", currency="invoice.currency")

    @display(description="Tax rate")
    def tax_rate_shown(self, item: InvoiceItem) -> str:
        return formatting.percent(item.tax_rate)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("service", "invoice")


class AllocationInline(ReadOnlyInline):
    """Who may see payments sees what they were set against (no role holds Allocation's own permissions)."""

    model = Allocation
    hide_title = True  # each row's name repeats its columns

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("ledger.view_payment")


class InvoiceAllocationInline(AllocationInline):
    fk_name = "invoice"
    fields = ["payment", "credit_note", "amount_shown", "created_at"]
    verbose_name_plural = "Payments and credit allocated"
    tab = True
    amount_shown = money_column("amount", "Amount", currency="invoice.currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment", "credit_note", "invoice__customer")


class PaymentAllocationInline(AllocationInline):
    fk_name = "payment"
    fields = ["invoice", "amount_shown", "created_at"]
    verbose_name_plural = "Set against invoices"
    amount_shown = money_column("amount", "Amount", currency="invoice.currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice__customer")


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    fields = ["number", "total_shown", "unallocated_shown", "full", "reason", "issued_at"]
    show_change_link = True
    tab = True
    total_shown = money_column("total", "Total")
    unallocated_shown = money_column("unallocated", "Unallocated")


INVOICE_DIALOGS = {
    "issue": {
        "title": "Issue this invoice?",
        "description": "It gets the next invoice number, the charge is posted to the customer's account, and the "
        "PDF is rendered and emailed. An issued invoice never changes; correct it with a credit note.",
        "form_submit_text": "Issue",
    },
    "cancel": {
        "title": "Cancel this draft?",
        "description": "The draft is kept, marked cancelled, and can no longer be issued.",
        "form_submit_text": "Cancel draft",
    },
    "send_again": {
        "title": "Email this invoice again?",
        "description": "The issued PDF is emailed again to the customer's invoice address.",
        "form_submit_text": "Send",
    },
    "submit": {
        "title": "Submit for approval?",
        "description": "The customer's approval rule decides who approves; they are emailed. An approved invoice "
        "can then be issued.",
        "form_submit_text": "Submit",
    },
    "approve": {
        "title": "Approve this invoice?",
        "description": "Your approval counts for the step of the customer's rule that is yours; once every step is "
        "approved, Finance may issue it (or it is issued at once, if the customer's configuration says so).",
        "form_class": DecisionForm,
        "form_submit_text": "Approve",
    },
    "reject": {
        "title": "Reject this invoice?",
        "description": "It goes back to Finance, who is emailed your comment; they may correct it and submit it again.",
        "form_class": CommentRequiredForm,
        "form_submit_text": "Reject",
    },
    "reroute": {
        "title": "Re-route this approval request?",
        "description": "Send it to another rule or to one named approver, when nobody can give an approval it "
        "waits for (its CSM has left, say). The new approvers are emailed; the timeline keeps the old and the new "
        "rule with your comment.",
        "form_class": InvoiceRerouteForm,
        "form_submit_text": "Re-route",
    },
    "revert": {
        "title": "Revert the latest decision?",
        "description": "Your latest approval or rejection is taken back and the invoice waits for approval again; "
        "its approvers are emailed.",
        "form_class": CommentRequiredForm,
        "form_submit_text": "Revert",
    },
    "add_line": {"title": "Add a line", "form_class": InvoiceLineForm, "form_submit_text": "Add line"},
    "credit": {
        "title": "Issue a credit note",
        "description": "The credit first reduces what is still owed on the invoice; any excess stays with the "
        "customer as credit.",
        "form_class": CreditNoteForm,
        "form_submit_text": "Issue credit note",
    },
}
# Which detail actions an invoice's page offers; the services still refuse anything else, with a message.
# Approve, reject and revert depend on the user as well (approvals.selectors.approval_state_for).
OFFERED_WHEN: dict[str, Callable[[Invoice], bool]] = {
    "add_line": lambda invoice: invoice.is_editable,
    "submit": lambda invoice: invoice.is_editable,
    "issue": lambda invoice: invoice.status in ISSUABLE,
    "cancel": lambda invoice: invoice.is_editable,
    "download_pdf": lambda invoice: bool(invoice.pdf),
    "send_again": lambda invoice: bool(invoice.pdf),
    "credit": lambda invoice: invoice.status in CREDITABLE,
    "record_payment": lambda invoice: invoice.status in Invoice.OPEN,
}


@admin.register(Invoice)
class InvoiceAdmin(
    EinvoiceDownloadsMixin, SpreadsheetExportMixin, ServiceButtonsMixin, MonthEndButtonMixin, ServiceWrittenAdmin
):
    add_view_class = InvoiceCreateView

    def get_urls(self):
        calculator = self.admin_site.admin_view(PriceCalculatorView.as_view(model_admin=self))
        return [path("price-calculator/", calculator, name="ledger_price_calculator"), *super().get_urls()]

    export_columns = [
        ("Invoice", str),
        ("Customer", lambda invoice: invoice.customer.name),
        ("Client id", lambda invoice: invoice.customer.client_id),
        ("Month", lambda invoice: invoice.period),
        ("Kind", lambda invoice: invoice.get_kind_display()),
        ("Status", lambda invoice: invoice.get_status_display()),
        ("Currency", lambda invoice: invoice.currency),
        ("Subtotal", lambda invoice: invoice.subtotal),
        ("Tax", lambda invoice: invoice.tax),
        ("Total", lambda invoice: invoice.total),
        ("Paid", lambda invoice: invoice.amount_paid),
        ("Credited", lambda invoice: invoice.amount_credited),
        ("Outstanding", lambda invoice: invoice.outstanding),
        ("Issued at", lambda invoice: local_time(invoice.issued_at)),
        ("Due date", lambda invoice: invoice.due_date),
    ]
    list_display = [
        "invoice",
        "customer",
        "billed_month",
        "status_label",
        total_with_currency,
        "outstanding_shown",
        "due_date",
    ]
    list_filter = ["status", PeriodFilter, ("customer", CustomerFilter), "kind"]
    list_filter_submit = True
    list_select_related = ["customer"]
    search_fields = ["number", "customer__name", "customer__client_id"]
    search_help_text = "Invoice number, customer name or client id"
    inlines = [InvoiceItemInline, InvoiceAllocationInline, CreditNoteInline]
    actions_row = ["preview", "download_pdf"]
    actions_detail = [
        "preview",
        "add_line",
        "submit",
        "approve",
        "reject",
        "revert",
        "reroute",
        "issue",
        "cancel",
        "record_payment",
        "download_pdf",
        "send_again",
        "credit",
    ]
    readonly_fields = ["billed_month", "pdf_file", "einvoice_files"]
    change_form_after_template = "ledger/invoice_after_form.html"
    fieldsets = [
        (None, {"fields": ["customer", "kind", "billed_month", "status", "number", "currency"]}),
        (
            "Amounts",
            {
                "fields": [
                    "subtotal_shown",
                    "tax_shown",
                    "total_shown",
                    "amount_paid_shown",
                    "amount_credited_shown",
                    "outstanding_shown",
                ]
            },
        ),
        ("Dates", {"fields": ["issued_at", "due_date", "paid_at"]}),
        (
            "Origin",
            {"fields": ["pdf_file", "einvoice_files", "billing_run", "created_by", "created_at", "updated_at"]},
        ),
    ]

    def get_queryset(self, request):
        return invoice_list_for(request.user)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and request.user.has_perm("ledger.view_leg"):
            # The legs of the invoice's charge and of its credit notes.
            sources = Q(source_type=ContentType.objects.get_for_model(Invoice), source_id=obj.pk) | Q(
                source_type=ContentType.objects.get_for_model(CreditNote), source_id__in=obj.credit_notes.values("pk")
            )
            legs = Leg.objects.filter(transaction__in=Transaction.objects.filter(sources))
            context["journal_legs"] = legs.select_related("transaction", "account")
        if obj is not None and request.user.has_perm("approvals.view_approvalrequest"):
            context["approval"] = self._approval_state(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _approval_state(self, request, invoice: Invoice) -> ApprovalState:
        """The invoice's approval timeline and what the user may decide, read once per page."""
        cache = request.__dict__.setdefault("_invoice_approval_states", {})
        if invoice.pk not in cache:
            cache[invoice.pk] = approval_state_for(invoice, request.user)
        return cache[invoice.pk]

    def get_actions_detail(self, request, object_id):
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            return []
        state = (
            self._approval_state(request, invoice)
            if request.user.has_perm("approvals.view_approvalrequest")
            else ApprovalState()
        )
        offered = OFFERED_WHEN | {
            "approve": lambda _: state.may_approve,
            "reject": lambda _: state.may_reject,
            "revert": lambda _: state.may_revert,
            "reroute": lambda _: state.may_reroute,
        }
        return [
            detail_action
            for detail_action in super().get_actions_detail(request, object_id)
            if offered.get(detail_action.method.original_function_name, lambda _: True)(invoice)
        ]

    # Action permissions (unfold calls has_<name>_permission); the change page itself is view-only.
    def has_change_invoice_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.change_invoice")

    def has_credit_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_creditnote")

    def has_add_payment_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_payment")

    def has_decide_permission(self, request, object_id=None) -> bool:
        # Approve, reject, revert: who may follow approvals; approvals.services decides each decision itself.
        return request.user.has_perm("approvals.view_approvalrequest")

    def has_reroute_permission(self, request, object_id=None) -> bool:
        # An Admin's; approvals.services.approval_reroute checks it again.
        return request.user.has_perm("approvals.change_approvalrequest")

    def _invoice(self, request, object_id) -> Invoice:
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404
        return invoice

    def _approval_request(self, invoice: Invoice) -> ApprovalRequest:
        approval = request_for(invoice)
        if approval is None:
            raise Conflict(f"{str(invoice)} has no approval request open.", code="no_request")
        return approval

    def _approved_message(self, invoice: Invoice, approval: ApprovalRequest) -> str:
        if approval.status == ApprovalRequest.Status.PENDING:
            waiting = "; ".join(step["label"] for step in open_steps(approval))
            return f"Your approval of {str(invoice)} is recorded; it still needs: {waiting}."
        invoice.refresh_from_db()
        if invoice.number:
            return f"{invoice.number} approved and issued: {formatting.money(invoice.total, invoice.currency)}."
        return f"{str(invoice)} approved; Finance may issue it now."

    subtotal_shown = money_column("subtotal", "Subtotal")
    tax_shown = money_column("tax", "Tax")
    total_shown = money_column("total", "Total")
    amount_paid_shown = money_column("amount_paid", "Paid")
    amount_credited_shown = money_column("amount_credited", "Credited")
    outstanding_shown = money_column("outstanding", "Outstanding", ordering=False)

    @display(description="Invoice", ordering="number")
    def invoice(self, invoice: Invoice) -> str:
        # The row's customer and month are its own columns: a draft's full name would repeat them.
        return format_html('<span class="whitespace-nowrap">{}</span>', invoice.number or "Draft")

    @display(description="Month", ordering="period")
    def billed_month(self, invoice: Invoice) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', month_label(invoice.period))

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def status_label(self, invoice: Invoice) -> tuple[str, str]:
        return invoice.status, invoice.get_status_display()

    @display(description="PDF")
    def pdf_file(self, invoice: Invoice) -> str:
        if not invoice.pdf:
            return DOCUMENTS_BEING_MADE if invoice.number else "—"
        return format_html(
            '<a href="{}" class="text-primary-600">{}.pdf</a>',
            reverse("admin:ledger_invoice_download_pdf", args=[invoice.pk]),
            invoice.number,
        )

    @action(description="Preview", icon="visibility", permissions=["view"])
    def preview(self, request, object_id):
        return InvoicePreviewView.as_view(model_admin=self)(request, pk=unquote(object_id))

    @action(description="Download PDF", icon="picture_as_pdf", url_path="pdf", permissions=["view"])
    def download_pdf(self, request, object_id):
        invoice = self._invoice(request, object_id)
        if not invoice.pdf:
            if invoice.number:
                reason = f"{invoice}: its PDF is being made, within minutes of its issue."
            else:
                reason = f"{invoice} is not issued yet: it has no PDF."
            self.message_user(request, reason, messages.WARNING)
            return redirect(change_url(invoice))
        return pdf_download(invoice.pdf, f"{invoice.number}.pdf")

    @action(
        description="Add line",
        icon="playlist_add",
        url_path="add-line",
        permissions=["change_invoice"],
        dialog=INVOICE_DIALOGS["add_line"],
    )
    def add_line(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        data = form.cleaned_data
        return self.run_service(
            request,
            change_url(invoice),
            lambda: invoice_add_line(
                actor=request.user,
                invoice=invoice,
                description=data["description"],
                quantity=data["quantity"],
                unit_price=data["unit_price"],
            ),
            lambda item: (
                f"Line “{item.description}” added: {formatting.money(item.amount, invoice.currency)} before tax."
            ),
        )

    @action(
        description="Submit for approval",
        icon="approval",
        url_path="submit",
        permissions=["change_invoice"],
        dialog=INVOICE_DIALOGS["submit"],
    )
    def submit(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: approval_submit(actor=request.user, target=invoice),
            lambda approval: (
                f"{str(invoice)} submitted for approval; its approvers were emailed."
                if approval
                else f"{str(invoice)} needs no approval under its customer's rule: issue it."
            ),
        )

    @action(
        description="Approve",
        icon="check_circle",
        permissions=["decide"],
        variant=ActionVariant.SUCCESS,
        dialog=INVOICE_DIALOGS["approve"],
    )
    def approve(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: approval_approve(
                actor=request.user, request=self._approval_request(invoice), comment=form.cleaned_data["comment"]
            ),
            lambda approval: self._approved_message(invoice, approval),
        )

    @action(
        description="Reject",
        icon="block",
        permissions=["decide"],
        variant=ActionVariant.DANGER,
        dialog=INVOICE_DIALOGS["reject"],
    )
    def reject(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: approval_reject(
                actor=request.user, request=self._approval_request(invoice), comment=form.cleaned_data["comment"]
            ),
            lambda _: f"{str(invoice)} rejected; whoever submitted it was emailed your comment.",
        )

    @action(
        description="Revert decision",
        icon="undo",
        url_path="revert",
        permissions=["decide"],
        dialog=INVOICE_DIALOGS["revert"],
    )
    def revert(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: approval_revert(
                actor=request.user, request=self._approval_request(invoice), comment=form.cleaned_data["comment"]
            ),
            lambda _: f"Your decision on {str(invoice)} was reverted; it waits for approval again.",
        )

    @action(
        description="Re-route approval",
        icon="alt_route",
        url_path="reroute",
        permissions=["reroute"],
        dialog=INVOICE_DIALOGS["reroute"],
    )
    def reroute(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: approval_reroute(
                actor=request.user,
                request=self._approval_request(invoice),
                route=form.cleaned_data["route"],
                comment=form.cleaned_data["comment"],
            ),
            lambda approval: f"{str(invoice)} re-routed to “{approval.rule['label']}”; its approvers were emailed.",
        )

    @action(
        description="Issue",
        icon="send",
        permissions=["change_invoice"],
        variant=ActionVariant.PRIMARY,
        dialog=INVOICE_DIALOGS["issue"],
    )
    def issue(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: invoice_issue(actor=request.user, invoice=invoice),
            lambda issued: (
                f"Invoice {issued.number} issued: {formatting.money(issued.total, issued.currency)}, "
                f"due on {formatting.day(issued.due_date)}."
            ),
        )

    @action(
        description="Cancel draft",
        icon="cancel",
        permissions=["change_invoice"],
        variant=ActionVariant.DANGER,
        dialog=INVOICE_DIALOGS["cancel"],
    )
    def cancel(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        return self.run_service(
            request,
            change_url(invoice),
            lambda: invoice_cancel(actor=request.user, invoice=invoice),
            lambda cancelled: f"{str(cancelled)} cancelled.",
        )

    @action(
        description="Send again",
        icon="forward_to_inbox",
        url_path="send-again",
        permissions=["change_invoice"],
        dialog=INVOICE_DIALOGS["send_again"],
    )
    def send_again(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        try:
            sent = invoice_send_again(actor=request.user, invoice=invoice)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            if sent:
                self.message_user(request, f"{invoice.number} emailed to {invoice_recipient(invoice)}.")
            else:
                self.message_user(
                    request, f"{invoice.customer} has no invoice email address: nothing was sent.", messages.WARNING
                )
        return back_to(request, change_url(invoice))

    @action(
        description="Record payment",
        icon="payments",
        url_path="record-payment",
        permissions=["add_payment"],
        variant=ActionVariant.PRIMARY,
    )
    def record_payment(self, request, object_id):
        """The payment form, started with the invoice, its customer and what it still owes."""
        invoice = self._invoice(request, object_id)
        return redirect(f"{reverse('admin:ledger_payment_add')}?invoice={invoice.pk}")

    @action(
        description="Credit",
        icon="undo",
        permissions=["credit"],
        dialog=INVOICE_DIALOGS["credit"],
    )
    def credit(self, request, form, object_id):
        invoice = self._invoice(request, object_id)
        data = form.cleaned_data
        return self.run_service(
            request,
            change_url(invoice),
            lambda: credit_note_issue(
                actor=request.user,
                invoice=invoice,
                reason=data["reason"],
                amount=None if data["scope"] == CreditNoteForm.FULL else data["amount"],
            ),
            lambda note: (
                f"Credit note {note.number} of {formatting.money(note.total, note.currency)} "
                f"issued on {invoice.number}."
            ),
        )


@admin.register(CreditNote)
class CreditNoteAdmin(EinvoiceDownloadsMixin, ServiceWrittenAdmin):
    list_display = ["number", "invoice", "customer", total_with_currency, "unallocated_shown", "full", "issued_at"]
    list_filter = ["full", "currency", ("customer", CustomerFilter)]
    list_select_related = ["invoice", "customer"]
    search_fields = ["number", "invoice__number", "customer__name", "customer__client_id"]
    search_help_text = "Credit note or invoice number, customer name or client id"
    fields = [
        "number",
        "invoice",
        "customer",
        "currency",
        "subtotal_shown",
        "tax_shown",
        "total_shown",
        "unallocated_shown",
        "full",
        "reason",
        "issued_at",
        "pdf_file",
        "einvoice_files",
        "created_by",
    ]
    readonly_fields = ["pdf_file", "einvoice_files"]
    subtotal_shown = money_column("subtotal", "Subtotal")
    tax_shown = money_column("tax", "Tax")
    total_shown = money_column("total", "Total")
    unallocated_shown = money_column("unallocated", "Unallocated")
    actions_row = ["download_pdf"]
    actions_detail = ["download_pdf"]

    def get_queryset(self, request):
        return credit_note_list_for(request.user)

    @display(description="PDF")
    def pdf_file(self, note: CreditNote) -> str:
        if not note.pdf:
            return "—"
        url = reverse("admin:ledger_creditnote_download_pdf", args=[note.pk])
        return format_html('<a href="{}" class="text-primary-600">{}.pdf</a>', url, note.number)

    @action(description="Download PDF", icon="picture_as_pdf", url_path="pdf", permissions=["view"])
    def download_pdf(self, request, object_id):
        note = self.get_object(request, unquote(object_id))
        if note is None or not note.pdf:
            raise Http404
        return pdf_download(note.pdf, f"{note.number}.pdf")


PAYMENT_MOVE_DIALOG = {
    "title": "Move this payment to another invoice",
    "description": "Its unallocated part, or what it pays on an invoice, is set against an open invoice of the same "
    "customer; the invoice it leaves is open again. Nothing is posted to the journal, and every allocation is kept: "
    "the move adds a negative one on the invoice left.",
    "form_class": PaymentMoveForm,
    "form_submit_text": "Move",
}


@admin.register(Payment)
class PaymentAdmin(SpreadsheetExportMixin, ServiceWrittenAdmin):
    add_view_class = PaymentCreateView
    export_columns = [
        ("Received at", lambda payment: local_time(payment.received_at)),
        ("Customer", lambda payment: payment.customer.name),
        ("Client id", lambda payment: payment.customer.client_id),
        ("Currency", lambda payment: payment.currency),
        ("Amount", lambda payment: payment.amount),
        ("Unallocated", lambda payment: payment.unallocated),
        ("Method", lambda payment: payment.get_method_display()),
        ("Bank reference", lambda payment: payment.bank_reference),
    ]
    list_display = ["received_at", "customer", amount_with_currency, "method", "bank_reference", "unallocated_shown"]
    list_filter = ["method", "currency", ("customer", CustomerFilter)]
    list_select_related = ["customer"]
    search_fields = ["bank_reference", "customer__name", "customer__client_id"]
    search_help_text = "Bank reference, customer name or client id"
    fields = [
        "customer",
        "amount_shown",
        "method",
        "received_at",
        "bank_reference",
        "unallocated_shown",
        "note",
        "created_by",
        "created_at",
    ]
    amount_shown = money_column("amount", "Amount")
    unallocated_shown = money_column("unallocated", "Unallocated")
    inlines = [PaymentAllocationInline]
    actions_detail = ["move"]

    def get_queryset(self, request):
        return payment_list_for(request.user)

    def get_object(self, request, object_id, from_field=None):
        # Read once per request: the page and the choice of its actions both need it.
        cache = request.__dict__.setdefault("_payments", {})
        if (object_id, from_field) not in cache:
            cache[object_id, from_field] = super().get_object(request, object_id, from_field)
        return cache[object_id, from_field]

    def get_urls(self):
        open_invoices = self.admin_site.admin_view(open_invoices_json)
        return [path("open-invoices/", open_invoices, name="ledger_payment_open_invoices"), *super().get_urls()]

    def get_actions_detail(self, request, object_id):
        payment = self.get_object(request, unquote(object_id))
        actions = super().get_actions_detail(request, object_id)
        if payment is None or not invoice_open_list(payment.customer).exists():
            return [detail for detail in actions if detail.method.original_function_name != "move"]
        return actions

    # Moving a payment's money adds allocations: Finance and Admin.
    def has_reallocate_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_allocation")

    @action(
        description="Move to another invoice",
        icon="swap_horiz",
        url_path="move",
        permissions=["reallocate"],
        dialog=PAYMENT_MOVE_DIALOG,
    )
    def move(self, request, form, object_id):
        payment, data = form.payment, form.cleaned_data
        try:
            allocation = payment_reallocate(
                actor=request.user,
                payment=payment,
                invoice=data["invoice"],
                from_invoice=data["from_invoice"],
                amount=data["amount"],
            )
        except DomainError as error:
            show_domain_error(form, error)
            return render(
                request,
                "unfold/helpers/dialog.html",
                {
                    "dialog": PAYMENT_MOVE_DIALOG,
                    "form": form,
                    "form_submit_text": PAYMENT_MOVE_DIALOG["form_submit_text"],
                },
            )
        self.message_user(request, _moved_message(allocation, data["from_invoice"]), messages.SUCCESS)
        return back_to(request, change_url(payment))


def _moved_message(allocation: Allocation, from_invoice: Invoice | None) -> str:
    invoice, currency = allocation.invoice, allocation.invoice.currency
    invoice.refresh_from_db()
    source = f"from {from_invoice.number}" if from_invoice else "from its unallocated part"
    message = (
        f"{money_label(allocation.amount, currency)} of payment {allocation.payment.bank_reference} moved {source} "
        f"to {invoice.number}: it {payment_state_label(invoice)}."
    )
    if from_invoice is not None:
        from_invoice.refresh_from_db()
        message += f" {from_invoice.number} owes {money_label(from_invoice.outstanding, currency)} again."
    return message


class CustomerRowsAdmin(ServiceWrittenAdmin):
    """Refunds and adjustments: ledger.selectors has no list for them, so they are scoped here."""

    list_select_related = ["customer", "created_by"]
    search_fields = ["customer__name", "customer__client_id", "reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__in=customer_list_for(request.user))


@admin.register(Refund)
class RefundAdmin(CustomerRowsAdmin):
    add_view_class = RefundCreateView
    list_display = ["created_at", "customer", amount_with_currency, "method", "reference", "reason", "created_by"]
    list_filter = ["method", "currency", ("customer", CustomerFilter)]
    search_fields = [*CustomerRowsAdmin.search_fields, "reference"]


@admin.register(Adjustment)
class AdjustmentAdmin(CustomerRowsAdmin):
    add_view_class = AdjustmentCreateView
    list_display = ["created_at", "customer", "direction", amount_with_currency, "reason", "created_by"]
    list_filter = ["direction", "currency", ("customer", CustomerFilter)]


@admin.register(BillingConfig)
class BillingConfigAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    """Opened with each customer; edited here through billing_config_update."""

    list_display = [
        "customer",
        "cycle",
        "payment_terms_days",
        "tax_rate_shown",
        "tax_exempt",
        "invoice_email",
        "auto_issue",
    ]
    list_filter = ["cycle", "tax_exempt", "auto_issue"]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__client_id", "invoice_email"]
    readonly_fields = ["customer", "seller"]

    @display(description="Seller on invoices and e-invoices (from the settings)")
    def seller(self, config: BillingConfig) -> str:
        seller = settings.SELLER
        rows = [
            ("Legal name", seller["name"]),
            ("Trading name", seller["trading_name"]),
            ("Address", ", ".join(filter(None, [seller["street"], seller["postal_code"], seller["city"]]))),
            ("Country", seller["country"]),
            ("VAT identifier", seller["vat_id"]),
            ("Company number", seller["registration_id"]),
            ("Contact email", seller["email"]),
            ("Bank account", seller["bank"]),
            ("Peppol endpoint", f"{seller['peppol_scheme']}:{seller['peppol_id']}" if seller["peppol_id"] else "—"),
        ]
        return format_html_join("", "<div><b>{}</b>: {}</div>", ((label, value or "—") for label, value in rows))

    def get_queryset(self, request):
        return BillingConfig.objects.filter(customer__in=customer_list_for(request.user)).select_related("customer")

    @display(description="Tax rate", ordering="tax_rate")
    def tax_rate_shown(self, config: BillingConfig) -> str:
        return formatting.percent(config.tax_rate)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        billing_config_update(actor=request.user, customer=obj.customer, **changes)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "With overdue invoices")]

    def queryset(self, request, queryset):
        return queryset.filter(overdue_count__gt=0) if self.value() == "yes" else queryset


class RunInvoiceInline(ReadOnlyInline):
    model = Invoice
    fk_name = "billing_run"
    fields = ["invoice", "customer", "status", "total_amount"]
    verbose_name_plural = "Invoices created"
    per_page = 50

    def get_queryset(self, request):
        return invoice_list_for(request.user).select_related("customer")

    @display(description="Invoice")
    def invoice(self, invoice: Invoice) -> str:
        return format_html('<a href="{}" class="text-primary-600">{}</a>', change_url(invoice), str(invoice))

    total_amount = money_column("total", "Total")


RUN_STATUS_COLOURS = {
    BillingRun.Status.RUNNING: "info",
    "stalled": "warning",
    BillingRun.Status.COMPLETED: "success",
    BillingRun.Status.FAILED: "danger",
}


class StalledRunFilter(admin.SimpleListFilter):
    title = "progress"
    parameter_name = "stalled"

    def lookups(self, request, model_admin):
        return [("yes", "Stalled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=billing_run_stalled_list().values("pk"))
        return queryset


@admin.register(BillingRun)
class BillingRunAdmin(MonthEndButtonMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    """Month-end runs; one whose worker died shows as stalled and can be closed as failed."""

    empty_message = "No month-end has run yet: start one with the Month-end button above."

    list_display = [
        "billed_month",
        "scope",
        "status_label",
        "started_at",
        "created",
        "issued",
        "nothing_to_bill_count",
        "failure_count",
    ]
    fields = [
        "billed_month",
        "customer",
        "dry_run",
        "status_text",
        "started_by",
        "started_at",
        "last_progress",
        "finished_at",
        "customer_count",
        "customers_done",
        "invoices_created",
        "invoices_submitted",
        "invoices_issued",
        "already_invoiced",
        "nothing_to_bill",
        "failures",
    ]
    readonly_fields = ["billed_month", "status_text", "last_progress"]
    list_filter = ["status", StalledRunFilter, PeriodFilter, "dry_run"]
    search_fields = ["customer__name", "customer__client_id"]
    search_help_text = "Customer name or client id, or a month (2026-10)"
    list_select_related = ["customer", "started_by"]
    inlines = [RunInvoiceInline]
    actions_detail = ["mark_failed"]

    def get_queryset(self, request):
        return billing_run_list()

    def get_search_results(self, request, queryset, search_term):
        try:
            period = datetime.strptime(search_term.strip(), "%Y-%m").date()
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(period=period), False

    def get_urls(self):
        month_end = self.admin_site.admin_view(MonthEndView.as_view(model_admin=self))
        return [path("month-end/", month_end, name="ledger_billingrun_month_end"), *super().get_urls()]

    @display(description="Month", ordering="period")
    def billed_month(self, run: BillingRun) -> str:
        return month_label(run.period)

    @display(description="Customers")
    def scope(self, run: BillingRun) -> str:
        return str(run.customer) if run.customer else "All"

    @display(description="Status", ordering="status", label=RUN_STATUS_COLOURS)
    def status_label(self, run: BillingRun) -> tuple[str, str]:
        if billing_run_is_stalled(run):
            minutes = settings.BILLING_RUN_STALLED_AFTER_MINUTES
            return "stalled", f"Stalled (no progress for {minutes} min)"
        return run.status, run.get_status_display()

    @display(description="Status")
    def status_text(self, run: BillingRun) -> str:
        # A read-only field shows text, not the list's coloured label.
        return self.status_label(run)[1]

    last_progress = moment_column("last_progress_at", "Last progress", ordering=False)

    @display(description="Failures")
    def failure_count(self, run: BillingRun) -> int:
        return len(run.failures)

    # Short headers: the list stays within the page at 1,280 px.
    @display(description="Invoices made", ordering="invoices_created")
    def created(self, run: BillingRun) -> int:
        return run.invoices_created

    @display(description="Issued", ordering="invoices_issued")
    def issued(self, run: BillingRun) -> int:
        return run.invoices_issued

    @display(description="Nothing to bill", ordering="nothing_to_bill")
    def nothing_to_bill_count(self, run: BillingRun) -> int:
        return run.nothing_to_bill

    def get_actions_detail(self, request, object_id):
        run = self.get_object(request, unquote(object_id))
        actions = super().get_actions_detail(request, object_id)
        if run is None or not billing_run_is_stalled(run):
            return [detail for detail in actions if detail.method.original_function_name != "mark_failed"]
        return actions

    # Who may start month-end may close a run whose worker died (Finance, Admin).
    def has_mark_failed_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_billingrun")

    @action(
        description="Mark as failed",
        icon="block",
        url_path="mark-failed",
        permissions=["mark_failed"],
        variant=ActionVariant.DANGER,
        dialog={
            "title": "Mark this stalled run as failed?",
            "description": "Use it when the run's worker died: the run ends as failed, with your name and reason "
            "among its failures. What it billed stays; running month-end again bills the customers it did not "
            "reach and sends on the drafts it made but did not route (approval or issue).",
            "form_class": MarkFailedForm,
            "form_submit_text": "Mark as failed",
        },
    )
    def mark_failed(self, request, form, object_id):
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        try:
            run = billing_run_mark_failed(actor=request.user, run=run, reason=form.cleaned_data["reason"])
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, f"{run} marked as failed.", messages.SUCCESS)
        return back_to(request, change_url(run))


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["name", "code", "kind", "customer", "balance_shown"]
    balance_shown = money_column("balance", "Balance")
    list_filter = ["kind", "currency", ("customer", CustomerFilter)]
    list_select_related = ["customer"]
    search_fields = ["code", "name", "customer__name", "customer__client_id"]


def _leg_side(field: str, description: str):
    show = money_column(field, description, currency="account.currency")
    # An empty side stays empty, as in a printed journal.
    return display(description=description)(lambda leg: show(leg) if getattr(leg, field) else "")


class LegInline(ReadOnlyInline):
    model = Leg
    hide_title = True  # each row's name repeats its columns
    fields = ["account", "debit_shown", "credit_shown", "balance_after_shown"]
    debit_shown = staticmethod(_leg_side("debit", "Debit"))
    credit_shown = staticmethod(_leg_side("credit", "Credit"))
    balance_after_shown = money_column("balance_after", "Balance after", currency="account.currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


@admin.register(Transaction)
class TransactionAdmin(SpreadsheetExportMixin, ReadOnlyAdmin):
    """The journal: append-only; a mistake is corrected by a reversing transaction, never here."""

    empty_message = "Nothing is posted yet: issuing an invoice or booking a payment posts to the journal."

    export_name = "journal"
    export_columns = [
        ("Date", lambda entry: local_time(entry.created_at)),
        ("Kind", lambda entry: entry.get_kind_display()),
        ("Reference", lambda entry: entry.reference),
        ("Description", lambda entry: entry.description),
        ("Customer", lambda entry: entry.customer.name if entry.customer else ""),
        ("Currency", lambda entry: entry.currency),
        # The debits' subquery sum (SQLite returns it without its places): two places, as every amount.
        ("Amount", lambda entry: round_amount(entry.debits)),
    ]

    list_display = ["created_at", "kind", "reference", "description", "customer", "amount"]
    list_filter = ["kind", "currency", ("customer", CustomerFilter)]
    list_filter_submit = True
    search_fields = ["reference"]
    search_help_text = "Reference (invoice, credit note or bank reference)"
    sortable_by = ["created_at", "kind"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ["kind", "description", "reference", "currency", "customer", "source_link", "created_by", "created_at"]
    readonly_fields = ["source_link"]
    inlines = [LegInline]

    def get_queryset(self, request):
        # A correlated subquery, computed for the rows of the page only (a join and GROUP BY would sum the table).
        debits = Leg.objects.filter(transaction=OuterRef("pk")).order_by().values("transaction")
        return (
            transaction_list_for(request.user)
            .select_related("customer", "created_by")
            .annotate(debits=Subquery(debits.annotate(total=Sum("debit")).values("total"), output_field=AMOUNT))
        )

    @display(description="Amount")
    def amount(self, entry: Transaction) -> str:
        return formatting.money(entry.debits, entry.currency)

    @display(description="Source")
    def source_link(self, entry: Transaction) -> str:
        source = entry.source
        if source is None:
            return "—"
        try:
            return format_html('<a href="{}">{}</a>', change_url(source), source)
        except NoReverseMatch:
            return str(source)


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdmin):
    empty_message = "The ledger has not been reconciled yet: it runs nightly, or now with the button above."
    list_display = ["__str__", "ran_at", "account_count", "transaction_count", "outcome"]
    actions_list = ["reconcile_now"]

    def has_reconcile_permission(self, request) -> bool:
        return request.user.has_perm("ledger.add_reconciliationreport")

    @display(description="Outcome", label={True: "success", False: "danger"})
    def outcome(self, report: ReconciliationReport) -> tuple[bool, str]:
        return report.balanced, "Balanced" if report.balanced else f"{len(report.differences)} difference(s)"

    @action(
        description="Run reconciliation now",
        icon="fact_check",
        permissions=["reconcile"],
        dialog={
            "title": "Reconcile the ledger now?",
            "description": "Every account's balance is checked against its legs, and every transaction against "
            "itself. Differences are reported, never fixed.",
            "form_submit_text": "Reconcile",
        },
    )
    def reconcile_now(self, request, form):
        report = ledger_reconcile()
        if report.balanced:
            self.message_user(request, f"The ledger reconciles: {report.account_count} accounts checked.")
        else:
            self.message_user(
                request, f"{len(report.differences)} difference(s) found; the admins were emailed.", messages.ERROR
            )
        return back_to(request, change_url(report))


class CustomerChangeList(ChangeList):
    """Adds to the page's customers what their overdue invoices still owe: one query for the page's rows."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        if self.model_admin.shows_money(request):
            owed = overdue_amounts([customer.pk for customer in self.result_list])
            for customer in self.result_list:
                customer.overdue_amount = owed.get(customer.pk)


admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerWithLedgerAdmin(catalog_admin.CustomerAdmin):
    """catalog's customer page plus an account section (balance, billing configuration, latest statement
    lines) and the statement page: catalog may not import the ledger, so the ledger extends the page."""

    change_form_after_template = "ledger/customer_account.html"

    def shows_money(self, request) -> bool:
        # Operations sees customers but no money.
        return request.user.has_perm("ledger.view_invoice")

    def get_queryset(self, request):
        customers = super().get_queryset(request)
        return customers_with_balance(customers) if self.shows_money(request) else customers

    def get_changelist(self, request, **kwargs):
        return CustomerChangeList

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        return [*columns, "balance", "overdue"] if self.shows_money(request) else columns

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        return [*filters, OverdueFilter] if self.shows_money(request) else filters

    @display(description="Balance", ordering="balance")
    def balance(self, customer: Customer) -> str:
        return formatting.money(customer.balance or 0, customer.currency)

    @display(description="Overdue", ordering="overdue_count")
    def overdue(self, customer: Customer) -> str:
        amount = getattr(customer, "overdue_amount", None)
        if not amount:
            return "—"
        invoices = f"{customer.overdue_count} invoice{'s' if customer.overdue_count != 1 else ''}"
        return format_html(
            '<span class="text-red-600 dark:text-red-500">{} ({})</span>',
            formatting.money(amount, customer.currency),
            invoices,
        )

    def get_urls(self):
        statement = self.admin_site.admin_view(CustomerStatementView.as_view(model_admin=self))
        return [path("<int:pk>/statement/", statement, name="catalog_customer_statement"), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Read once here: readonly fields are evaluated several times per page.
        if obj is not None and request.user.has_perm("ledger.view_transaction"):
            statement = customer_statement(obj)  # the balance and the number of lines; the latest read here
            lines = statement[-STATEMENT_LINES_ON_CUSTOMER_PAGE:]
            earlier = len(statement) > STATEMENT_LINES_ON_CUSTOMER_PAGE
            context["account"] = {
                "balance": statement.balance,
                "config": BillingConfig.objects.filter(customer=obj).first(),
                "lines": lines,
                "earlier": earlier,
                "opening_balance": lines[0].balance_before if earlier else None,
            }
        return super().render_change_form(request, context, add, change, form_url, obj)
