"""Forms of the ledger admin: each parses the input of one service (types, required fields); the business rules
stay in the services, whose errors the views show on the form."""

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from unfold.forms import BaseDialogForm
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSplitDateTimeWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from approvals.forms import RerouteForm
from approvals.models import ApprovalRequest
from approvals.services import request_for
from billing_project import formatting, money
from billing_project.billing_time import billing_day_range, booking_day_problem
from catalog.models import Customer, Service
from ledger.models import Adjustment, BillingRun, Invoice, Payment, Refund
from ledger.selectors import invoice_list_for, invoice_open_list, payment_allocated_invoices, payment_list_for

CENT = Decimal("0.01")


class MonthField(forms.DateField):
    """A billing month typed as YYYY-MM; cleans to the month's first day."""

    def __init__(self, **kwargs):
        super().__init__(
            input_formats=["%Y-%m"],
            widget=UnfoldAdminTextInputWidget(attrs={"placeholder": "YYYY-MM"}),
            error_messages={"invalid": "Enter a month as YYYY-MM, e.g. 2026-10."},
            **kwargs,
        )

    def prepare_value(self, value):
        return f"{value:%Y-%m}" if isinstance(value, date) else value

    def validate(self, value):
        super().validate(value)
        if value is not None and (problem := booking_day_problem(value)):
            raise forms.ValidationError(f"The month {problem}.", code="out_of_range")


def amount_field(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        min_value=CENT,
        validators=[money.WithinBound("amount")],
        widget=UnfoldAdminDecimalFieldWidget(),
        **kwargs,
    )


def text_field(**kwargs) -> forms.CharField:
    return forms.CharField(widget=UnfoldAdminTextInputWidget(), **kwargs)


def customer_field(source: type, **kwargs) -> forms.ModelChoiceField:
    """A customer picked by search (CustomerAdmin's search, scoped like its list); the queryset is set per user."""
    return forms.ModelChoiceField(
        queryset=Customer.objects.none(),
        widget=AutocompleteSelect(source._meta.get_field("customer"), admin.site),
        **kwargs,
    )


