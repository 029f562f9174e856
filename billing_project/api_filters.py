"""Query filters shared by the API's lists: every value is checked, and a bad one answers 400 naming the parameter.

An empty value (`?customer=`) means "not filtered", as in any HTML form; the schema says so with
`allowEmptyValue` (billing_project.api_schema).
"""

from copy import deepcopy

import django_filters
from django import forms
from django.db import models
from django_filters.rest_framework import FilterSet
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.widgets import BooleanWidget
from drf_spectacular.utils import extend_schema_field

# Primary keys are BigAutoFields: anything outside their range can only be a mistake.
MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """An object's id: a whole number from 1; `2.5` or `1e40` is refused instead of matching something or nothing."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # the field's own max_value bounds it


class StrictBooleanWidget(BooleanWidget):
    """Reads true/false/1/0 (any case) as django-filter does, but passes anything else on to be refused."""

    def value_from_datadict(self, data, files, name):
        value = data.get(name)
        if value in (None, ""):
            return None
        parsed = super().value_from_datadict(data, files, name)
        return value if parsed is None else parsed


class StrictBooleanField(forms.NullBooleanField):
    widget = StrictBooleanWidget

    def to_python(self, value):
        if value in (None, True, False):
            return value
        raise forms.ValidationError("Enter true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


API_FILTER_DEFAULTS = deepcopy(FILTER_FOR_DBFIELD_DEFAULTS)
API_FILTER_DEFAULTS[models.BooleanField] = {"filter_class": StrictBooleanFilter}


class ApiFilterSet(FilterSet):
    """The base of every API filter set: booleans that refuse what is not a boolean."""

    FILTER_DEFAULTS = API_FILTER_DEFAULTS


class IsoDateFilter(django_filters.DateFilter):
    """A day written YYYY-MM-DD, as the schema's `format: date` says (not the locale's other spellings)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(*args, **kwargs)
