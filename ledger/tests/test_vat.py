"""The VAT category of each invoice line, decided at draft time from the billing configuration (ledger/vat.py)."""

from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from billing_project.seller import seller_from_environment, seller_problems
from catalog.tests.factories import CustomerFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_add_line, invoice_create_manual
from ledger.vat import VatCategory

pytestmark = pytest.mark.django_db


def line_vat(customer):
    invoice = invoice_create_manual(actor=None, customer=customer)
    item = invoice_add_line(actor=None, invoice=invoice, description="Setup", quantity=D(1), unit_price=D("10"))
    return item.vat_category, item.tax_rate, item.vat_exemption_reason, item.vat_exemption_code


@pytest.mark.parametrize(
    ("customer", "config", "expected"),
    [
        ({"country": "NL"}, {"tax_rate": D("0.2")}, ("S", D("0.2"), "", "")),
        ({"country": "GB"}, {"tax_rate": D("0")}, ("Z", D("0"), "", "")),
        ({"country": "DE", "vat_id": "DE136695976"}, {}, ("AE", D("0"), "Reverse charge", "VATEX-EU-AE")),
        ({"country": "US"}, {}, ("O", D("0"), "Not subject to VAT", "VATEX-EU-O")),
        ({"country": "FR"}, {"vat_category": "G"}, ("G", D("0"), "Export outside the EU", "VATEX-EU-G")),
        (
            {"country": "NL"},
            {"tax_exempt": True, "tax_exempt_reason": "Article 135(1)", "tax_exemption_code": "VATEX-EU-135-1"},
            ("E", D("0"), "Article 135(1)", "VATEX-EU-135-1"),
        ),
    ],
)
def test_the_category_follows_the_configuration_and_the_customer(customer, config, expected):
    customer = CustomerFactory(**customer)
    billing_config_update(actor=None, customer=customer, **config)

    assert line_vat(customer) == expected


def test_reverse_charge_needs_the_customers_vat_identifier():
    customer = CustomerFactory(country="DE")

    with pytest.raises(ValidationError) as refused:
        billing_config_update(actor=None, customer=customer, vat_category=VatCategory.REVERSE_CHARGE)

    assert "VAT identifier" in refused.value.message_dict["vat_category"][0]


def test_a_category_at_zero_is_refused_beside_a_rate():
    customer = CustomerFactory(country="DE", vat_id="DE136695976")

    with pytest.raises(ValidationError) as refused:
        billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"), vat_category="AE")

    assert list(refused.value.message_dict) == ["vat_category"]


def test_an_unknown_exemption_code_is_refused():
    customer = CustomerFactory()

    with pytest.raises(ValidationError) as refused:
        billing_config_update(
            actor=None, customer=customer, tax_exempt=True, tax_exempt_reason="x", tax_exemption_code="VATEX-EU-999"
        )

    assert list(refused.value.message_dict) == ["tax_exemption_code"]


def test_the_seller_settings_are_checked(monkeypatch):
    assert seller_problems(seller_from_environment("billing@example.com")) == []
    monkeypatch.setenv("SELLER_VAT_ID", "GB123")
    monkeypatch.setenv("SELLER_COUNTRY", "XX")
    monkeypatch.setenv("SELLER_CITY", "")

    problems = seller_problems(seller_from_environment("billing@example.com"))

    assert [problem.split()[0] for problem in problems] == ["SELLER_CITY", "SELLER_COUNTRY", "SELLER_VAT_ID"]
