"""Admin pages and small form posts of the order desk: each parses input, calls one service, and says how it went.

Every order is looked up through orders.selectors.order_list_for, so someone else's order (and its documents,
tasks and files) answers 404; files are streamed through the application, never from a public media URL.
"""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.generic import FormView, TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from billing_project.formatting import money
from ledger.views import ServiceFormView
from orders.admin_selectors import comment_attachment_for
from orders.forms import (
    CommentForm,
    DocumentUploadForm,
    ExpenseForm,
    ExpenseReverseForm,
    OrderCreateForm,
    OrderEditForm,
    RejectForm,
    ShareForm,
    TaskForm,
)
from orders.models import DocumentType, Order
from orders.selectors import (
    document_file_for,
    expense_list_for,
    expense_may_see,
    open_tasks_for,
    order_list_for,
    order_may_see_money,
    task_list_for,
)
from orders.services.comments import comment_add
from orders.services.documents import document_for_type, document_review, document_upload
from orders.services.expenses import expense_record, expense_reverse
from orders.services.orders import order_create, order_update
from orders.services.sharing import order_share, order_unshare
from orders.services.tasks import task_complete, task_create

MY_TASKS_PAGE_SIZE = 50


def order_url(order: Order, tab: str = "") -> str:
    url = reverse("admin:orders_order_change", args=[order.pk])
    return f"{url}#{tab}" if tab else url


def _order(request, pk: int) -> Order:
    return get_object_or_404(order_list_for(request.user).select_related("order_type", "customer"), pk=pk)


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _first_error(form) -> str:
    return next(f"{form[name].label}: {errors[0]}" for name, errors in form.errors.items())


def _run(request, url: str, call: Callable, success: Callable[..., str]) -> HttpResponseRedirect:
    """Call one service; its refusal (or the form's) becomes an error message, success a success message."""
    try:
        result = call()
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success(result))
    return HttpResponseRedirect(url)


def _invalid(request, url: str, form) -> HttpResponseRedirect:
    messages.error(request, _first_error(form))
    return HttpResponseRedirect(url)


@require_POST
def document_upload_view(request, pk: int, document_pk: int):
    _require(request, "orders.change_orderdocument")
    order = _order(request, pk)
    document = get_object_or_404(order.documents.select_related("document_type"), pk=document_pk)
    url = order_url(order, "documents")
    form = DocumentUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _invalid(request, url, form)
    return _run(
        request,
        url,
        lambda: document_upload(actor=request.user, document=document, upload=form.cleaned_data["file"]),
        lambda uploaded: f"{uploaded.document_type.name}: {uploaded.current_file.original_name} received.",
    )


@require_POST
def document_add_view(request, pk: int):
    """An optional document the order type lists, with its first file: both or neither."""
    _require(request, "orders.change_orderdocument")
    order = _order(request, pk)
    url = order_url(order, "documents")
    form = DocumentUploadForm(request.POST, request.FILES)
    document_type = DocumentType.objects.filter(pk=request.POST.get("document_type", "")).first()
    if document_type is None:
        messages.error(request, "Document type: choose one.")
        return HttpResponseRedirect(url)
    if not form.is_valid():
        return _invalid(request, url, form)

    @transaction.atomic
    def add():
        document = document_for_type(actor=request.user, order=order, document_type=document_type)
        return document_upload(actor=request.user, document=document, upload=form.cleaned_data["file"])

    return _run(request, url, add, lambda uploaded: f"{uploaded.document_type.name}: file received.")


@require_POST
def document_review_view(request, pk: int, document_pk: int):
    _require(request, "orders.change_orderdocument")
    order = _order(request, pk)
    document = get_object_or_404(order.documents.select_related("document_type"), pk=document_pk)
    url = order_url(order, "documents")
    accept = request.POST.get("decision") == "accept"
    form = RejectForm(request.POST)
    if not accept and not form.is_valid():
        messages.error(request, f"Say why {document.document_type.name} is rejected; the client sees the reason.")
        return HttpResponseRedirect(url)
    return _run(
        request,
        url,
        lambda: document_review(
            actor=request.user, document=document, accept=accept, reason="" if accept else form.cleaned_data["reason"]
        ),
        lambda reviewed: f"{reviewed.document_type.name} {reviewed.get_status_display().lower()}.",
    )


@require_POST
def task_add_view(request, pk: int):
    _require(request, "orders.add_task")
    order = _order(request, pk)
    url = order_url(order, "tasks")
    form = TaskForm(request.POST)
    if not form.is_valid():
        return _invalid(request, url, form)
    return _run(
        request,
        url,
        lambda: task_create(actor=request.user, order=order, **form.cleaned_data),
        lambda task: f"Task “{task.title}” added.",
    )


@require_POST
def task_done_view(request, task_pk: int):
    """Mark a task done: whoever may change tasks, or its assignee (from "My open tasks")."""
    task = get_object_or_404(task_list_for(request.user).select_related("order"), pk=task_pk)
    if not (request.user.has_perm("orders.change_task") or task.assignee_id == request.user.pk):
        raise PermissionDenied
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = order_url(task.order, "tasks")
    return _run(
        request,
        back,
        lambda: task_complete(actor=request.user, task=task),
        lambda done: f"Task “{done.title}” on {task.order.number} done.",
    )


