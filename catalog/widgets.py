"""A customer picker for filter forms outside a model admin (the reports, the monthly usage report).

With 10,000 customers a select of every one is a page of options nobody can scroll; this one searches as one
types, through the admin's autocomplete view and the customer admin: its `search_fields` (name, legal name,
client id, billing email) over its `get_queryset`, so a CSM finds only their own customers and a user who may
not view customers finds none. The page holds only the chosen customer.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect

from catalog.models import Customer, PriceAgreement


class CustomerAutocomplete(AutocompleteSelect):
    """Unfold's look for the admin's autocomplete (select2, data-theme "admin-autocomplete"); empty shows the
    placeholder, e.g. "Every customer"."""

    def __init__(self, *, placeholder: str, attrs=None):
        # The autocomplete view asks for a foreign key to the customer; a price agreement's is one.
        super().__init__(PriceAgreement._meta.get_field("customer"), admin.site, attrs=attrs)
        self.placeholder = placeholder

    def build_attrs(self, base_attrs, extra_attrs=None):
        return super().build_attrs(base_attrs, extra_attrs) | {"data-placeholder": self.placeholder}

    def optgroups(self, name, value, attr=None):
        # A hand-edited URL's "?customer=abc" is the field's error to report, not a failed query here.
        return super().optgroups(name, [choice for choice in value if str(choice).isdigit()], attr)


def customer_filter_field(*, label: str = "Customer", placeholder: str) -> forms.ModelChoiceField:
    """An optional customer filter; the form sets its queryset to the customers the user may see."""
    return forms.ModelChoiceField(
        label=label,
        queryset=Customer.objects.none(),
        required=False,
        widget=CustomerAutocomplete(placeholder=placeholder),
    )
