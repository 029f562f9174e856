"""API list filters refuse what their schema does not allow, naming the parameter; an empty value filters nothing."""

import pytest

from catalog.filters import ServiceFilter
from catalog.models import Service
from catalog.tests.factories import ServiceFactory
from ledger.filters import InvoiceFilter, PaymentFilter
from ledger.models import Invoice, Payment

pytestmark = pytest.mark.django_db


def errors(filterset) -> dict:
    filterset.is_valid()
    return dict(filterset.errors)


@pytest.mark.parametrize("value", ["2.5", "0", "-3", str(2**63), "1e40", "seven"])
def test_an_id_filter_refuses_what_is_not_an_id(value):
    assert list(errors(InvoiceFilter({"customer": value}, queryset=Invoice.objects.all()))) == ["customer"]


@pytest.mark.parametrize("value", ["1", "7", str(2**63 - 1), ""])
def test_an_id_filter_takes_a_whole_number_from_one(value):
    assert errors(InvoiceFilter({"customer": value}, queryset=Invoice.objects.all())) == {}


def test_a_boolean_filter_refuses_what_is_not_a_boolean():
    active, inactive = ServiceFactory(active=True), ServiceFactory(active=False)

    def filtered(value):
        filterset = ServiceFilter({"active": value}, queryset=Service.objects.all())
        assert filterset.is_valid(), filterset.errors
        return set(filterset.qs)

    assert errors(ServiceFilter({"active": "maybe"}, queryset=Service.objects.all())) == {
        "active": ["Enter true or false."]
    }
    assert filtered("true") == filtered("1") == filtered("True") == {active}
    assert filtered("false") == filtered("0") == {inactive}
    assert filtered("") == {active, inactive}


def test_days_are_written_as_the_schema_says():
    assert list(errors(PaymentFilter({"from": "10/25/2026"}, queryset=Payment.objects.all()))) == ["from"]
    assert errors(PaymentFilter({"from": "2026-10-25", "to": ""}, queryset=Payment.objects.all())) == {}
