"""The customer portal: read-only pages of the signed-in customer's own account."""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import wraps
from pathlib import PurePosixPath
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from billing_project.billing_time import FIRST_DAY, LAST_DAY, billing_today
from catalog.models import MinimumCommitment, PriceAgreement
from catalog.selectors import portal_customer_id
from catalog.tier_text import price_terms
from ledger.einvoice import STORED
from ledger.forms import StatementPeriodForm
from ledger.models import Invoice
from ledger.selectors import customer_balance, customer_statement_period, invoice_list_for, payment_list_for
from ledger.views import statement_period_download
from orders.files import FILE_KINDS
from orders.models import DocumentType, Order, OrderDocument, OrderTypeDocument
from orders.selectors import document_file_for, order_list_for
from usage.report_exports import month_label, usage_report_download
from usage.report_selectors import last_month, usage_month_report, usage_report_totals

# What a customer sees of its invoices: never a draft or one waiting for approval.
SENT_STATUSES = [Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID, Invoice.Status.VOID]


def _sent_invoices(user):
    return invoice_list_for(user).filter(status__in=SENT_STATUSES)


def portal_page(view):
    """A page of the portal: signed in, and only for a customer's portal user (staff go to the admin)."""

    @login_required
    @wraps(view)
    def page(request, *args, **kwargs):
        if portal_customer_id(request.user) is None:
            if request.user.is_staff:
                return redirect("admin:index")
            return render(request, "reports/portal_no_account.html", status=403)
        return view(request, *args, **kwargs)

    return page


@portal_page
def home(request):
    customer_id = portal_customer_id(request.user)
    membership = request.user.portal_membership
    today = billing_today()
    agreements = (
        PriceAgreement.objects.filter(customer_id=customer_id).select_related("service").prefetch_related("tiers")
    )
    currency = membership.customer.currency

    def priced(queryset):
        return [(agreement, price_terms(agreement, currency)) for agreement in queryset]

    return render(
        request,
        "reports/portal_home.html",
        {
            "customer": membership.customer,
            "current_agreements": priced(agreements.in_force_on(today).order_by("service__code")),
            "past_and_future_agreements": priced(
                agreements.exclude(pk__in=agreements.in_force_on(today)).order_by("service__code", "-valid_from")
            ),
            "commitment": MinimumCommitment.objects.filter(customer_id=customer_id)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today), valid_from__lte=today)
            .first(),
            "today": today,
            "balance": customer_balance(membership.customer),
            "open_invoices": _sent_invoices(request.user).filter(status__in=sorted(Invoice.OPEN)).count(),
            "section": "account",
        },
    )


class UsageMonthForm(forms.Form):
    month = forms.DateField(input_formats=["%Y-%m"], widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"))

    def clean_month(self) -> date:
        month = self.cleaned_data["month"]
        if not FIRST_DAY <= month <= LAST_DAY:
            raise forms.ValidationError(f"Enter a month from {FIRST_DAY:%Y} to {LAST_DAY:%Y}.")
        return month


def _month_after(period: date) -> date:
    return (period + timedelta(days=31)).replace(day=1)


@portal_page
def usage(request):
    """The customer's usage of one billing month (last month unless asked) with its cost per service: the rows
    of the admin's monthly usage report for this customer only; ?export=csv, xlsx or pdf downloads them."""
    customer = request.user.portal_membership.customer
    this_month = billing_today().replace(day=1)
    form = UsageMonthForm(request.GET if "month" in request.GET else {"month": f"{last_month(this_month):%Y-%m}"})
    period = form.cleaned_data["month"].replace(day=1) if form.is_valid() else last_month(this_month)
    rows = usage_month_report(year=period.year, month=period.month, customer_ids=[customer.pk])
    export = request.GET.get("export")
    if export in {"csv", "xlsx", "pdf"}:
        filters = [("Month", month_label(period)), ("Customer", f"{customer.name} ({customer.client_id})")]
        return usage_report_download(rows, export, period=period, filters=filters, stem="usage")
    return render(
        request,
        "reports/portal_usage.html",
        {
            "customer": customer,
            "form": form,
            "period": period,
            "month": month_label(period),
            "previous_month": last_month(period),
            "next_month": _month_after(period) if period < this_month else None,
            "rows": rows,
            "totals": usage_report_totals(rows),
            "section": "usage",
        },
    )


class PortalStatementForm(StatementPeriodForm):
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))


@portal_page
def statement(request):
    """The customer's account over some days (from the first of last month to today unless asked): the balance
    brought forward, every movement with the balance after it, the closing balance; ?export=pdf or csv."""
    customer = request.user.portal_membership.customer
    today = billing_today()
    asked = "start" in request.GET or "end" in request.GET
    default = {"start": last_month(today.replace(day=1)).isoformat(), "end": today.isoformat()}
    form = PortalStatementForm(request.GET if asked else default)
    if not form.is_valid():
        return render(
            request, "reports/portal_statement.html", {"customer": customer, "form": form, "section": "statement"}
        )
    shown = customer_statement_period(customer, form.days)
    export = request.GET.get("export")
    if export in {"csv", "pdf"}:
        return statement_period_download(shown, export)
    return render(
        request,
        "reports/portal_statement.html",
        {
            "customer": customer,
            "form": form,
            "statement": shown,
            "query": urlencode({name: form.data.get(name) or "" for name in ("start", "end")}),
            "section": "statement",
        },
    )


PAYMENTS_PER_PAGE = 25
INVOICES_PER_PAGE = 25


