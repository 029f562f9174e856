"""Partners' bank details: IBAN and BIC checked (schwifty) and kept compact, seen by Finance and Admin only."""

import pytest
import tablib
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from accounts.roles import Role
from billing_project.errors import NotAllowed
from catalog import services
from catalog.models import Partner
from catalog.tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

URL = "/api/partners"
IBAN = "DE89370400440532013000"
OTHER_ROLES = [Role.SALES, Role.CUSTOMER_SUCCESS, Role.OPERATIONS]


@pytest.fixture
def banked():
    return services.partner_create(
        actor=None, name="Lexis Formation Partners", iban=IBAN, bic="COBADEFFXXX", payout_currency="EUR"
    )


def test_a_typed_iban_and_bic_are_kept_compact_and_shown_in_groups(finance_user):
    partner = services.partner_create(
        actor=finance_user, name="Lexis", iban=" de89 3704 0044 0532 0130 00 ", bic="coba de ff xxx"
    )

    partner.refresh_from_db()
    assert (partner.iban, partner.bic) == (IBAN, "COBADEFFXXX")
    assert partner.iban_grouped == "DE89 3704 0044 0532 0130 00"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iban", "DE89370400440532013001"),  # a wrong check digit
        ("iban", "XX89370400440532013000"),  # no such country
        ("iban", "DE8937040044053201300"),  # too short
        ("bic", "COBADEF"),  # too short
        ("bic", "COBAXXFF"),  # no such country
    ],
)
def test_an_invalid_iban_or_bic_is_refused_naming_the_field(finance_user, field, value):
    with pytest.raises(Exception) as refused:
        services.partner_create(actor=finance_user, name="Lexis", **{field: value})

    errors = refused.value.message_dict
    assert list(errors) == [field]
    assert errors[field][0].startswith(f"Not a valid {field.upper()}")
    assert not Partner.objects.exists()


def test_a_role_that_does_not_see_bank_details_cannot_set_them(make_user):
    partner = PartnerFactory()

    with pytest.raises(NotAllowed) as refused:
        services.partner_update(actor=make_user(Role.SALES), partner=partner, iban=IBAN)

    assert "iban" in refused.value.fields


# --- API --------------------------------------------------------------------------------------------------------


def test_finance_sets_and_reads_bank_details_through_the_api(client_for, finance_user):
    api = client_for(finance_user)

    created = api.post(URL, {"name": "Lexis", "iban": "de89 3704 0044 0532 0130 00", "payout_currency": "EUR"})
    changed = api.patch(f"{URL}/{created.json()['id']}", {"bic": "COBADEFFXXX"}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["iban"] == IBAN and created.json()["payout_currency"] == "EUR"
    assert changed.status_code == 200 and changed.json()["bic"] == "COBADEFFXXX"


def test_an_invalid_iban_in_the_api_is_a_400_naming_it(client_for, finance_user):
    response = client_for(finance_user).post(URL, {"name": "Lexis", "iban": "DE00 0000"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["iban"] and "Not a valid IBAN" in error["fields"]["iban"][0]
    assert not Partner.objects.exists()


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_other_roles_get_partners_without_bank_details(client_for, make_user, banked, role):
    api = client_for(make_user(role))

    listed = api.get(URL).json()["results"]
    one = api.get(f"{URL}/{banked.pk}").json()

    assert [p["name"] for p in listed] == ["Lexis Formation Partners"]
    for shown in (listed[0], one):
        assert not {"iban", "bic", "payout_currency"} & set(shown)
    assert IBAN not in api.get(URL).content.decode()


def test_admin_sees_bank_details_in_the_api(client_for, admin_user, banked):
    shown = client_for(admin_user).get(f"{URL}/{banked.pk}").json()

    assert (shown["iban"], shown["bic"], shown["payout_currency"]) == (IBAN, "COBADEFFXXX", "EUR")


def test_portal_users_see_no_partners(client_for, portal_user, banked):
    api = client_for(portal_user)

    assert api.get(URL).json()["results"] == []
    assert api.get(f"{URL}/{banked.pk}").status_code == 404


def test_the_schema_says_who_gets_bank_details():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    partner = schema["components"]["schemas"]["Partner"]

    assert "Only for Finance and Admin" in partner["properties"]["iban"]["description"]
    assert not {"iban", "bic", "payout_currency"} & set(partner.get("required", []))


# --- Admin ------------------------------------------------------------------------------------------------------


def test_finance_sees_the_bank_details_fieldset_with_the_iban_grouped(client, finance_user, banked):
    client.force_login(finance_user)

    page = client.get(reverse("admin:catalog_partner_change", args=[banked.pk])).content.decode()
    listed = client.get(reverse("admin:catalog_partner_changelist")).content.decode()

    assert "Bank details" in page and 'value="DE89 3704 0044 0532 0130 00"' in page
    assert "DE89 3704 0044 0532 0130 00" in listed


def test_finance_changes_the_iban_in_the_admin_and_an_invalid_one_is_refused(client, finance_user, banked):
    client.force_login(finance_user)
    url = reverse("admin:catalog_partner_change", args=[banked.pk])
    base = {"name": banked.name, "contact_person": "", "email": "", "phone": "", "bic": "", "payout_currency": "EUR"}

    refused = client.post(url, base | {"iban": "DE89 3704 0044 0532 0130 01"})
    saved = client.post(url, base | {"iban": "gb29 nwbk 6016 1331 9268 19"})

    assert refused.status_code == 200 and "Not a valid IBAN" in str(refused.context["adminform"].form.errors["iban"])
    assert saved.status_code == 302
    banked.refresh_from_db()
    assert banked.iban == "GB29NWBK60161331926819"


def test_an_unchanged_grouped_iban_is_no_change(client, finance_user, banked):
    client.force_login(finance_user)
    url = reverse("admin:catalog_partner_change", args=[banked.pk])
    form = {"name": banked.name, "contact_person": "", "email": "", "phone": ""}

    client.post(url, form | {"iban": banked.iban_grouped, "bic": banked.bic, "payout_currency": "EUR"})

    assert LogEntry.objects.get(object_id=str(banked.pk)).get_change_message() == "No fields changed."


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_other_roles_see_no_bank_details_in_the_admin(client, make_user, banked, role):
    client.force_login(make_user(role))

    page = client.get(reverse("admin:catalog_partner_change", args=[banked.pk])).content.decode()
    listed = client.get(reverse("admin:catalog_partner_changelist")).content.decode()

    assert "Lexis Formation Partners" in page and "Lexis Formation Partners" in listed
    for shown in (page, listed):
        assert "Bank details" not in shown and "DE89" not in shown and "COBADEFF" not in shown


def _export(client) -> tablib.Dataset:
    formats = admin.site._registry[Partner].get_export_formats()
    index = next(index for index, fmt in enumerate(formats) if fmt().get_title() == "csv")
    response = client.post(reverse("admin:catalog_partner_export"), {"resource": "0", "format": str(index)})
    return tablib.Dataset().load(response.content.decode(), format="csv")


def test_the_partner_export_carries_bank_details_for_finance_only(client, finance_user, make_user, banked):
    client.force_login(finance_user)
    finance_export = _export(client)
    client.force_login(make_user(Role.SALES))
    sales_export = _export(client)

    assert finance_export["iban"] == [IBAN] and finance_export["payout_currency"] == ["EUR"]
    assert "iban" not in sales_export.headers and sales_export["name"] == ["Lexis Formation Partners"]
