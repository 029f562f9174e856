"""Price agreements within MAX_AMOUNT and MAX_QUANTITY (API, admin, import), their currency, and ids that are
whole numbers on the catalog's API."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.roles import Role
from catalog import services
from catalog.models import Customer, PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from catalog.tests.test_admin import agreement_row, customer_form, inline_rows, tier_rows
from catalog.tests.test_resources import AGREEMENT_HEADER, upload

pytestmark = pytest.mark.django_db

AMOUNT_MESSAGE = "Beyond the largest amount accepted, 1,000,000,000.00 (MAX_AMOUNT)."
QUANTITY_MESSAGE = "Beyond the largest quantity accepted, 100,000,000,000 (MAX_QUANTITY)."
TOO_LARGE = {
    "unit_price": ("1000000000.000001", AMOUNT_MESSAGE),
    "monthly_fee": ("1000000000.01", AMOUNT_MESSAGE),
    "included_quantity": ("100000000000.000001", QUANTITY_MESSAGE),
}
LARGEST = {"unit_price": "1000000000", "monthly_fee": "1000000000.00", "included_quantity": "100000000000"}


@pytest.fixture
def priced(db):
    return CustomerFactory(client_id="ACME-1", currency="CHF"), ServiceFactory(code="kyc_check")


def agreement_body(priced_for, service, **changes) -> dict:
    return {
        "customer": priced_for.pk,
        "service": service.code,
        "unit_price": "0.05",
        "valid_from": "2026-02-01",
    } | changes


def refusal(response, field: str) -> list[str]:
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert list(fields) == [field], fields
    return fields[field]


@pytest.mark.parametrize("field", TOO_LARGE)
def test_an_agreement_term_beyond_its_bound_is_a_400_naming_it(field, priced, finance_user, client_for):
    value, message = TOO_LARGE[field]

    response = client_for(finance_user).post(
        "/api/price-agreements", agreement_body(*priced, **{field: value}), format="json"
    )

    assert refusal(response, field) == [message]
    assert not PriceAgreement.objects.exists()


def test_agreement_terms_at_their_bounds_are_accepted(priced, finance_user, client_for):
    response = client_for(finance_user).post("/api/price-agreements", agreement_body(*priced, **LARGEST), format="json")

    assert response.status_code == 201, response.content
    agreement = PriceAgreement.objects.get()
    assert (agreement.unit_price, agreement.monthly_fee, agreement.included_quantity) == (
        D(1_000_000_000),
        D(1_000_000_000),
        D(100_000_000_000),
    )


def test_the_schema_pattern_of_an_agreement_price_holds_its_bound(finance_user, client_for):
    schema = client_for(finance_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    unit_price = schema["components"]["schemas"]["PriceAgreementRequest"]["properties"]["unit_price"]
    assert unit_price["pattern"].startswith("^(?:0*(?:")  # no minus sign: prices are not negative


def test_an_agreement_in_another_currency_than_the_customers_is_refused(priced, finance_user, client_for):
    client = client_for(finance_user)

    response = client.post("/api/price-agreements", agreement_body(*priced, currency="USD"), format="json")

    assert refusal(response, "currency") == ["Must be the customer's currency, CHF."]
    assert not PriceAgreement.objects.exists()
    response = client.post("/api/price-agreements", agreement_body(*priced, currency="CHF"), format="json")
    assert (response.status_code, response.json()["currency"]) == (201, "CHF")


@pytest.mark.parametrize(
    "customer_id", [lambda pk: pk + 0.5, lambda pk: f"{pk}.5", lambda pk: True], ids=["2.5", "'2.5'", "true"]
)
def test_an_agreement_for_a_customer_id_that_is_not_a_whole_number_is_refused(
    customer_id, priced, finance_user, client_for
):
    customer, service = priced

    response = client_for(finance_user).post(
        "/api/price-agreements", agreement_body(customer, service, customer=customer_id(customer.pk)), format="json"
    )

    assert refusal(response, "customer")[0].startswith("Give the id as a whole number, not ")
    assert not PriceAgreement.objects.exists()


@pytest.mark.parametrize("field", ["csm", "sales_owner"])
def test_a_user_id_that_is_not_a_whole_number_is_refused_on_customers(field, make_user, finance_user, client_for):
    role = Role.CUSTOMER_SUCCESS if field == "csm" else Role.SALES
    user = make_user(role)
    client = client_for(finance_user)
    body = {"name": "Acme", "client_id": "ACME", "currency": "EUR", field: user.pk + 0.5}

    created = client.post("/api/customers", body, format="json")
    existing = CustomerFactory()
    changed = client.patch(f"/api/customers/{existing.pk}", {field: f"{user.pk}.0"}, format="json")

    for response in (created, changed):
        assert refusal(response, field)[0].startswith("Give the id as a whole number, not ")
    assert list(Customer.objects.all()) == [existing]
    existing.refresh_from_db()
    assert getattr(existing, f"{field}_id") is None


def test_the_agreement_admin_refuses_a_price_beyond_max_amount(client, finance_user, priced):
    customer, service = priced
    client.force_login(finance_user)
    data = {"customer": customer.pk, "service": service.pk, "valid_from": "2026-01-01", "valid_to": ""}
    data |= {"unit_price": TOO_LARGE["unit_price"][0], "included_quantity": "0", "monthly_fee": "0"}
    data |= {"pricing_model": "per_unit"} | tier_rows()

    response = client.post(reverse("admin:catalog_priceagreement_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"unit_price": [AMOUNT_MESSAGE]}
    assert not PriceAgreement.objects.exists()


def test_the_agreements_inline_refuses_an_allowance_beyond_max_quantity(client, finance_user, priced):
    customer, service = priced
    client.force_login(finance_user)
    row = agreement_row(service) | {"included_quantity": TOO_LARGE["included_quantity"][0]}

    response = client.post(
        reverse("admin:catalog_customer_change", args=[customer.pk]), customer_form(customer) | inline_rows(row)
    )

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors == [{"included_quantity": [QUANTITY_MESSAGE]}]
    assert not PriceAgreement.objects.exists()


def test_an_agreement_file_with_a_fee_beyond_max_amount_names_the_row_and_the_field(client, finance_user, priced):
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            AGREEMENT_HEADER,
            "ACME-1,kyc_check,2026-01-01,2026-06-30,0.05,0,99.00",
            "ACME-1,kyc_check,2026-07-01,,0.05,0,1000000000.01",
        ]
    )

    response = upload(client, PriceAgreement, csv_text)

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [2]
    assert result.invalid_rows[0].field_specific_errors == {"monthly_fee": [AMOUNT_MESSAGE]}
    assert "confirm_form" not in response.context
    assert not PriceAgreement.objects.exists()


def test_a_price_change_beyond_max_amount_is_refused_and_the_agreement_stays(priced):
    customer, service = priced
    agreement = PriceAgreementFactory(customer=customer, service=service, valid_from=date(2026, 1, 1))

    with pytest.raises(ValidationError) as refused:
        services.price_agreement_change(
            actor=None, agreement=agreement, effective_from=date(2026, 7, 1), unit_price=D("1000000000.000001")
        )

    assert refused.value.message_dict == {"unit_price": [AMOUNT_MESSAGE]}
    agreement.refresh_from_db()
    assert (agreement.valid_to, PriceAgreement.objects.count()) == (None, 1)
