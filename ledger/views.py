"""Admin pages of the ledger that are more than a model form: thin, they parse input and call services or selectors."""

from collections.abc import Iterable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models.fields.files import FieldFile
from django.forms import Form
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.generic import DetailView, FormView
from unfold.views import UnfoldModelAdminViewMixin

from billing_project.billing_time import billing_today, billing_zone
from billing_project.errors import DomainError
from billing_project.spreadsheets import AMOUNT_FORMAT, DAY_FORMAT, csv_download, spreadsheet_safe, xlsx_download
from catalog.models import Customer
from catalog.selectors import customer_list_for
from ledger.forms import (
    AdjustmentForm,
    InvoiceCreateForm,
    MonthEndForm,
    PaymentForm,
    PriceCalculatorForm,
    RefundForm,
    StatementPeriodForm,
    money_label,
    open_invoice_label,
    payment_state_label,
)
from ledger.models import Invoice
from ledger.pdf import render_statement_pdf
from ledger.quotes import price_quote, quote_summary
from ledger.selectors import (
    StatementLine,
    StatementPeriod,
    customer_statement,
    customer_statement_period,
    invoice_list_for,
    invoice_open_list,
)
from ledger.services.billing import billing_config_for
from ledger.services.invoices import invoice_create_draft, invoice_create_manual, invoice_regenerate, nothing_to_bill
from ledger.services.month_end import month_end_preview, month_end_run, previous_period
from ledger.services.payments import adjustment_record, payment_record, refund_record
from ledger.tasks import month_end_task

STATEMENT_HEADERS = ["date", "kind", "reference", "description", "amount", "balance_after", "currency"]
STATEMENT_PAGE_SIZE = 100


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def show_domain_error(form: Form, error: DomainError) -> None:
    """The service's message above the form, and its per-field messages next to the fields the form has."""
    form.add_error(None, error.message)
    for name, field_messages in error.fields.items():
        if name in form.fields:
            form.add_error(name, field_messages)


def pdf_download(file: FieldFile, name: str) -> FileResponse:
    """A stored PDF through the application, which has checked access; never a link into MEDIA."""
    return FileResponse(file.open("rb"), as_attachment=True, filename=name, content_type="application/pdf")


class ServiceFormView(UnfoldModelAdminViewMixin, FormView):
    """A form page whose valid input goes to one service; a DomainError shows on the form and nothing is written."""

    template_name = "ledger/service_form.html"
    raise_exception = True
    submit_label = "Save"
    intro = ""

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"customers": customer_list_for(self.request.user)}

    def perform(self, data: dict) -> tuple[object, str]:
        """Call the service; return the object written and the message for the user."""
        raise NotImplementedError

    def form_valid(self, form):
        try:
            obj, message = self.perform(form.cleaned_data)
        except DomainError as error:
            show_domain_error(form, error)
            return self.form_invalid(form)
        messages.success(self.request, message)
        return redirect(change_url(obj))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return context | {
            "opts": self.model_admin.opts,
            "media": self.model_admin.media + context["form"].media,
            "submit_label": self.submit_label,
            "intro": self.intro,
        }


class InvoiceCreateView(ServiceFormView):
    title = "New invoice"
    permission_required = "ledger.add_invoice"
    form_class = InvoiceCreateForm
    submit_label = "Create draft"

    def perform(self, data):
        actor, customer, period = self.request.user, data["customer"], data["period"]
        if data["kind"] == Invoice.Kind.USAGE:
            invoice = invoice_create_draft(actor=actor, customer=customer, period=period)
        else:
            invoice = invoice_create_manual(actor=actor, customer=customer, period=period)
        return (
            invoice,
            f"{invoice} created: {money_label(invoice.total, invoice.currency)}. Preview it, add lines, then issue it.",
        )


class PaymentCreateView(ServiceFormView):
    """Opened from an open invoice (?invoice=<id>, its "Record payment" button), the form starts with its customer,
    what it still owes and the invoice itself."""

    title = "Record a payment"
    permission_required = "ledger.add_payment"
    form_class = PaymentForm
    submit_label = "Book payment"
    intro = (
        "The payment pays the invoice you choose first; what it does not need goes to the customer's oldest open "
        "invoices, and what is left stays as credit."
    )

    def get_initial(self):
        invoice_id = self.request.GET.get("invoice", "")
        invoice = (
            invoice_list_for(self.request.user).filter(pk=invoice_id, status__in=Invoice.OPEN).first()
            if invoice_id.isdigit()
            else None
        )
        if invoice is None:
            return super().get_initial()
        return {"customer": invoice.customer, "amount": invoice.outstanding, "invoice": invoice}

    def perform(self, data):
        payment = payment_record(actor=self.request.user, **data)
        allocated = payment.amount - payment.unallocated
        message = (
            f"Payment of {money_label(payment.amount, payment.currency)} from {payment.customer} booked: "
            f"{money_label(allocated, payment.currency)} set against invoices, "
            f"{money_label(payment.unallocated, payment.currency)} left as credit."
        )
        invoice = data.get("invoice")
        if invoice is not None:
            invoice.refresh_from_db()
            message = f"{message} {invoice.number} {payment_state_label(invoice)}."
        return payment, message