@portal_page
def payments(request):
    listed = payment_list_for(request.user).order_by("-received_at", "-pk")
    page = Paginator(listed, PAYMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "reports/portal_payments.html",
        {"customer": request.user.portal_membership.customer, "page": page, "section": "payments"},
    )


@portal_page
def invoices(request):
    """Open invoices (all of them, oldest due first) above the paid and void ones (newest first, 25 a page)."""
    sent = _sent_invoices(request.user)
    closed = sent.exclude(status__in=sorted(Invoice.OPEN)).order_by("-issued_at", "-pk")
    return render(
        request,
        "reports/portal_invoices.html",
        {
            "customer": request.user.portal_membership.customer,
            "open_invoices": sent.filter(status__in=sorted(Invoice.OPEN)).order_by("due_date", "issued_at", "pk"),
            "page": Paginator(closed, INVOICES_PER_PAGE).get_page(request.GET.get("page")),
            "today": billing_today(),
            "section": "invoices",
        },
    )


@login_required
def invoice_pdf(request, pk: int):
    """An issued invoice's PDF, for the portal user of its customer only; anyone else gets 404."""
    if portal_customer_id(request.user) is None:
        raise Http404
    invoice = get_object_or_404(_sent_invoices(request.user), pk=pk)
    if not invoice.pdf:
        raise Http404
    return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=f"{invoice.number}.pdf")


@login_required
def invoice_einvoice(request, pk: int, syntax: str):
    """An issued invoice's e-invoice (`ubl`: the UBL XML, `cii`: the Factur-X PDF), for the portal user of its
    customer only; anyone else gets 404."""
    stored = STORED.get(syntax)
    if portal_customer_id(request.user) is None or stored is None:
        raise Http404
    invoice = get_object_or_404(_sent_invoices(request.user), pk=pk)
    file = stored.file_of(invoice)
    if file is None:
        raise Http404
    return FileResponse(
        file.open("rb"), as_attachment=True, filename=stored.file_name(invoice), content_type=stored.content_type
    )


ORDERS_PER_PAGE = 25


@portal_page
def orders(request):
    listed = order_list_for(request.user).select_related("order_type", "company").order_by("-start_date", "-pk")
    page = Paginator(listed, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "reports/portal_orders.html",
        {"customer": request.user.portal_membership.customer, "page": page, "section": "orders"},
    )


@dataclass(frozen=True)
class ChecklistRow:
    """One line of an order's document checklist, as the client reads it."""

    document_type: DocumentType
    required: bool
    client_note: str
    document: OrderDocument | None

    @property
    def status(self) -> str:
        return self.document.status if self.document else OrderDocument.Status.PENDING

    @property
    def is_missing(self) -> bool:
        return self.required and self.status in (OrderDocument.Status.PENDING, OrderDocument.Status.REJECTED)

    @property
    def accepted_kinds(self) -> str:
        return ", ".join(kind.upper() for kind in self.document_type.kinds)


def _checklist(order: Order) -> list[ChecklistRow]:
    """The order type's document types (required first) with the order's document of each, if any; a document
    whose type the order type no longer lists still shows."""
    documents = {document.document_type_id: document for document in order.documents.all()}
    rows = []
    for requirement in order.order_type.requirements.all():
        document = documents.pop(requirement.document_type_id, None)
        rows.append(
            ChecklistRow(
                document_type=requirement.document_type,
                required=document.required if document else requirement.required,
                client_note=requirement.client_note,
                document=document,
            )
        )
    rows += [
        ChecklistRow(
            document_type=document.document_type, required=document.required, client_note="", document=document
        )
        for document in documents.values()
    ]
    return sorted(rows, key=lambda row: (not row.required, row.document_type.name))


# Timeline notes the client reads: why the order waits, failed or was cancelled. Other notes (an override's,
# a reopening's) are the staff's.
CLIENT_NOTES = {Order.Status.DOCUMENTS_PENDING, Order.Status.FAILED, Order.Status.CANCELLED}


@portal_page
def order(request, pk: int):
    shown = get_object_or_404(
        order_list_for(request.user)
        .select_related("order_type", "company__registrar")
        .prefetch_related(
            Prefetch("documents", queryset=OrderDocument.objects.select_related("document_type", "current_file")),
            Prefetch("order_type__requirements", queryset=OrderTypeDocument.objects.select_related("document_type")),
            "status_history",
        ),
        pk=pk,
    )
    checklist = _checklist(shown)
    return render(
        request,
        "reports/portal_order.html",
        {
            "customer": request.user.portal_membership.customer,
            "order": shown,
            "checklist": checklist,
            "missing": [row for row in checklist if row.is_missing],
            "waiting_for_documents": shown.status in (Order.Status.STARTED, Order.Status.DOCUMENTS_PENDING),
            "required_count": sum(row.required for row in checklist),
            "accepted_count": sum(row.required and row.status == OrderDocument.Status.ACCEPTED for row in checklist),
            "timeline": shown.status_history.all(),
            "client_notes": CLIENT_NOTES,
            "today": billing_today(),
            "section": "orders",
        },
    )


@login_required
def order_document(request, pk: int):
    """One uploaded file of a document of the portal user's own orders, as a download; anyone else gets 404."""
    if portal_customer_id(request.user) is None:
        raise Http404
    file = document_file_for(request.user, pk)
    if file is None:
        raise Http404
    extension = PurePosixPath(file.file.name).suffix
    return FileResponse(
        file.file.open("rb"),
        as_attachment=True,
        filename=f"{file.document.order.number}-{file.document.document_type.code}-{file.sequence}{extension}",
        content_type=FILE_KINDS[file.kind][0],
    )
