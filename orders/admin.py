"""The order desk in the admin: reference data (with import/export and history), the order list and page, and
"My open tasks".

Orders are read through orders.selectors (someone else's order answers 404) and written only by
orders.services: the order page is view-only, and its buttons, tabs and bulk actions post to small views that
call one service each and report what it said.
"""

from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, RelatedDropdownFilter
from unfold.contrib.import_export.forms import ExportForm, ImportForm
from unfold.decorators import action, display
from unfold.enums import ActionVariant

from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import ServiceButtonsMixin
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from billing_project.formatting import day, moment, money, percentage
from catalog.admin import ServiceBackedAdmin
from ledger.forms import money_label
from ledger.models import Invoice
from orders import views
from orders.admin_selectors import document_file_history, order_shared_with
from orders.admin_settlements import (
    SETTLEMENT_COLOURS,
    agreement_short,
    settle_again_message,
    settlement_kind,
)
from orders.forms import (
    BulkAssignForm,
    BulkMoveForm,
    CommentForm,
    ExpenseForm,
    OptionalReasonForm,
    OrderCreditForm,
    ReasonForm,
    ShareForm,
    TaskForm,
)
from orders.models import (
    Company,
    DocumentType,
    Expense,
    Order,
    OrderDocument,
    OrderType,
    OrderTypeDocument,
    Registrar,
    RevenueShareAgreement,
)
from orders.resources import (
    CompanyResource,
    DocumentTypeResource,
    OrderTypeDocumentResource,
    OrderTypeResource,
    RegistrarResource,
    RevenueShareAgreementResource,
)
from orders.selectors import (
    PaymentStatus,
    SettlementStatus,
    company_list_for,
    expense_list_for,
    expense_may_see,
    order_expenses,
    order_invoice_payments,
    order_list_for,
    order_may_see_money,
    order_may_see_payment_status,
    order_page,
    order_payment_status,
    order_settlements,
    settlement_may_see,
    settlement_status_of,
)
from orders.services.agreements import revenue_share_agreement_create, revenue_share_agreement_update
from orders.services.billing import REPLACEABLE, order_credit, order_invoice_create
from orders.services.orders import order_assign_many, order_transition, orders_complete, transitions_from
from orders.services.settlements import ENDED, order_settle, settlement_explanation
from usage.admin import CustomerFilter, EstimatedCountPaginator

Status = Order.Status
STATUS_COLOURS = {
    Status.STARTED: "info",
    Status.DOCUMENTS_PENDING: "warning",
    Status.IN_PROGRESS: "primary",
    Status.COMPLETED: "success",
    Status.FAILED: "danger",
    Status.CANCELLED: "default",
}
PAYMENT_COLOURS = {
    PaymentStatus.UNBILLED: "default",
    PaymentStatus.UNPAID: "warning",
    PaymentStatus.PARTLY_PAID: "info",
    PaymentStatus.PAID: "success",
    PaymentStatus.REFUNDED: "danger",
}
SETTLEMENT_STATUS_COLOURS = {
    SettlementStatus.NONE: "default",
    SettlementStatus.CALCULATED: "warning",
    SettlementStatus.APPROVED: "info",
    SettlementStatus.PAID: "success",
}
DOCUMENT_COLOURS = {
    OrderDocument.Status.PENDING: "default",
    OrderDocument.Status.RECEIVED: "info",
    OrderDocument.Status.SUBMITTED: "primary",
    OrderDocument.Status.ACCEPTED: "success",
    OrderDocument.Status.REJECTED: "danger",
}


class ReferenceDataAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ImportExportModelAdmin, ModelAdmin):
    """Reference data kept by hand: saved with the model's own checks, imported whole or not at all."""

    import_form_class = ImportForm
    export_form_class = ExportForm

    def get_import_data_kwargs(self, **kwargs):
        return super().get_import_data_kwargs(**kwargs) | {"rollback_on_validation_errors": True}


class OrderTypeDocumentInline(TabularInline):
    model = OrderTypeDocument
    extra = 0
    fields = ["document_type", "required", "client_note"]
    autocomplete_fields = ["document_type"]
    verbose_name = "document"
    verbose_name_plural = "documents asked for"
    hide_title = True  # each row's name repeats its columns
    tab = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("document_type")


