"""Tier tables in the admin (an inline under the agreement, checked whole) and minimum commitments."""

from datetime import date
from decimal import Decimal as D

import pytest
import tablib
from django.urls import reverse

from accounts.roles import Role
from catalog import services
from catalog.models import MinimumCommitment, PriceAgreement, PriceTier, PricingModel
from catalog.tests.factories import CustomerFactory, ServiceFactory
from catalog.tests.test_admin import agreement_row, change_url, tier_rows
from catalog.tests.test_resources import confirm, export, upload

pytestmark = pytest.mark.django_db


def graduated_form(customer, service, *tiers, **overrides) -> dict:
    row = agreement_row(service, valid_from="2026-03-01", unit_price="0") | {"pricing_model": "graduated"}
    return {"customer": customer.pk} | row | tier_rows(*tiers) | overrides


def test_a_graduated_agreement_is_added_with_its_tiers(client, finance_user):
    customer, service = CustomerFactory(), ServiceFactory()
    client.force_login(finance_user)

    response = client.post(
        reverse("admin:catalog_priceagreement_add"),
        graduated_form(
            customer,
            service,
            # Given out of order: the table takes them by their bound, the open-ended one last.
            {"up_to": "", "unit_price": "0.005", "flat_fee": "0"},
            {"up_to": "10000", "unit_price": "0.010", "flat_fee": "0"},
            {"up_to": "100000", "unit_price": "0.008", "flat_fee": "12.50"},
        ),
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    agreement = PriceAgreement.objects.get()
    assert agreement.pricing_model == PricingModel.GRADUATED
    assert [(tier.position, tier.up_to, tier.unit_price, tier.flat_fee) for tier in agreement.tiers.all()] == [
        (1, D(10_000), D("0.010"), D("0.00")),
        (2, D(100_000), D("0.008"), D("12.50")),
        (3, None, D("0.005"), D("0.00")),
    ]
    assert agreement.tiers.first().history.latest().history_user == finance_user


def test_a_tier_table_without_an_open_ended_tier_is_shown_as_an_error_and_nothing_is_saved(client, finance_user):
    customer, service = CustomerFactory(), ServiceFactory()
    client.force_login(finance_user)

    response = client.post(
        reverse("admin:catalog_priceagreement_add"),
        graduated_form(customer, service, {"up_to": "10000", "unit_price": "0.01", "flat_fee": "0"}),
    )

    assert response.status_code == 200
    (tier_formset,) = response.context["inline_admin_formsets"]
    assert tier_formset.formset.non_form_errors() == [
        "Tier 1 is the last: leave its 'up to' empty so every unit has a price."
    ]
    assert not PriceAgreement.objects.exists() and not PriceTier.objects.exists()


def test_a_mid_month_start_is_refused_on_the_form(client, finance_user):
    customer, service = CustomerFactory(), ServiceFactory()
    client.force_login(finance_user)

    response = client.post(
        reverse("admin:catalog_priceagreement_add"),
        graduated_form(
            customer, service, {"up_to": "", "unit_price": "0.01", "flat_fee": "0"}, valid_from="2026-03-15"
        ),
    )

    assert response.status_code == 200
    assert "starts on the first day of a billing month" in str(response.context["adminform"].form.errors["valid_from"])
    assert not PriceAgreement.objects.exists()


def test_editing_one_tier_replaces_the_table_through_the_service(client, finance_user):
    agreement = services.price_agreement_create(
        actor=None,
        customer=CustomerFactory(),
        service=ServiceFactory(),
        valid_from=date(2026, 3, 1),
        pricing_model=PricingModel.VOLUME,
        tiers=[{"up_to": D(100), "unit_price": D(1)}, {"up_to": None, "unit_price": D("0.5")}],
    )
    first, last = agreement.tiers.all()
    client.force_login(finance_user)

    response = client.post(
        change_url("priceagreement", agreement.pk),
        {"customer": agreement.customer_id}
        | agreement_row(agreement.service, valid_from="2026-03-01", unit_price="0")
        | {"pricing_model": "volume"}
        | tier_rows(
            {"id": first.pk, "agreement": agreement.pk, "up_to": "200", "unit_price": "1", "flat_fee": "0"},
            {"id": last.pk, "agreement": agreement.pk, "up_to": "", "unit_price": "0.5", "flat_fee": "0"},
            initial=2,
        ),
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    assert [(tier.up_to, tier.unit_price) for tier in agreement.tiers.all()] == [(D(200), D(1)), (None, D("0.5"))]


def test_commitment_in_another_currency_is_refused_on_the_form(client, finance_user):
    customer = CustomerFactory(currency="EUR")
    client.force_login(finance_user)
    form = {"customer": customer.pk, "amount": "500.00", "valid_from": "2026-01-01", "valid_to": ""}

    refused = client.post(reverse("admin:catalog_minimumcommitment_add"), form | {"currency": "GBP"})
    added = client.post(reverse("admin:catalog_minimumcommitment_add"), form | {"currency": "EUR"})

    assert refused.status_code == 200
    assert "billed in EUR" in str(refused.context["adminform"].form.errors["currency"])
    assert added.status_code == 302
    commitment = MinimumCommitment.objects.get()
    assert (commitment.amount, commitment.history.latest().history_user) == (D("500.00"), finance_user)


def test_csm_sees_only_their_customers_commitments(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    mine, theirs = CustomerFactory(csm=csm, name="Mine Ltd"), CustomerFactory(name="Theirs Ltd")
    for customer in (mine, theirs):
        services.minimum_commitment_create(actor=None, customer=customer, amount=D(100), valid_from=date(2026, 1, 1))
    client.force_login(csm)

    response = client.get(reverse("admin:catalog_minimumcommitment_changelist"))

    assert response.status_code == 200
    assert "Mine Ltd" in response.content.decode() and "Theirs Ltd" not in response.content.decode()
    assert "EUR\u00a0100.00" in response.content.decode()


# Import and export: the tier table in one readable column, round-tripped.


def test_tier_table_exports_readably_and_imports_back_unchanged(client, finance_user):
    agreement = services.price_agreement_create(
        actor=None,
        customer=CustomerFactory(client_id="ACME-1"),
        service=ServiceFactory(code="api_call"),
        valid_from=date(2026, 3, 1),
        pricing_model=PricingModel.GRADUATED,
        tiers=[
            {"up_to": D(10_000), "unit_price": D("0.010")},
            {"up_to": D(100_000), "unit_price": D("0.008"), "flat_fee": D("5")},
            {"up_to": None, "unit_price": D("0.005")},
        ],
    )
    client.force_login(finance_user)

    exported = export(client, PriceAgreement, "csv").content.decode()
    dataset = tablib.Dataset().load(exported, format="csv")
    assert dataset["tiers"][0] == "1-10,000 @ 0.01; 10,001-100,000 @ 0.008 + 5.00; 100,001+ @ 0.005"

    preview = upload(client, PriceAgreement, exported)
    assert "confirm_form" in preview.context, preview.content.decode()
    confirm(client, PriceAgreement, preview)
    assert list(PriceAgreement.objects.all()) == [agreement]
    assert agreement.tiers.count() == 3 and agreement.tiers.get(position=1).history.count() == 1  # not rewritten


def test_an_imported_tier_table_replaces_the_stored_one(client, finance_user):
    CustomerFactory(client_id="ACME-1")
    ServiceFactory(code="api_call")
    client.force_login(finance_user)
    header = "client_id,service_code,valid_from,valid_to,pricing_model,unit_price,tiers"

    preview = upload(
        client, PriceAgreement, f'{header}\nACME-1,api_call,2026-03-01,,volume,0,"1-500 @ 1.00; 501+ @ 0.50 + 9"'
    )
    assert "confirm_form" in preview.context, preview.content.decode()
    confirm(client, PriceAgreement, preview)

    agreement = PriceAgreement.objects.get()
    assert agreement.pricing_model == PricingModel.VOLUME
    assert [(tier.up_to, tier.unit_price, tier.flat_fee) for tier in agreement.tiers.all()] == [
        (D(500), D(1), D(0)),
        (None, D("0.5"), D(9)),
    ]


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ("1-500 @ 1.00; 700+ @ 0.50", "Tier 2 leaves a gap: it starts at 700, not at 501."),
        ("1-500 @ 1.00; 400+ @ 0.50", "Tier 2 overlaps tier 1: it starts at 400, not at 501."),
        ("1-500 @ 1.00; 501+ @ 0.50; 900+ @ 0.1", "Tier 3 follows the open-ended tier 2"),
        ("1-500 at 1.00; 501+ @ 0.50", "Tier 1 ('1-500 at 1.00') cannot be read"),
    ],
)
def test_a_bad_tier_table_in_a_file_names_the_row_and_the_tier_and_writes_nothing(client, finance_user, tiers, message):
    CustomerFactory(client_id="ACME-1")
    ServiceFactory(code="api_call")
    client.force_login(finance_user)
    header = "client_id,service_code,valid_from,valid_to,pricing_model,unit_price,tiers"

    response = upload(client, PriceAgreement, f'{header}\nACME-1,api_call,2026-03-01,,graduated,0,"{tiers}"')

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [1]
    assert message in str(result.invalid_rows[0].field_specific_errors["tiers"])
    assert "confirm_form" not in response.context
    assert not PriceAgreement.objects.exists()
