"""Revenue-share agreements in the API and the admin: who reads and writes them, and import/export."""

from datetime import date
from decimal import Decimal

import pytest
import tablib
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from catalog.tests.factories import PartnerFactory
from orders.models import RevenueShareAgreement
from orders.services.agreements import revenue_share_agreement_create
from orders.tests.factories import OrderTypeFactory

pytestmark = pytest.mark.django_db

URL = "/api/revenue-share-agreements"


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


@pytest.fixture
def partner():
    return PartnerFactory(name="Lexis Formation Partners")


@pytest.fixture
def formation():
    return OrderTypeFactory(code="uk_formation", name="UK company formation")


@pytest.fixture
def general(partner):
    return revenue_share_agreement_create(
        actor=None, partner=partner, percentage=Decimal("15.00"), valid_from=date(2026, 1, 1)
    )


def test_finance_creates_reads_and_corrects_an_agreement(client_for, finance_user, partner, formation):
    api = client_for(finance_user)
    body = {"partner": partner.pk, "order_type": "uk_formation", "percentage": "20.00", "valid_from": "2026-01-01"}

    created = ok(api.post(URL, body, format="json"), 201)
    corrected = ok(api.patch(f"{URL}/{created['id']}", {"valid_to": "2026-12-31"}, format="json"))
    listed = ok(api.get(URL, {"partner": partner.pk}))

    assert created["partner_name"] == "Lexis Formation Partners" and created["order_type"] == "uk_formation"
    assert created["percentage"] == "20.00" and created["valid_to"] is None
    assert corrected["valid_to"] == "2026-12-31"
    assert [a["id"] for a in listed["results"]] == [created["id"]]
    agreement = RevenueShareAgreement.objects.get()
    assert [h.history_user for h in agreement.history.order_by("history_id")] == [finance_user, finance_user]


def test_an_overlapping_agreement_is_a_400_naming_valid_from(client_for, finance_user, general, partner):
    body = {"partner": partner.pk, "percentage": "25.00", "valid_from": "2026-06-01"}

    error = error_of(client_for(finance_user).post(URL, body, format="json"), 400)

    assert error["code"] == "overlap"
    assert "valid_from" in error["fields"]
    assert RevenueShareAgreement.objects.count() == 1


def test_a_percentage_above_100_is_a_400_naming_it(client_for, finance_user, partner):
    body = {"partner": partner.pk, "percentage": "100.5", "valid_from": "2026-01-01"}

    error = error_of(client_for(finance_user).post(URL, body, format="json"), 400)

    assert "percentage" in error["fields"]


def test_filters_find_general_agreements_and_those_in_force(client_for, finance_user, general, partner, formation):
    revenue_share_agreement_create(
        actor=None,
        partner=partner,
        order_type=formation,
        percentage=Decimal("20.00"),
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 3, 31),
    )
    api = client_for(finance_user)

    general_only = ok(api.get(URL, {"general": "true"}))["results"]
    in_force = ok(api.get(URL, {"in_force_on": "2026-04-01"}))["results"]

    assert [a["id"] for a in general_only] == [general.pk]
    assert [a["id"] for a in in_force] == [general.pk]


@pytest.mark.parametrize("role", [Role.SALES, Role.CUSTOMER_SUCCESS])
def test_roles_that_see_partners_read_agreements_but_write_none(client_for, make_user, general, partner, role):
    api = client_for(make_user(role))

    listed = ok(api.get(URL))
    created = api.post(URL, {"partner": partner.pk, "percentage": "5", "valid_from": "2027-01-01"}, format="json")
    changed = api.patch(f"{URL}/{general.pk}", {"percentage": "50.00"}, format="json")

    assert [a["id"] for a in listed["results"]] == [general.pk]
    assert error_of(created, 403)["code"] == "permission_denied"
    assert error_of(changed, 403)["code"] == "permission_denied"
    general.refresh_from_db()
    assert general.percentage == Decimal("15.00")


def test_operations_portal_and_outside_accounts_see_no_agreements(client_for, make_user, portal_user, general):
    assert client_for(make_user(Role.OPERATIONS)).get(URL).status_code == 403
    client_for(None).logout()
    assert client_for(portal_user).get(URL).status_code == 403
    client_for(None).logout()
    outside = make_user(Role.CUSTOMER_SUCCESS, shared_only=True)
    assert ok(client_for(outside).get(URL))["results"] == []
    assert client_for(outside).get(f"{URL}/{general.pk}").status_code == 404


def test_the_list_reads_in_a_fixed_number_of_queries(client_for, finance_user, django_assert_max_num_queries):
    for index in range(5):
        revenue_share_agreement_create(
            actor=None,
            partner=PartnerFactory(),
            order_type=OrderTypeFactory(),
            percentage=Decimal(index),
            valid_from=date(2026, 1, 1),
        )
    api = client_for(finance_user)

    with django_assert_max_num_queries(8):
        assert len(ok(api.get(URL))["results"]) == 5