@admin.register(OrderType)
class OrderTypeAdmin(ReferenceDataAdmin):
    resource_classes = [OrderTypeResource, OrderTypeDocumentResource]
    list_display = ["name", "code", "fee_default", "target_duration_days", "active"]
    list_filter = ["active"]
    search_fields = ["code", "name"]
    inlines = [OrderTypeDocumentInline]
    fieldsets = [
        (None, {"fields": ["name", "code", "description", "active"]}),
        ("Defaults of a new order", {"fields": ["default_fee", "default_base_charge", "target_duration_days"]}),
    ]

    @display(description="Default fee", ordering="default_fee")
    def fee_default(self, order_type: OrderType) -> str:
        return money(order_type.default_fee)


@admin.register(DocumentType)
class DocumentTypeAdmin(ReferenceDataAdmin):
    resource_classes = [DocumentTypeResource]
    list_display = ["name", "code", "accepted_kinds", "max_size", "validity_days", "active"]
    list_filter = ["active"]
    search_fields = ["code", "name"]
    fields = ["name", "code", "description", "accepted_kinds", "max_size_bytes", "validity_days", "active"]

    @display(description="Maximum size", ordering="max_size_bytes")
    def max_size(self, document_type: DocumentType) -> str:
        return f"{document_type.max_size_bytes / (1024 * 1024):,.1f} MB"


@admin.register(Registrar)
class RegistrarAdmin(ReferenceDataAdmin):
    resource_classes = [RegistrarResource]
    list_display = ["name", "jurisdiction", "website", "contact_email"]
    list_filter = ["jurisdiction"]
    search_fields = ["name", "contact_email"]


@admin.register(Company)
class CompanyAdmin(ReferenceDataAdmin):
    resource_classes = [CompanyResource]
    list_display = ["name", "registration_number", "registrar", "jurisdiction", "customer", "status"]
    list_filter = ["status", "jurisdiction", ("registrar", RelatedDropdownFilter), ("customer", CustomerFilter)]
    list_filter_submit = True
    list_select_related = ["registrar", "customer"]
    search_fields = ["name", "registration_number", "customer__name", "customer__client_id"]
    search_help_text = "Company name or number, customer name or client id"
    autocomplete_fields = ["customer", "registrar"]
    fields = ["name", "registration_number", "registrar", "jurisdiction", "customer", "incorporation_date", "status"]

    def get_queryset(self, request):
        return company_list_for(request.user).select_related("registrar", "customer")


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        overdue = {"status__in": Order.OPEN_STATUSES, "due_date__lt": billing_today()}
        if self.value() == "yes":
            return queryset.filter(**overdue)
        if self.value() == "no":
            return queryset.exclude(**overdue)
        return queryset


def person(user) -> str:
    return (user.full_name or user.email) if user is not None else "—"


def when(value) -> str:
    return moment(value) or "—"


def missing_documents_of(order: Order) -> list[OrderDocument]:
    """The required documents not accepted yet, from the documents the page has already read."""
    return [d for d in order.documents.all() if d.required and d.status != OrderDocument.Status.ACCEPTED]


TRANSITION_DIALOGS = {
    "start_work": {
        "title": "Start work on this order?",
        "description": "Every required document must be accepted; if one is not, the order stays where it is and "
        "you are told which.",
        "form_class": OptionalReasonForm,
        "form_submit_text": "Start work",
    },
    "start_work_override": {
        "title": "Start work with documents missing?",
        "description": "As an Admin you may start work before every required document is accepted. Say why: "
        "the reason and the override are kept in the order's timeline.",
        "form_class": ReasonForm,
        "form_submit_text": "Override and start",
    },
    "complete": {
        "title": "Complete this order?",
        "description": "The order is finished; only an Admin can reopen it.",
        "form_class": OptionalReasonForm,
        "form_submit_text": "Complete",
    },
    "mark_failed": {
        "title": "Mark this order failed?",
        "description": "Say why; the reason is kept in the order's timeline and shown to the client.",
        "form_class": ReasonForm,
        "form_submit_text": "Mark failed",
    },
    "cancel": {
        "title": "Cancel this order?",
        "description": "Say why; the reason is kept in the order's timeline and shown to the client.",
        "form_class": ReasonForm,
        "form_submit_text": "Cancel order",
    },
    "reopen": {
        "title": "Reopen this order?",
        "description": "The order goes back to work; say why, it is kept in the timeline.",
        "form_class": ReasonForm,
        "form_submit_text": "Reopen",
    },
}