def open_invoices_json(request):
    """The open invoices of a customer the user may see, for the payment form's invoice list."""
    if not request.user.has_perm("ledger.add_payment"):
        raise PermissionDenied
    customer_id = request.GET.get("customer", "")
    customer = customer_list_for(request.user).filter(pk=customer_id).first() if customer_id.isdigit() else None
    if customer is None:
        raise Http404("No such customer.")
    invoices = [
        {"id": invoice.pk, "label": open_invoice_label(invoice), "outstanding": str(invoice.outstanding)}
        for invoice in invoice_open_list(customer)
    ]
    return JsonResponse({"invoices": invoices})


class RefundCreateView(ServiceFormView):
    title = "Record a refund"
    permission_required = "ledger.add_refund"
    form_class = RefundForm
    submit_label = "Book refund"
    intro = "Pays back part of the customer's credit: unallocated payments and credit notes, oldest first."

    def perform(self, data):
        refund = refund_record(actor=self.request.user, **data)
        return refund, f"Refund of {money_label(refund.amount, refund.currency)} to {refund.customer.name} booked."


class AdjustmentCreateView(ServiceFormView):
    title = "Record an adjustment"
    permission_required = "ledger.add_adjustment"
    form_class = AdjustmentForm
    submit_label = "Book adjustment"
    intro = "A manual correction of what the customer owes, booked against the adjustments account."

    def perform(self, data):
        adjustment = adjustment_record(actor=self.request.user, **data)
        return adjustment, f"{adjustment} booked for {adjustment.customer}."


class InvoicePreviewView(UnfoldModelAdminViewMixin, DetailView):
    """The invoice's lines and totals as they would be issued; a draft can be rated again from its usage."""

    title = "Invoice preview"
    permission_required = "ledger.view_invoice"
    raise_exception = True
    template_name = "ledger/invoice_preview.html"
    context_object_name = "invoice"

    def get_queryset(self):
        return invoice_list_for(self.request.user)

    def get_context_data(self, **kwargs):
        invoice = self.object
        return super().get_context_data(**kwargs) | {
            "opts": Invoice._meta,
            "items": invoice.items.select_related("service"),
            "can_regenerate": invoice.is_editable and self.request.user.has_perm("ledger.change_invoice"),
            "nothing_to_bill": self._nothing_to_bill(invoice),
        }

    @staticmethod
    def _nothing_to_bill(invoice: Invoice) -> str:
        """For a draft of 0.00 that would not be issued: why, and what to do instead."""
        reason = invoice.is_editable and nothing_to_bill(invoice, billing_config_for(invoice.customer))
        return f"It would not be issued: {reason}" if reason else ""

    def post(self, request, *args, **kwargs):
        if not request.user.has_perm("ledger.change_invoice"):
            raise PermissionDenied
        invoice = self.get_object()
        try:
            invoice = invoice_regenerate(actor=request.user, invoice=invoice)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{invoice} rated again: {money_label(invoice.total, invoice.currency)}.")
        return redirect(request.path)


class MonthEndView(UnfoldModelAdminViewMixin, FormView):
    """Preview month-end (writes nothing), or run it: one customer here and now, everyone through Celery."""

    title = "Month-end"
    permission_required = "ledger.add_billingrun"
    raise_exception = True
    template_name = "ledger/month_end.html"
    form_class = MonthEndForm

    def get_initial(self):
        return {"period": previous_period()}

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"customers": customer_list_for(self.request.user)}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return context | {"opts": self.model_admin.opts, "media": self.model_admin.media + context["form"].media}

    def form_valid(self, form):
        period, customer = form.cleaned_data["period"], form.cleaned_data["customer"]
        if "run" not in self.request.POST:
            preview = month_end_preview(period=period, customer_ids=[customer.pk] if customer else None)
            return self.render_to_response(self.get_context_data(form=form, preview=preview, previewed=True))
        if customer is None:
            month_end_task.delay(period=period.isoformat(), actor_id=self.request.user.pk)
            messages.success(
                self.request,
                f"Month-end for {period:%Y-%m} started for every customer; its run below shows how far it got.",
            )
            return redirect("admin:ledger_billingrun_changelist")
        run = month_end_run(actor=self.request.user, period=period, customer=customer)
        if run.failures:
            failures = "; ".join(failure["error"] for failure in run.failures)
            messages.error(self.request, f"Month-end {period:%Y-%m} for {customer} failed: {failures}")
        elif run.invoices_created:
            issued = " and issued it" if run.invoices_issued else ""
            messages.success(self.request, f"Month-end {period:%Y-%m} for {customer} created its invoice{issued}.")
        elif run.already_invoiced:
            messages.warning(self.request, f"{customer} already has its usage invoice for {period:%Y-%m}.")
        else:
            messages.warning(
                self.request,
                f"{customer} has nothing to bill in {period:%Y-%m} (no fee, and no usage beyond its allowance): "
                "no invoice made.",
            )
        return redirect(change_url(run))


