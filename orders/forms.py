"""Forms of the order desk's admin pages. They parse input; the services in orders.services decide and refuse."""

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from unfold.forms import BaseDialogForm
from unfold.widgets import (
    UnfoldAdminDateWidget,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from accounts.models import User
from billing_project import money
from catalog.models import Partner
from ledger.forms import CustomerScopedForm, customer_field
from orders.models import Company, Expense, Order, OrderType, Task

REASON_MAX_LENGTH = 2000


def staff_users():
    return User.objects.filter(is_staff=True, is_active=True, portal_membership__isnull=True).order_by("full_name")


def money_field(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        min_value=Decimal("0"),
        validators=[money.WithinBound("amount")],
        widget=UnfoldAdminDecimalFieldWidget(),
        **kwargs,
    )


def date_field(**kwargs) -> forms.DateField:
    return forms.DateField(widget=UnfoldAdminDateWidget(), **kwargs)


def user_field(**kwargs) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(queryset=staff_users(), widget=UnfoldAdminSelectWidget(), **kwargs)


def reason_field(**kwargs) -> forms.CharField:
    return forms.CharField(max_length=REASON_MAX_LENGTH, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), **kwargs)


class OrderTermsForm(forms.Form):
    """What an order's creator and its editors set; base charge only for who may see an order's money."""

    partner = forms.ModelChoiceField(
        queryset=Partner.objects.order_by("name"),
        required=False,
        widget=UnfoldAdminSelectWidget(),
        help_text="Who brought the order in, if a partner did.",
    )
    company = forms.ModelChoiceField(
        queryset=Company.objects.all(),
        required=False,
        widget=AutocompleteSelect(Order._meta.get_field("company"), admin.site),
        help_text="The legal entity the order is about; it must belong to the customer.",
    )
    fee = money_field(help_text="In the customer's currency.")
    base_charge = money_field(help_text="Passed through to the client without tax (e.g. the registrar's fee).")
    assignee = user_field(required=False, help_text="The staff user who runs the order.")
    due_date = date_field()
    description = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 4}))

    def __init__(self, *args, may_see_money: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_see_money:
            del self.fields["base_charge"]


class OrderCreateForm(CustomerScopedForm, OrderTermsForm):
    field_order = [
        "customer",
        "order_type",
        "partner",
        "company",
        "fee",
        "base_charge",
        "assignee",
        "start_date",
        "due_date",
        "description",
    ]
    customer = customer_field(Order)
    order_type = forms.ModelChoiceField(
        queryset=OrderType.objects.filter(active=True), widget=UnfoldAdminSelectWidget()
    )
    start_date = date_field(required=False, help_text="Empty: today.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fee"].required = False
        self.fields["fee"].help_text = "Empty: the order type's default fee. In the customer's currency."
        self.fields["due_date"].required = False
        self.fields["due_date"].help_text = "Empty: the start date plus the order type's target duration."
        if "base_charge" in self.fields:
            self.fields["base_charge"].required = False
            self.fields["base_charge"].help_text = "Empty: the order type's default base charge."


class OrderEditForm(OrderTermsForm):
    """The terms of an existing order, started with its current values."""

    def __init__(self, *args, order: Order, **kwargs):
        initial = {field: getattr(order, field) for field in ("partner", "company", "assignee", "due_date")}
        initial |= {"fee": order.fee, "base_charge": order.base_charge, "description": order.description}
        kwargs["initial"] = initial | kwargs.get("initial", {})
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = Company.objects.filter(customer_id=order.customer_id)


class ReasonForm(BaseDialogForm):
    reason = reason_field(help_text="Kept in the order's timeline.")


class OptionalReasonForm(BaseDialogForm):
    reason = reason_field(required=False, help_text="Optional; kept in the order's timeline.")


class BulkAssignForm(forms.Form):
    assignee = user_field(required=False, empty_label="Nobody (unassign)")


class BulkMoveForm(forms.Form):
    to_status = forms.ChoiceField(
        label="Move to",
        choices=[(status.value, status.label) for status in Order.Status if status != Order.Status.DOCUMENTS_PENDING],
        widget=UnfoldAdminSelectWidget(),
    )
    reason = reason_field(required=False, help_text="Needed to cancel, to mark failed and to reopen.")


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH)


class DocumentUploadForm(forms.Form):
    file = forms.FileField()


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200, widget=UnfoldAdminTextInputWidget())
    assignee = user_field(required=False)
    due_date = date_field(required=False)
    priority = forms.ChoiceField(
        choices=Task.Priority.choices, initial=Task.Priority.NORMAL, widget=UnfoldAdminSelectWidget()
    )
    description = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(file, initial) for file in files]


class CommentForm(forms.Form):
    body = forms.CharField(widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}))
    attachments = MultipleFileField(required=False)


class ShareForm(forms.Form):
    user = user_field()


class ExpenseForm(forms.Form):
    """An expense of the order; the service checks the amount, the date's window and the receipt's bytes."""

    amount = money_field(help_text="In the order's currency.")
    date = date_field(help_text="When the cost was incurred.")
    category = forms.ChoiceField(choices=Expense.Category.choices, widget=UnfoldAdminSelectWidget())
    payee = forms.CharField(max_length=200, widget=UnfoldAdminTextInputWidget())
    reference = forms.CharField(
        max_length=100, required=False, widget=UnfoldAdminTextInputWidget(), help_text="The supplier's number."
    )
    paid = forms.BooleanField(
        required=False,
        initial=True,
        widget=UnfoldBooleanSwitchWidget(),
        label="Paid now",
        help_text="Off: owed to the supplier.",
    )
    receipt = forms.FileField(required=False, help_text="PDF, JPEG or PNG.")


class ExpenseReverseForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH)


class OrderCreditForm(BaseDialogForm):
    amount = money_field(
        required=False,
        help_text="Tax included; it comes off the fee and its tax. Leave empty to credit the whole invoice, base "
        "charge too (the invoice becomes void).",
    )
    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Printed on the credit note.",
    )