@require_POST
def comment_add_view(request, pk: int):
    _require(request, "orders.add_comment")
    order = _order(request, pk)
    url = order_url(order, "comments")
    form = CommentForm(request.POST, request.FILES)
    if not form.is_valid():
        return _invalid(request, url, form)
    return _run(
        request,
        url,
        lambda: comment_add(
            actor=request.user,
            order=order,
            body=form.cleaned_data["body"],
            attachments=form.cleaned_data["attachments"],
        ),
        lambda comment: (
            "Comment added"
            + (f" with {comment.attachments.count()} attachment(s)." if form.cleaned_data["attachments"] else ".")
        ),
    )


@require_POST
def share_view(request, pk: int):
    _require(request, "orders.share_order")
    order = _order(request, pk)
    url = order_url(order, "access")
    form = ShareForm(request.POST)
    if not form.is_valid():
        return _invalid(request, url, form)
    user = form.cleaned_data["user"]
    return _run(
        request,
        url,
        lambda: order_share(actor=request.user, order=order, user=user),
        lambda _: f"{order.number} is shared with {user}.",
    )


@require_POST
def unshare_view(request, pk: int):
    _require(request, "orders.share_order")
    order = _order(request, pk)
    url = order_url(order, "access")
    form = ShareForm(request.POST)
    if not form.is_valid():
        return _invalid(request, url, form)
    user = form.cleaned_data["user"]
    return _run(
        request,
        url,
        lambda: order_unshare(actor=request.user, order=order, user=user),
        lambda removed: (
            f"{order.number} is no longer shared with {user}."
            if removed
            else f"{order.number} was not shared with {user}."
        ),
    )


def _require_expenses(request) -> None:
    if not (expense_may_see(request.user) and request.user.has_perm("orders.add_expense")):
        raise PermissionDenied


@require_POST
def expense_add_view(request, pk: int):
    _require_expenses(request)
    order = _order(request, pk)
    url = order_url(order, "expenses")
    form = ExpenseForm(request.POST, request.FILES)
    if not form.is_valid():
        return _invalid(request, url, form)
    return _run(
        request,
        url,
        lambda: expense_record(actor=request.user, order=order, **form.cleaned_data),
        lambda expense: (
            f"Expense of {money(expense.amount, expense.currency)} to {expense.payee} recorded and posted"
            f"{'' if expense.paid else ' (owed to the supplier)'}."
        ),
    )


@require_POST
def expense_reverse_view(request, pk: int, expense_pk: int):
    _require_expenses(request)
    order = _order(request, pk)
    expense = get_object_or_404(expense_list_for(request.user).filter(order=order), pk=expense_pk)
    url = order_url(order, "expenses")
    form = ExpenseReverseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the expense is reversed; the reason is kept with the reversal.")
        return HttpResponseRedirect(url)
    return _run(
        request,
        url,
        lambda: expense_reverse(actor=request.user, expense=expense, reason=form.cleaned_data["reason"]),
        lambda reversal: f"Expense EXP-{expense.pk} reversed by EXP-{reversal.pk}.",
    )


def expense_receipt_download(request, pk: int):
    expense = expense_list_for(request.user).filter(pk=pk).exclude(receipt="").first()
    if expense is None:
        raise Http404("No such receipt.")
    return FileResponse(expense.receipt.open("rb"), as_attachment=True, filename=expense.receipt_name)


def document_download(request, file_pk: int):
    file = document_file_for(request.user, file_pk)
    if file is None:
        raise Http404("No such document file.")
    return FileResponse(file.file.open("rb"), as_attachment=True, filename=file.original_name)


def attachment_download(request, pk: int):
    attachment = comment_attachment_for(request.user, pk)
    if attachment is None:
        raise Http404("No such attachment.")
    return FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.original_name)


class OrderCreateView(ServiceFormView):
    title = "New order"
    permission_required = "orders.add_order"
    form_class = OrderCreateForm
    submit_label = "Create order"
    intro = (
        "Fee, base charge and due date start from the order type when left empty. The order gets a pending "
        "placeholder for each document its type requires, and waits for them."
    )

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"may_see_money": order_may_see_money(self.request.user)}

    def perform(self, data):
        order = order_create(actor=self.request.user, **data)
        pending = order.documents.count()
        documents = f"{pending} required document(s) pending" if pending else "no documents required"
        return order, f"{order.number} created for {order.customer.name}: {documents}."


class OrderEditView(ServiceFormView):
    permission_required = "orders.change_order"
    form_class = OrderEditForm
    submit_label = "Save"

    def dispatch(self, request, *args, **kwargs):
        self.order = _order(request, kwargs["pk"])
        self.title = f"Edit {self.order.number}"
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        # Not ServiceFormView's: the order's customer is fixed, so no customer list is offered.
        return FormView.get_form_kwargs(self) | {
            "order": self.order,
            "may_see_money": order_may_see_money(self.request.user),
        }

    def perform(self, data):
        changes = {field: value for field, value in data.items() if getattr(self.order, field) != value}
        if not changes:
            return self.order, f"{self.order.number}: nothing changed."
        order = order_update(actor=self.request.user, order=self.order, **changes)
        return order, f"{order.number} saved."


class MyTasksView(UnfoldModelAdminViewMixin, TemplateView):
    """The signed-in user's open tasks, overdue first; every role that works on orders has the page."""

    title = "My open tasks"
    permission_required = "orders.view_task"
    template_name = "orders/my_tasks.html"

    def get_context_data(self, **kwargs):
        page = Paginator(open_tasks_for(self.request.user), MY_TASKS_PAGE_SIZE).get_page(self.request.GET.get("page"))
        return super().get_context_data(**kwargs) | {"page": page, "today": billing_today()}