class PriceCalculatorView(UnfoldModelAdminViewMixin, FormView):
    """What a quantity of one service would cost a customer in a month, line by line (ledger.quotes); writes
    nothing. The form is a GET, so a quote is a link to share."""

    title = "Price calculator"
    permission_required = "catalog.view_priceagreement"
    raise_exception = True
    template_name = "ledger/price_calculator.html"
    form_class = PriceCalculatorForm

    def get_form_kwargs(self):
        kwargs = {"customers": customer_list_for(self.request.user), "initial": {"period": billing_today()}}
        if "customer" in self.request.GET:
            kwargs["data"] = self.request.GET
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return context | {"opts": self.model_admin.opts, "media": self.model_admin.media + context["form"].media}

    def get(self, request, *args, **kwargs):
        form = self.get_form()
        if not form.is_bound or not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            quote = price_quote(**form.cleaned_data)
        except DomainError as error:
            show_domain_error(form, error)
            return self.render_to_response(self.get_context_data(form=form))
        return self.render_to_response(self.get_context_data(form=form, quote=quote, summary=quote_summary(quote)))


class CustomerStatementView(UnfoldModelAdminViewMixin, DetailView):
    """The movements on the customer's account with the balance after each, 100 a page (?page=, or "last"),
    each page opening with the balance it carries over; ?export=csv or xlsx streams every line; ?export=pdf
    prints the days from ?start= to ?end= (either open) with the balances brought forward and closing."""

    title = "Customer statement"
    permission_required = "ledger.view_transaction"
    raise_exception = True
    template_name = "ledger/statement.html"
    context_object_name = "customer"

    def get_queryset(self):
        return customer_list_for(self.request.user)

    def get(self, request, *args, **kwargs):
        self.object = customer = self.get_object()
        export = request.GET.get("export")
        period_form = StatementPeriodForm(request.GET if export == "pdf" else None)
        if export == "pdf" and period_form.is_valid():
            return statement_period_download(customer_statement_period(customer, period_form.days), "pdf")
        statement = customer_statement(customer)
        if export in {"csv", "xlsx"}:  # every line, streamed as it is read
            rows = _statement_rows(customer, statement)
            name = f"{statement_file_stem(customer)}-{billing_today():%Y-%m-%d}.{export}"
            if export == "csv":
                return csv_download(STATEMENT_HEADERS, rows, name)
            return xlsx_download(
                STATEMENT_HEADERS,
                rows,
                name,
                sheet="Statement",
                number_formats=[DAY_FORMAT, None, None, None, AMOUNT_FORMAT, AMOUNT_FORMAT],
                freeze_header=True,
            )
        paginator = Paginator(statement, STATEMENT_PAGE_SIZE)
        number = request.GET.get("page")
        page = paginator.get_page(paginator.num_pages if number == "last" else number)
        lines = page.object_list
        context = self.get_context_data(
            page=page,
            lines=lines,
            opening_balance=lines[0].balance_before if lines else None,
            closing_balance=lines[-1].balance_after if lines else None,
            balance=statement.balance,
            period_form=period_form,
            opts=Customer._meta,
        )
        return self.render_to_response(context)


def statement_file_stem(customer: Customer) -> str:
    return f"statement-{slugify(customer.client_id) or customer.pk}"


def statement_period_download(statement: StatementPeriod, export: str) -> HttpResponse:
    """The printed statement as PDF, or its rows as CSV (the balance brought forward first); the admin and the
    customer portal both answer with it."""
    days = statement.days
    span = "-".join(f"{day:%Y-%m-%d}" for day in (days.first, days.last) if day) or f"{billing_today():%Y-%m-%d}"
    name = f"{statement_file_stem(statement.customer)}-{span}.{export}"
    if export == "csv":
        currency = statement.customer.currency
        opening = [days.first, "Balance brought forward", "", "", "", statement.brought_forward, currency]
        return csv_download(STATEMENT_HEADERS, [opening, *_statement_rows(statement.customer, statement.lines)], name)
    response = HttpResponse(render_statement_pdf(statement), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _statement_rows(customer: Customer, statement: Iterable[StatementLine]):
    zone = billing_zone()
    for line in statement:
        yield [
            timezone.localtime(line.date, zone).date(),
            line.kind_label,
            spreadsheet_safe(line.reference),
            spreadsheet_safe(line.description),
            line.amount,
            line.balance_after,
            customer.currency,
        ]
