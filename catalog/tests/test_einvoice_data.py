"""What EN 16931 needs of a customer and a service: structured address, VAT identifier, Peppol endpoint, the
e-invoice delivery choice and its checks, the unit code; and the move of the former one-field address."""

import importlib

import pytest
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import Customer, EinvoiceDelivery
from catalog.tests.factories import CustomerFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_an_invalid_vat_identifier_is_refused_and_a_valid_one_kept_compact():
    with pytest.raises(ValidationError) as refused:
        services.customer_create(actor=None, name="Acme", client_id="ACME", vat_id="DE123")
    assert "vat_id" in refused.value.message_dict

    customer = services.customer_create(actor=None, name="Acme", client_id="ACME", vat_id="de 136 695 976")

    assert customer.vat_id == "DE136695976"


@pytest.mark.parametrize("delivery", [EinvoiceDelivery.UBL, EinvoiceDelivery.FACTURX])
def test_einvoices_need_the_address_and_the_form_names_what_is_missing(delivery):
    customer = CustomerFactory(street_line1="Keizersgracht 1", city="Amsterdam")

    with pytest.raises(ValidationError) as refused:
        services.customer_update(actor=None, customer=customer, einvoice_delivery=delivery)

    assert list(refused.value.message_dict) == ["country"]
    assert "country" in refused.value.message_dict["country"][0]
    services.customer_update(actor=None, customer=customer, einvoice_delivery=delivery, country="NL")
    assert Customer.objects.get(pk=customer.pk).einvoice_delivery == delivery


def test_pdf_only_customers_need_none_of_it():
    customer = services.customer_create(actor=None, name="Acme", client_id="ACME")

    assert customer.einvoice_delivery == EinvoiceDelivery.PDF


def test_a_peppol_endpoint_needs_its_scheme():
    customer = CustomerFactory(street_line1="Keizersgracht 1", city="Amsterdam", country="NL")

    with pytest.raises(ValidationError) as refused:
        services.customer_update(
            actor=None, customer=customer, einvoice_delivery=EinvoiceDelivery.UBL, peppol_id="NL004495445B01"
        )

    assert list(refused.value.message_dict) == ["peppol_scheme"]


def test_services_are_counted_in_one_by_default():
    assert ServiceFactory().unit_code == "C62"


def test_the_former_address_moves_into_the_street_line_whole():
    migration = importlib.import_module("catalog.migrations.0007_customer_einvoice_data")

    assert migration.street_lines("Keizersgracht 1\n1015 CJ Amsterdam\n\nNL") == (
        "Keizersgracht 1, 1015 CJ Amsterdam, NL",
        "",
        "",
    )
    long = "x" * 600
    assert "".join(migration.street_lines(long)) == long


def test_the_api_takes_and_returns_the_einvoice_data(finance_user, client_for):
    body = {
        "name": "Acme",
        "client_id": "ACME",
        "street_line1": "Friedrichstraße 50",
        "postal_code": "10117",
        "city": "Berlin",
        "country": "DE",
        "billing_email": "ap@acme.example",
        "vat_id": "DE136695976",
        "legal_registration_id": "HRB 12345",
        "buyer_reference": "PO-778",
        "peppol_scheme": "9930",
        "peppol_id": "DE136695976",
        "einvoice_delivery": "ubl",
    }

    response = client_for(finance_user).post("/api/customers", body, format="json")

    assert response.status_code == 201, response.content
    assert {key: response.json()[key] for key in body} == body


def test_the_api_names_the_missing_field(finance_user, client_for):
    body = {"name": "Acme", "client_id": "ACME", "einvoice_delivery": "ubl", "billing_email": "ap@acme.example"}

    response = client_for(finance_user).post("/api/customers", body, format="json")

    assert response.status_code == 400
    assert {"street_line1", "city", "country"} <= set(response.json()["error"]["fields"]), response.json()
