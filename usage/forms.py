import calendar

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.template.defaultfilters import filesizeformat
from unfold.widgets import (
    UnfoldAdminFileFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldBooleanSwitchWidget,
)

from usage.models import MonthlySummary


class UsageUploadForm(forms.Form):
    file = forms.FileField(
        label="Usage file",
        help_text="CSV with the columns serviceName, clientId, quantity, serviceTime and optionally eventId.",
        widget=UnfoldAdminFileFieldWidget(attrs={"accept": ".csv,text/csv"}),
    )
    force = forms.BooleanField(
        label="Import anyway, although the same content was imported before",
        required=False,
        widget=UnfoldBooleanSwitchWidget,
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.USAGE_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; the upload page takes up to {filesizeformat(limit)}. "
                "Split it, or import it with manage.py import_usage, which has no size limit."
            )
        return upload


MONTHS = [(number, calendar.month_name[number]) for number in range(1, 13)]


class MonthlyReportForm(forms.Form):
    year = forms.IntegerField(min_value=2000, max_value=2100, widget=UnfoldAdminIntegerFieldWidget)
    month = forms.TypedChoiceField(choices=MONTHS, coerce=int, widget=UnfoldAdminSelectWidget)
    # Picked by search (CustomerAdmin's, scoped like its list): a select of every customer would be thousands long.
    customer = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="All customers",
        widget=AutocompleteSelect(MonthlySummary._meta.get_field("customer"), admin.site),
    )

    def __init__(self, *args, customers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers.order_by("name")