class CustomerScopedForm(forms.Form):
    """Offers and accepts only the customers the signed-in user may see."""

    def __init__(self, *args, customers: QuerySet[Customer], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers.order_by("name")


class PriceCalculatorForm(CustomerScopedForm):
    customer = customer_field(Invoice)
    service = forms.ModelChoiceField(
        queryset=Service.objects.filter(active=True).order_by("name"), widget=UnfoldAdminSelectWidget()
    )
    period = MonthField(label="Month", help_text="The month whose agreement prices the quantity, as YYYY-MM.")
    quantity = forms.DecimalField(
        max_digits=money.QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
        min_value=Decimal(0),
        validators=[money.WithinBound("quantity")],
        widget=UnfoldAdminDecimalFieldWidget(),
        help_text="Units used in the month, before the allowance.",
    )


class InvoiceCreateForm(CustomerScopedForm):
    customer = customer_field(Invoice)
    period = MonthField(label="Month", help_text="The billed month, as YYYY-MM.")
    kind = forms.ChoiceField(
        # An order's invoice is made from the order's page (orders.services.billing).
        choices=[(kind.value, kind.label) for kind in (Invoice.Kind.USAGE, Invoice.Kind.MANUAL)],
        initial=Invoice.Kind.USAGE,
        widget=UnfoldAdminRadioSelectWidget(),
        help_text="Usage: a draft rated from the month's usage (one per customer and month). "
        "Manual: an empty draft for one-off charges; add its lines on the invoice page.",
    )


def money_label(amount: Decimal, currency: str) -> str:
    return formatting.money(amount, currency)


def payment_state_label(invoice: Invoice) -> str:
    """How an invoice stands after a payment reached it: "is paid" or "still owes EUR 12.00"."""
    if invoice.status == Invoice.Status.PAID:
        return "is paid"
    return f"still owes {money_label(invoice.outstanding, invoice.currency)}"


def open_invoice_label(invoice: Invoice) -> str:
    return (
        f"{invoice.number} — {money_label(invoice.outstanding, invoice.currency)} open, "
        f"due {formatting.day(invoice.due_date)}"
    )


class OpenInvoiceSelect(UnfoldAdminSelectWidget):
    """Each open invoice carries what it still owes, for the amount the payment form fills in."""

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        invoice = getattr(value, "instance", None)
        if invoice is not None:
            option["attrs"]["data-outstanding"] = str(invoice.outstanding)
        return option


class OpenInvoiceField(forms.ModelChoiceField):
    """One of a customer's open invoices (ledger.selectors.invoice_open_list), shown with what it still owes."""

    def __init__(self, **kwargs):
        super().__init__(queryset=Invoice.objects.none(), widget=OpenInvoiceSelect(), **kwargs)

    def label_from_instance(self, invoice: Invoice) -> str:
        return open_invoice_label(invoice)


class PaymentForm(CustomerScopedForm):
    customer = customer_field(Payment)
    invoice = OpenInvoiceField(
        required=False,
        empty_label="None: the oldest open invoices first",
        help_text="The invoice the payment is for: it is paid first; what it does not need goes to the oldest open "
        "invoices. Lists the customer's open invoices.",
    )
    amount = amount_field(help_text="In the customer's currency.")
    method = forms.ChoiceField(
        choices=Payment.Method.choices, initial=Payment.Method.BANK_TRANSFER, widget=UnfoldAdminSelectWidget()
    )
    received_at = forms.SplitDateTimeField(
        label="Received at", initial=timezone.now, widget=UnfoldAdminSplitDateTimeWidget()
    )
    bank_reference = text_field(max_length=140, help_text="The bank line's reference: one booking per line.")
    note = text_field(max_length=500, required=False)

    class Media:
        js = ["ledger/payment_form.js"]  # the invoice list follows the customer chosen

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        customer = self._chosen_customer()
        invoice = self.fields["invoice"]
        invoice.queryset = invoice_open_list(customer) if customer else Invoice.objects.none()
        invoice.widget.attrs["data-open-invoices-url"] = reverse("admin:ledger_payment_open_invoices")

    def _chosen_customer(self) -> Customer | None:
        """The customer posted, or the one the form starts with; None until one is chosen."""
        field = self.fields["customer"]
        value = self.data.get(self.add_prefix("customer")) if self.is_bound else self.initial.get("customer")
        try:
            return field.clean(value)
        except ValidationError:
            return None


class PaymentMoveForm(BaseDialogForm):
    """Where a payment's money goes (ledger.services.payments.payment_reallocate): from its unallocated part or an
    invoice it pays, to an open invoice of its customer."""

    UNALLOCATED = "unallocated"

    source = forms.ChoiceField(label="Move", widget=UnfoldAdminSelectWidget())
    invoice = OpenInvoiceField(label="To invoice", empty_label="Choose an open invoice")
    amount = amount_field(required=False, help_text="Empty: as much as fits, up to what the invoice still owes.")

    def __init__(self, request, object_id=None, *args, **kwargs):
        super().__init__(request, object_id, *args, **kwargs)
        self.payment = payment_list_for(request.user).filter(pk=object_id).first() if object_id else None
        if self.payment is None:  # the dialog is built before the action runs: answer as the page would
            raise Http404("No such payment.")
        currency, held = self.payment.currency, payment_allocated_invoices(self.payment)
        self.held = {str(invoice.pk): invoice for invoice, _ in held}
        choices = [
            (str(invoice.pk), f"What it pays on {invoice.number}: {money_label(amount, currency)}")
            for invoice, amount in held
        ]
        if self.payment.unallocated > 0:
            unallocated = money_label(self.payment.unallocated, currency)
            choices.insert(0, (self.UNALLOCATED, f"Its unallocated part: {unallocated}"))
        self.fields["source"].choices = choices
        self.fields["invoice"].queryset = invoice_open_list(self.payment.customer)

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source")
        cleaned["from_invoice"] = None if source in (None, self.UNALLOCATED) else self.held[source]
        return cleaned


class RefundForm(CustomerScopedForm):
    customer = customer_field(Refund)
    amount = amount_field(help_text="At most the customer's credit (unallocated payments and credit notes).")
    method = forms.ChoiceField(
        choices=Payment.Method.choices, initial=Payment.Method.BANK_TRANSFER, widget=UnfoldAdminSelectWidget()
    )
    reference = text_field(max_length=140, required=False, help_text="The outgoing bank transfer's reference.")
    reason = forms.CharField(max_length=500, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class AdjustmentForm(CustomerScopedForm):
    customer = customer_field(Adjustment)
    direction = forms.ChoiceField(choices=Adjustment.Direction.choices, widget=UnfoldAdminRadioSelectWidget())
    amount = amount_field()
    reason = forms.CharField(max_length=500, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class MonthEndForm(CustomerScopedForm):
    period = MonthField(label="Month", help_text="The billed month, as YYYY-MM.")
    customer = customer_field(
        BillingRun, required=False, help_text="Empty: every customer with usage or an agreement in the month."
    )


class InvoiceLineForm(BaseDialogForm):
    description = text_field(max_length=300)
    quantity = forms.DecimalField(
        max_digits=money.QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
        validators=[money.WithinBound("quantity")],
        widget=UnfoldAdminDecimalFieldWidget(),
    )
    unit_price = forms.DecimalField(
        label="Unit price",
        max_digits=money.UNIT_PRICE_MAX_DIGITS,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        validators=[money.WithinBound("unit_price")],
        widget=UnfoldAdminDecimalFieldWidget(),
        help_text="Before tax; the customer's tax rate is applied to the line.",
    )


class CreditNoteForm(BaseDialogForm):
    FULL, PARTIAL = "full", "partial"

    scope = forms.ChoiceField(
        label="Credit",
        choices=[(FULL, "The whole invoice (it becomes void)"), (PARTIAL, "Part of it")],
        initial=FULL,
        widget=UnfoldAdminRadioSelectWidget(),
    )
    amount = amount_field(required=False, help_text="For a partial credit: the amount, tax included.")
    reason = forms.CharField(max_length=500, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == self.PARTIAL and cleaned.get("amount") is None and "amount" not in self.errors:
            self.add_error("amount", "Give the amount to credit.")
        return cleaned


class MarkFailedForm(BaseDialogForm):
    """Why a stalled run is closed as failed (billing_run_mark_failed); kept among its failures and in its
    history."""

    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Required; kept among the run's failures and in its history.",
    )


class InvoiceRerouteForm(RerouteForm):
    """Re-route the invoice's pending approval request (an Admin's), from the invoice page."""

    def approval_request(self) -> ApprovalRequest | None:
        if not str(self.object_id).isdigit():
            return None
        invoice = invoice_list_for(self.request.user).filter(pk=self.object_id).first()
        return request_for(invoice) if invoice else None


class StatementPeriodForm(forms.Form):
    """The days a printed statement covers, both optional (billing time zone, inclusive); `days` once valid."""

    start = forms.DateField(label="From", required=False, widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=UnfoldAdminTextInputWidget(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        try:
            self.days = billing_day_range(data.get("start"), data.get("end"), first_field="start", last_field="end")
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                self.add_error(field, messages)
        return data