# --- Admin ------------------------------------------------------------------------------------------------------


def test_finance_adds_an_agreement_in_the_admin_with_history(client, finance_user, partner, formation):
    client.force_login(finance_user)
    data = {"partner": partner.pk, "order_type": formation.pk, "percentage": "20.00", "valid_from": "2026-01-01"}

    response = client.post(reverse("admin:orders_revenueshareagreement_add"), data | {"valid_to": ""})

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    agreement = RevenueShareAgreement.objects.get()
    assert agreement.history.get().history_user == finance_user


def test_the_admin_refuses_an_overlap_on_the_form(client, finance_user, general, partner):
    client.force_login(finance_user)
    data = {"partner": partner.pk, "order_type": "", "percentage": "20.00", "valid_from": "2026-05-01", "valid_to": ""}

    response = client.post(reverse("admin:orders_revenueshareagreement_add"), data)

    assert response.status_code == 200
    assert "Overlaps" in str(response.context["adminform"].form.errors["valid_from"])
    assert RevenueShareAgreement.objects.count() == 1


def test_the_changelist_shows_the_type_or_general_and_the_share(client, finance_user, general, partner, formation):
    revenue_share_agreement_create(
        actor=None, partner=partner, order_type=formation, percentage=Decimal("20.00"), valid_from=date(2026, 1, 1)
    )
    client.force_login(finance_user)

    page = client.get(reverse("admin:orders_revenueshareagreement_changelist")).content.decode()

    assert "All (general)" in page and "UK company formation" in page
    assert "15\xa0%" in page and "20\xa0%" in page


@pytest.mark.parametrize("role", [Role.SALES, Role.CUSTOMER_SUCCESS])
def test_readers_see_the_agreement_admin_but_cannot_change_it(client, make_user, general, role):
    client.force_login(make_user(role))

    listed = client.get(reverse("admin:orders_revenueshareagreement_changelist"))
    add = client.get(reverse("admin:orders_revenueshareagreement_add"))
    changed = client.post(
        reverse("admin:orders_revenueshareagreement_change", args=[general.pk]),
        {"percentage": "50.00", "valid_from": "2026-01-01", "valid_to": ""},
    )

    assert listed.status_code == 200 and add.status_code == 403
    assert changed.status_code == 403
    general.refresh_from_db()
    assert general.percentage == Decimal("15.00")


def _format(title: str, *, export: bool) -> str:
    model_admin = admin.site._registry[RevenueShareAgreement]
    formats = model_admin.get_export_formats() if export else model_admin.get_import_formats()
    return str(next(index for index, fmt in enumerate(formats) if fmt().get_title() == title))


def _import(client, csv_text: str):
    preview = client.post(
        reverse("admin:orders_revenueshareagreement_import"),
        {
            "resource": "0",
            "format": _format("csv", export=False),
            "import_file": SimpleUploadedFile("agreements.csv", csv_text.encode(), content_type="text/csv"),
        },
    )
    return preview


def _confirm(client, preview):
    form = preview.context["confirm_form"]
    url = reverse("admin:orders_revenueshareagreement_process_import")
    return client.post(url, {name: form.initial[name] for name in form.fields})


def test_export_uses_names_and_codes_and_imports_back_unchanged(client, finance_user, general, partner, formation):
    revenue_share_agreement_create(
        actor=None, partner=partner, order_type=formation, percentage=Decimal("20.00"), valid_from=date(2026, 1, 1)
    )
    client.force_login(finance_user)

    exported = client.post(
        reverse("admin:orders_revenueshareagreement_export"), {"resource": "0", "format": _format("csv", export=True)}
    ).content.decode()
    dataset = tablib.Dataset().load(exported, format="csv")
    preview = _import(client, exported)
    assert "confirm_form" in preview.context, preview.content.decode()
    _confirm(client, preview)

    assert sorted(zip(dataset["partner"], dataset["order_type_code"], dataset["percentage"], strict=True)) == [
        ("Lexis Formation Partners", "", "15.00"),
        ("Lexis Formation Partners", "uk_formation", "20.00"),
    ]
    assert RevenueShareAgreement.objects.count() == 2


def test_an_imported_file_with_an_overlapping_row_writes_nothing(client, finance_user, general, partner):
    client.force_login(finance_user)
    csv_text = (
        "partner,order_type_code,percentage,valid_from,valid_to\n"
        "Lexis Formation Partners,,12.00,2025-01-01,2025-12-31\n"
        "Lexis Formation Partners,,12.00,2026-06-01,\n"
    )

    preview = _import(client, csv_text)

    assert "confirm_form" not in (preview.context or {})
    assert "Overlaps" in preview.content.decode()
    assert RevenueShareAgreement.objects.count() == 1