@admin.register(Order)
class OrderAdmin(ServiceButtonsMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
    list_display = [
        "order_number",
        "customer_name",
        "order_type",
        "status_label",
        "assignee_name",
        "due",
        "fee_label",
    ]
    list_filter = [
        "status",
        ("order_type", RelatedDropdownFilter),
        ("customer", CustomerFilter),
        ("partner", RelatedDropdownFilter),
        ("assignee", RelatedDropdownFilter),
        OverdueFilter,
        ("due_date", RangeDateFilter),
    ]
    list_filter_submit = True
    list_select_related = ["customer", "order_type", "company", "assignee"]
    search_fields = [
        "number",
        "customer__name",
        "customer__client_id",
        "company__name",
        "company__registration_number",
    ]
    search_help_text = "Order number, customer name or client id, company name or number"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["assign", "move_status"]
    actions_detail = [
        "edit",
        "start_work",
        "start_work_override",
        "complete",
        "mark_failed",
        "cancel",
        "reopen",
        "create_invoice",
        "credit",
        "calculate_settlement",
    ]
    change_form_template = "orders/order_change_form.html"

    # The page and the list -------------------------------------------------------------------------------

    def get_queryset(self, request):
        return order_list_for(request.user)

    def get_object(self, request, object_id, from_field=None):
        """The order with what its page shows (orders.selectors.order_page), read once per request."""
        if not str(object_id).isdigit():
            return None
        cache = request.__dict__.setdefault("_order_pages", {})
        if object_id not in cache:
            cache[object_id] = order_page(request.user, int(object_id))
        return cache[object_id]

    def get_fieldsets(self, request, obj=None):
        money = ["fee_label", "base_charge_label"] if order_may_see_money(request.user) else ["fee_label"]
        record = ["reason"] if obj is not None and obj.reason else []
        billing = ["payment_status", "invoice_summary", "invoice_payments"]
        if settlement_may_see(request.user):
            billing.append("settlement_status")
        return [
            (None, {"fields": ["customer", "order_type", "company", "partner", "status", "assignee_name"]}),
            ("Terms", {"fields": [*money, "start", "due", "description"]}),
            *([("Money", {"fields": billing})] if order_may_see_payment_status(request.user) else []),
            ("Record", {"fields": [*record, "created_by_name", "started", "finished"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [field for _, options in self.get_fieldsets(request, obj) for field in options["fields"]]

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("my-tasks/", wrap(views.MyTasksView.as_view(model_admin=self)), name="orders_my_tasks"),
            path("<int:pk>/edit/", wrap(views.OrderEditView.as_view(model_admin=self)), name="orders_order_edit"),
            path(
                "<int:pk>/documents/<int:document_pk>/upload/",
                wrap(views.document_upload_view),
                name="orders_document_upload",
            ),
            path(
                "<int:pk>/documents/<int:document_pk>/review/",
                wrap(views.document_review_view),
                name="orders_document_review",
            ),
            path("<int:pk>/documents/add/", wrap(views.document_add_view), name="orders_document_add"),
            path("<int:pk>/tasks/add/", wrap(views.task_add_view), name="orders_task_add"),
            path("tasks/<int:task_pk>/done/", wrap(views.task_done_view), name="orders_task_done"),
            path("<int:pk>/comments/add/", wrap(views.comment_add_view), name="orders_comment_add"),
            path("<int:pk>/access/share/", wrap(views.share_view), name="orders_order_share"),
            path("<int:pk>/access/unshare/", wrap(views.unshare_view), name="orders_order_unshare"),
            path("files/<int:file_pk>/", wrap(views.document_download), name="orders_document_download"),
            path("<int:pk>/expenses/add/", wrap(views.expense_add_view), name="orders_expense_add"),
            path(
                "<int:pk>/expenses/<int:expense_pk>/reverse/",
                wrap(views.expense_reverse_view),
                name="orders_expense_reverse",
            ),
            path("attachments/<int:pk>/", wrap(views.attachment_download), name="orders_attachment_download"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return views.OrderCreateView.as_view(model_admin=self)(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the page is view-only; edits and transitions call the services

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_run_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("orders.change_order")

    def has_bill_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_invoice")

    def has_credit_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("ledger.add_creditnote")

    def has_settle_permission(self, request, object_id=None) -> bool:
        return settlement_may_see(request.user) and request.user.has_perm("orders.add_settlement")

    def has_override_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("orders.change_order") and request.user.has_perm("orders.override_order")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context |= self._page_context(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")  # not the admin's redirect home: someone else's order is a 404
        return super().change_view(request, object_id, form_url, (extra_context or {}) | {"title": order.number})

    def _page_context(self, request, order: Order) -> dict:
        user = request.user
        documents = list(order.documents.all())
        history = document_file_history(order)
        for document in documents:
            document.file_history = history.get(document.pk, [])
        present = {document.document_type_id for document in documents}
        optional = [
            requirement.document_type
            for requirement in order.order_type.requirements.select_related("document_type")
            if requirement.document_type_id not in present
        ]
        for document in documents:
            document.colour = DOCUMENT_COLOURS[document.status]
        may_share = user.has_perm("orders.share_order")
        accepted = sum(document.status == OrderDocument.Status.ACCEPTED for document in documents)
        tabs = [
            ("general", "Details", None),
            ("documents", "Documents", f"{accepted}/{len(documents)}"),
            ("tasks", "Tasks", sum(not task.is_done for task in order.tasks.all())),
            ("comments", "Comments", len(order.comments.all())),
            ("timeline", "Timeline", None),
        ]
        if may_share:
            tabs.append(("access", "Access", None))
        expense_context = self._expense_context(request, order)
        if expense_context:
            tabs.insert(3, ("expenses", "Expenses", len(expense_context["expenses"])))
        settlement_context = self._settlement_context(request, order)
        if settlement_context:
            live = [row for row in settlement_context["settlements"] if row["settlement"].status != "void"]
            tabs.insert(4 if expense_context else 3, ("settlement", "Settlement", len(live)))
        money_tabs = expense_context | settlement_context
        return money_tabs | {
            "order": order,
            "status_colour": STATUS_COLOURS[order.status],
            "tabs": tabs,
            "today": billing_today(),
            "documents": documents,
            "optional_types": optional if order.is_open else [],
            "missing": missing_documents_of(order),
            "may_review": user.has_perm("orders.change_orderdocument") and order.is_open,
            "may_add_task": user.has_perm("orders.add_task"),
            "may_finish_tasks": user.has_perm("orders.change_task"),
            "may_comment": user.has_perm("orders.add_comment"),
            "may_share": may_share,
            "shared_with": list(order_shared_with(order)) if may_share else [],
            "task_form": TaskForm(auto_id="task_%s"),
            "comment_form": CommentForm(auto_id="comment_%s"),
            "share_form": ShareForm(auto_id="share_%s"),
        }

    def _expense_context(self, request, order: Order) -> dict:
        """The Expenses tab, for those who see expenses (Finance and Admin); empty for everyone else."""
        if not expense_may_see(request.user):
            return {}
        expenses = order_expenses(request.user, order)
        for expense in expenses:
            expense.reversal = getattr(expense, "reversed_by", None)
            expense.amount_label = money_label(expense.amount, expense.currency)
        return {
            "expenses": expenses,
            "expense_total": money_label(sum((e.amount for e in expenses), Decimal("0.00")), order.currency),
            "may_record_expense": request.user.has_perm("orders.add_expense"),
            "expense_form": ExpenseForm(auto_id="expense_%s", initial={"date": billing_today()}),
        }

    def _order_settlements(self, request, order: Order) -> list:
        """The order's settlements, read once per request (the tab and the Money fieldset share them)."""
        if not hasattr(order, "settlement_list"):
            order.settlement_list = order_settlements(request.user, order)
        return order.settlement_list

    def _settlement_context(self, request, order: Order) -> dict:
        """The Settlement tab, for those who see settlements (Finance and Admin); empty for everyone else."""
        if not settlement_may_see(request.user):
            return {}
        settlements = self._order_settlements(request, order)
        status = settlement_status_of(settlements)
        explanation = None
        if not settlements and order.status not in ENDED:
            # What settlement_explanation says of an open order, without reading the order's money for it.
            explanation = f"{order.number} has not ended: it is settled once it is completed or failed."
        elif not settlements:
            outcome = settlement_explanation(order)
            explanation = outcome.reason if outcome else "Not calculated yet: use “Calculate settlement”."
        elif status == SettlementStatus.NONE:
            explanation = "Every settlement of this order is void; “Calculate settlement” makes a new one."
        rows = [
            {
                "settlement": settlement,
                "kind": settlement_kind(settlement),
                "colour": SETTLEMENT_COLOURS[settlement.status],
                "net": money_label(settlement.net, settlement.currency),
                "share": money_label(settlement.share, settlement.currency),
                "amount": money_label(settlement.amount, settlement.currency),
                "agreement": agreement_short(settlement.calculation),
            }
            for settlement in settlements
        ]
        return {
            "settlements": rows,
            "settlement_status": status,
            "settlement_status_colour": SETTLEMENT_STATUS_COLOURS[status],
            "settlement_explanation": explanation,
        }

    @display(description="Number", ordering="number")
    def order_number(self, order: Order) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', order.number)

    @display(description="Customer", ordering="customer__name")
    def customer_name(self, order: Order) -> str:
        return order.customer.name

    @display(description="Company", ordering="company__name")
    def company_name(self, order: Order) -> str:
        return order.company.name if order.company else "—"

    @display(description="Assignee", ordering="assignee__full_name")
    def assignee_name(self, order: Order) -> str:
        return person(order.assignee)

    @display(description="Created by")
    def created_by_name(self, order: Order) -> str:
        return person(order.created_by)

    @display(description="Start date", ordering="start_date")
    def start(self, order: Order) -> str:
        return day(order.start_date)

    @display(description="Started")
    def started(self, order: Order) -> str:
        return when(order.started_at)

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def status_label(self, order: Order) -> tuple[str, str]:
        return order.status, order.get_status_display()

    @display(description="Due", ordering="due_date")
    def due(self, order: Order) -> str:
        if order.is_overdue:
            return format_html(
                '<span class="font-semibold text-red-600 dark:text-red-400 whitespace-nowrap">{}</span> '
                '<span class="text-red-600 dark:text-red-400">overdue</span>',
                day(order.due_date),
            )
        return format_html('<span class="whitespace-nowrap">{}</span>', day(order.due_date))

    @display(description="Fee", ordering="fee")
    def fee_label(self, order: Order) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', money_label(order.fee, order.currency))

    @display(description="Base charge")
    def base_charge_label(self, order: Order) -> str:
        return money_label(order.base_charge, order.currency)

    @display(description="Finished")
    def finished(self, order: Order) -> str:
        return when(order.completed_at or order.failed_at or order.cancelled_at)

    @display(description="Payment status")
    def payment_status(self, order: Order) -> str:
        status = order_payment_status(order)
        return render_to_string("unfold/helpers/label.html", {"text": status.label, "type": PAYMENT_COLOURS[status]})

    @display(description="Settlement status")
    def settlement_status(self, order: Order) -> str:
        # Shown only to those who see settlements (get_fieldsets); the page's context read the settlements.
        status = settlement_status_of(getattr(order, "settlement_list", []))
        return render_to_string(
            "unfold/helpers/label.html", {"text": status.label, "type": SETTLEMENT_STATUS_COLOURS[status]}
        )

    @display(description="Invoice")
    def invoice_summary(self, order: Order) -> str:
        invoice = order.invoice
        if invoice is None:
            if order.fee == 0 and order.base_charge == 0:
                return "None: the order has no fee and no base charge to bill."
            return "None yet: Finance bills the order with “Create invoice”."
        name = invoice.number or f"Draft {invoice.pk}"
        figures = [f"total {money_label(invoice.total, invoice.currency)}"]
        if invoice.number:
            figures.append(f"paid {money_label(invoice.amount_paid, invoice.currency)}")
            if invoice.amount_credited:
                figures.append(f"credited {money_label(invoice.amount_credited, invoice.currency)}")
            if invoice.status in Invoice.OPEN:
                figures.append(f"still owed {money_label(invoice.outstanding, invoice.currency)}")
        return format_html(
            '<a class="text-primary-600 font-medium" href="{}">{}</a> · {} · {}',
            reverse("admin:ledger_invoice_change", args=[invoice.pk]),
            name,
            invoice.get_status_display(),
            ", ".join(figures),
        )

    @display(description="Payments")
    def invoice_payments(self, order: Order) -> str:
        if order.invoice is None or not order.invoice.number:
            return "—"
        rows = order_invoice_payments(order.invoice)
        if not rows:
            return "None received yet."
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} · {}",
            (
                (
                    day(row.payment.received_at if row.payment else row.credit_note.issued_at),
                    row.payment.bank_reference if row.payment else f"credit from {row.credit_note.number}",
                    money_label(row.amount, order.invoice.currency),
                )
                for row in rows
            ),
        )

    # Buttons of the order page ----------------------------------------------------------------------------

    def get_actions_detail(self, request, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            return []
        targets = {transition.to for transition in transitions_from(order.status)}
        reopens = any(transition.reopens for transition in transitions_from(order.status))
        offered = {
            "start_work": Status.IN_PROGRESS in targets and not reopens,
            "start_work_override": Status.IN_PROGRESS in targets and not reopens and bool(missing_documents_of(order)),
            "complete": Status.COMPLETED in targets,
            "mark_failed": Status.FAILED in targets,
            "cancel": Status.CANCELLED in targets,
            "reopen": reopens,
            "create_invoice": order.status != Status.CANCELLED
            and (order.invoice is None or order.invoice.status in REPLACEABLE)
            and (order.fee > 0 or order.base_charge > 0),
            "credit": order.invoice is not None
            and bool(order.invoice.number)
            and order.invoice.status not in REPLACEABLE,
            "calculate_settlement": order.status in ENDED,
        }
        return [
            detail_action
            for detail_action in super().get_actions_detail(request, object_id)
            if offered.get(detail_action.method.original_function_name, True)
        ]

    def _transition(self, request, object_id, to_status: str, *, reason: str = "", override: bool = False):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        return self.run_service(
            request,
            views.order_url(order),
            lambda: order_transition(
                actor=request.user, order=order, to_status=to_status, reason=reason, override=override
            ),
            lambda moved: f"{moved.number} is {moved.get_status_display().lower()}.",
        )

    @action(description="Edit", icon="edit", permissions=["run"])
    def edit(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:orders_order_edit", args=[object_id]))

    @action(
        description="Start work",
        icon="play_arrow",
        url_path="start-work",
        permissions=["run"],
        variant=ActionVariant.PRIMARY,
        dialog=TRANSITION_DIALOGS["start_work"],
    )
    def start_work(self, request, form, object_id):
        return self._transition(request, object_id, Status.IN_PROGRESS, reason=form.cleaned_data["reason"])

    @action(
        description="Override start",
        icon="gavel",
        url_path="start-work-override",
        permissions=["override"],
        variant=ActionVariant.WARNING,
        dialog=TRANSITION_DIALOGS["start_work_override"],
    )
    def start_work_override(self, request, form, object_id):
        return self._transition(
            request, object_id, Status.IN_PROGRESS, reason=form.cleaned_data["reason"], override=True
        )

    @action(
        description="Complete",
        icon="task_alt",
        permissions=["run"],
        variant=ActionVariant.SUCCESS,
        dialog=TRANSITION_DIALOGS["complete"],
    )
    def complete(self, request, form, object_id):
        return self._transition(request, object_id, Status.COMPLETED, reason=form.cleaned_data["reason"])

    @action(
        description="Mark failed",
        icon="error",
        url_path="fail",
        permissions=["run"],
        variant=ActionVariant.DANGER,
        dialog=TRANSITION_DIALOGS["mark_failed"],
    )
    def mark_failed(self, request, form, object_id):
        return self._transition(request, object_id, Status.FAILED, reason=form.cleaned_data["reason"])

    @action(
        description="Cancel",
        icon="cancel",
        permissions=["run"],
        variant=ActionVariant.DANGER,
        dialog=TRANSITION_DIALOGS["cancel"],
    )
    def cancel(self, request, form, object_id):
        return self._transition(request, object_id, Status.CANCELLED, reason=form.cleaned_data["reason"])

    @action(
        description="Reopen",
        icon="restart_alt",
        permissions=["override"],
        dialog=TRANSITION_DIALOGS["reopen"],
    )
    def reopen(self, request, form, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        target = next((t.to for t in transitions_from(order.status) if t.reopens), Status.IN_PROGRESS)
        return self._transition(request, object_id, target, reason=form.cleaned_data["reason"])

    @action(description="Create invoice", icon="receipt_long", url_path="create-invoice", permissions=["bill"])
    def create_invoice(self, request, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        return self.run_service(
            request,
            views.order_url(order),
            lambda: order_invoice_create(actor=request.user, order=order),
            lambda invoice: (
                f"Draft invoice {invoice.pk} created for {order.number}: "
                f"{money_label(invoice.total, invoice.currency)}. Issue it from the invoice's page."
            ),
        )

    @action(
        description="Credit",
        icon="undo",
        permissions=["credit"],
        variant=ActionVariant.WARNING,
        dialog={
            "title": "Give money back on this order?",
            "description": "A credit note on the order's invoice: part of its fee (with its tax), or the whole "
            "invoice. What was already paid stays with the customer as credit until it is refunded.",
            "form_class": OrderCreditForm,
            "form_submit_text": "Issue credit note",
        },
    )
    def credit(self, request, form, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        data = form.cleaned_data
        return self.run_service(
            request,
            views.order_url(order),
            lambda: order_credit(actor=request.user, order=order, amount=data["amount"], reason=data["reason"]),
            lambda note: f"Credit note {note.number} issued: {money_label(note.total, note.currency)}.",
        )

    @action(
        description="Calculate settlement",
        icon="calculate",
        url_path="settle",
        permissions=["settle"],
        dialog={
            "title": "Calculate the partner's settlement again?",
            "description": "From the order's invoice, credit notes, payments and expenses now. Nothing is written "
            "when nothing changed; a settlement not yet approved is replaced, an approved one is corrected by a new "
            "one, which another Finance user approves.",
            "form_submit_text": "Calculate",
        },
    )
    def calculate_settlement(self, request, form, object_id):
        order = self.get_object(request, unquote(object_id))
        if order is None:
            raise Http404("No such order.")
        try:
            settlement = order_settle(actor=request.user, order=order)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            text, level = settle_again_message(order, settlement)
            self.message_user(request, text, level)
        url = views.order_url(order, "settlement")
        if request.headers.get("HX-Request"):
            return HttpResponse(headers={"HX-Redirect": url})
        return HttpResponseRedirect(url)

    # Bulk actions -----------------------------------------------------------------------------------------

    def _bulk_form_page(self, request, queryset, form, *, title: str, submit: str) -> TemplateResponse:
        context = self.admin_site.each_context(request) | {
            "opts": self.opts,
            "title": title,
            "form": form,
            "orders": queryset.select_related("customer")[:100],
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action": request.POST.get("action", ""),
            "submit_label": submit,
        }
        return TemplateResponse(request, "orders/bulk_action.html", context)

    @action(description="Assign to a user", permissions=["run"])
    def assign(self, request, queryset):
        form = BulkAssignForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._bulk_form_page(request, queryset, form, title="Assign orders", submit="Assign")
        assignee = form.cleaned_data["assignee"]
        try:
            count = order_assign_many(actor=request.user, orders=list(queryset), assignee=assignee)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return None
        whom = str(assignee) if assignee else "nobody"
        self.message_user(request, f"{count} order(s) assigned to {whom}.", messages.SUCCESS)
        return None

    def _move_one_by_one(self, request, queryset, *, to_status: str, reason: str) -> tuple[list[str], list[str]]:
        moved, refused = [], []
        for order in queryset.order_by("pk"):
            try:
                order_transition(actor=request.user, order=order, to_status=to_status, reason=reason)
            except DomainError as error:
                refused.append(f"{order.number}: {error.message}")
            else:
                moved.append(order.number)
        return moved, refused

    @action(description="Move to another status", permissions=["run"])
    def move_status(self, request, queryset):
        form = BulkMoveForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._bulk_form_page(request, queryset, form, title="Move orders", submit="Move")
        to_status, reason = form.cleaned_data["to_status"], form.cleaned_data["reason"]
        if to_status == Status.COMPLETED:  # at once, settlements included: a month's orders in one go
            completed, refused = orders_complete(actor=request.user, orders=list(queryset))
            moved = [order.number for order in completed]
        else:
            moved, refused = self._move_one_by_one(request, queryset, to_status=to_status, reason=reason)
        label = Status(to_status).label.lower()
        if moved:
            self.message_user(request, f"Moved to {label}: {', '.join(moved)}.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not moved — " + " ".join(refused), messages.ERROR)
        return None


@admin.register(RevenueShareAgreement)
class RevenueShareAgreementAdmin(ServiceBackedAdmin):
    """Partners' revenue-share agreements, written through orders.services.agreements; a saved agreement keeps its
    partner and order type."""

    resource_classes = [RevenueShareAgreementResource]
    update_kwarg = "agreement"
    list_display = ["partner", "applies_to", "share", "first_day", "last_day"]
    list_filter = [("partner", RelatedDropdownFilter), ("order_type", RelatedDropdownFilter), "valid_from"]
    list_select_related = ["partner", "order_type"]
    search_fields = ["partner__name", "order_type__name", "order_type__code"]
    autocomplete_fields = ["partner", "order_type"]

    def get_fields(self, request, obj=None):
        return ["partner", "order_type" if obj is None else "applies_to", "percentage", "valid_from", "valid_to"]

    def get_readonly_fields(self, request, obj=None):
        return ["partner", "applies_to"] if obj is not None else []

    @display(description="Order type", ordering="order_type__name")
    def applies_to(self, agreement: RevenueShareAgreement) -> str:
        return agreement.order_type.name if agreement.order_type_id else "All (general)"

    @display(description="Share", ordering="percentage")
    def share(self, agreement: RevenueShareAgreement) -> str:
        return percentage(agreement.percentage)

    @display(description="Valid from", ordering="valid_from")
    def first_day(self, agreement: RevenueShareAgreement) -> str:
        return day(agreement.valid_from)

    @display(description="Valid to", ordering="valid_to")
    def last_day(self, agreement: RevenueShareAgreement) -> str:
        return day(agreement.valid_to) if agreement.valid_to else "open-ended"

    @staticmethod
    def create_service(*, actor, **data):
        return revenue_share_agreement_create(actor=actor, **data)

    @staticmethod
    def update_service(*, actor, agreement, **data):
        return revenue_share_agreement_update(actor=actor, agreement=agreement, **data)


@admin.register(Expense)
class ExpenseAdmin(ModelAdmin):
    """Every expense the user may see, read-only: expenses are recorded and reversed on the order's page."""

    list_display = [
        "expense_ref",
        "date_label",
        "order_link",
        "category",
        "payee_label",
        "amount_label",
        "paid_label",
        "reversal_label",
        "receipt_link",
    ]
    list_filter = [
        "category",
        ("date", RangeDateFilter),
        ("order__order_type", RelatedDropdownFilter),
        "paid",
    ]
    list_filter_submit = True
    list_select_related = ["order", "order__customer", "reverses", "reversed_by"]
    search_fields = ["order__number", "payee", "reference"]
    search_help_text = "Order number, payee or reference"
    ordering = ["-date", "-id"]
    show_full_result_count = False

    def get_queryset(self, request):
        return expense_list_for(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return expense_may_see(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @display(description="Expense", ordering="id")
    def expense_ref(self, expense: Expense) -> str:
        return f"EXP-{expense.pk}"

    @display(description="Date", ordering="date")
    def date_label(self, expense: Expense) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', day(expense.date))

    @display(description="Order", ordering="order__number")
    def order_link(self, expense: Expense) -> str:
        return format_html(
            '<a class="text-primary-600 whitespace-nowrap" href="{}">{}</a> <span class="opacity-70">{}</span>',
            views.order_url(expense.order, "expenses"),
            expense.order.number,
            expense.order.customer.name,
        )

    @display(description="Payee", ordering="payee")
    def payee_label(self, expense: Expense) -> str:
        if not expense.reference:
            return expense.payee
        return format_html('{}<div class="opacity-70">Ref. {}</div>', expense.payee, expense.reference)

    @display(description="Amount", ordering="amount")
    def amount_label(self, expense: Expense) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', money_label(expense.amount, expense.currency))

    @display(description="Paid", ordering="paid")
    def paid_label(self, expense: Expense) -> str:
        return "Paid" if expense.paid else "Owed"

    @display(description="Correction")
    def reversal_label(self, expense: Expense) -> str:
        if expense.reverses_id:
            return format_html('Reverses EXP-{}<div class="opacity-70">{}</div>', expense.reverses_id, expense.reason)
        reversal = getattr(expense, "reversed_by", None)
        return f"Reversed by EXP-{reversal.pk}" if reversal else "—"

    @display(description="Receipt")
    def receipt_link(self, expense: Expense) -> str:
        if not expense.receipt:
            return "—"
        return format_html(
            '<a class="text-primary-600" href="{}">{}</a>',
            reverse("admin:orders_expense_receipt", args=[expense.pk]),
            expense.receipt_name,
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/receipt/", wrap(views.expense_receipt_download), name="orders_expense_receipt"),
            *super().get_urls(),
        ]


# Payout batches have their own module; importing it registers them.
from orders import admin_payouts  # noqa: E402, F401
