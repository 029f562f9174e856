"""Tiered and package agreements and minimum commitments through the API: nested tiers, errors naming the tier."""

from decimal import Decimal as D

import pytest

from catalog.models import MinimumCommitment, PriceAgreement, PriceTier
from catalog.tests.factories import CustomerFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def agreement_body(**overrides) -> dict:
    return {
        "customer": CustomerFactory().pk,
        "service": ServiceFactory().code,
        "pricing_model": "graduated",
        "valid_from": "2026-03-01",
        "tiers": [
            {"up_to": "10000", "unit_price": "0.010"},
            {"first_unit": "10001", "up_to": "100000", "unit_price": "0.008", "flat_fee": "5.00"},
            {"up_to": None, "unit_price": "0.005"},
        ],
    } | overrides


def test_a_graduated_agreement_is_created_with_its_tiers_and_read_back(finance_user, client_for):
    client = client_for(finance_user)

    response = client.post("/api/price-agreements", agreement_body(), format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["pricing_model"] == "graduated"
    assert created["tiers"] == [
        {"up_to": "10000.000000", "unit_price": "0.010000", "flat_fee": "0.00"},
        {"up_to": "100000.000000", "unit_price": "0.008000", "flat_fee": "5.00"},
        {"up_to": None, "unit_price": "0.005000", "flat_fee": "0.00"},
    ]
    assert client.get(f"/api/price-agreements/{created['id']}").json()["tiers"] == created["tiers"]
    assert PriceTier.objects.filter(agreement_id=created["id"]).count() == 3


def test_a_gap_between_tiers_is_a_400_naming_the_tier(finance_user, client_for):
    body = agreement_body(
        tiers=[
            {"up_to": "10000", "unit_price": "0.010"},
            {"first_unit": "10500", "up_to": None, "unit_price": "0.008"},
        ]
    )

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["tiers"] == ["Tier 2 leaves a gap: it starts at 10,500, not at 10,001."]
    assert not PriceAgreement.objects.exists()


def test_a_negative_tier_price_is_a_400_naming_the_tier(finance_user, client_for):
    body = agreement_body(tiers=[{"up_to": None, "unit_price": "-1"}])

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    assert "tiers" in response.json()["error"]["fields"]
    assert "0" in str(response.json()["error"]["fields"]["tiers"])
    assert not PriceAgreement.objects.exists()


def test_a_package_of_zero_units_is_refused(finance_user, client_for):
    body = agreement_body(pricing_model="package", tiers=[], package_size="0", package_price="5")

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["package_size"] == ["A package must hold more than 0 units."]


def test_a_per_unit_agreement_still_needs_its_price(finance_user, client_for):
    body = {"customer": CustomerFactory().pk, "service": ServiceFactory().code, "valid_from": "2026-02-01"}

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"]["unit_price"] == ["A per-unit agreement needs its unit price."]


def test_a_commitment_in_another_currency_is_refused_and_one_in_the_customers_is_created(finance_user, client_for):
    customer = CustomerFactory(currency="EUR")
    client = client_for(finance_user)
    body = {"customer": customer.pk, "amount": "500.00", "valid_from": "2026-01-01"}

    refused = client.post("/api/minimum-commitments", body | {"currency": "GBP"}, format="json")
    created = client.post("/api/minimum-commitments", body, format="json")

    assert refused.status_code == 400, refused.content
    assert "currency" in refused.json()["error"]["fields"]
    assert created.status_code == 201, created.content
    assert (created.json()["amount"], created.json()["currency"]) == ("500.00", "EUR")
    assert MinimumCommitment.objects.get().amount == D("500.00")
