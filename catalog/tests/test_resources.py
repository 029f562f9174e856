"""Import and export of customers and price agreements through the admin (django-import-export)."""

import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
import tablib
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from catalog import services
from catalog.models import Customer, PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db

CUSTOMER_HEADER = "client_id,name,currency,csm_email,start_date,status,require_csm_approval"


def format_index(model, title: str, *, export: bool = False) -> str:
    model_admin = admin.site._registry[model]
    formats = model_admin.get_export_formats() if export else model_admin.get_import_formats()
    return str(next(index for index, fmt in enumerate(formats) if fmt().get_title() == title))


def upload(client, model, csv_text: str):
    """The first step of the admin import: upload and preview (a dry run)."""
    url = reverse(f"admin:catalog_{model._meta.model_name}_import")
    return client.post(
        url,
        {
            "resource": "0",
            "format": format_index(model, "csv"),
            "import_file": SimpleUploadedFile("data.csv", csv_text.encode(), content_type="text/csv"),
        },
    )


def confirm(client, model, preview):
    """The second step: confirm the previewed file (process_import)."""
    form = preview.context["confirm_form"]
    url = reverse(f"admin:catalog_{model._meta.model_name}_process_import")
    return client.post(url, {name: form.initial[name] for name in form.fields})


def export(client, model, title: str, **params):
    url = reverse(f"admin:catalog_{model._meta.model_name}_export")
    if params:
        url += "?" + "&".join(f"{key}={value}" for key, value in params.items())
    return client.post(url, {"resource": "0", "format": format_index(model, title, export=True)})


# Customers.


def test_customer_file_with_one_bad_row_shows_the_row_and_field_and_writes_nothing(client, finance_user):
    CustomerFactory(client_id="KEEP-1", name="Kept Ltd")
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            CUSTOMER_HEADER,
            "ACME-1,Acme,EUR,,2026-01-01,active,0",
            "BETA-2,Beta,XXX,,2026-01-01,active,0",  # no such currency
            "GAMMA-3,Gamma,USD,,2026-01-01,active,0",
            "KEEP-1,Kept Renamed,EUR,,2026-01-01,active,0",
        ]
    )

    response = upload(client, Customer, csv_text)

    assert response.status_code == 200
    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [2]
    assert list(result.invalid_rows[0].field_specific_errors) == ["currency"]
    html = response.content.decode()
    assert "Some rows failed to validate" in html
    assert "XXX" in html and "is not a valid choice" in html
    assert "confirm_form" not in response.context
    assert list(Customer.objects.values_list("client_id", "name")) == [("KEEP-1", "Kept Ltd")]


def test_customer_file_with_an_unknown_csm_names_the_row_and_the_column(client, finance_user):
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            CUSTOMER_HEADER,
            "ACME-1,Acme,EUR,,2026-01-01,active,0",
            "BETA-2,Beta,EUR,nobody@example.com,2026-01-01,active,0",
        ]
    )

    response = upload(client, Customer, csv_text)

    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors()  # a clear validation error, not a crashed row
    assert [row.number for row in result.invalid_rows] == [2]
    assert list(result.invalid_rows[0].field_specific_errors) == ["csm"]
    assert "No user with email &#x27;nobody@example.com&#x27;" in response.content.decode()
    assert "confirm_form" not in response.context
    assert not Customer.objects.exists()


def test_customer_file_with_a_csm_outside_customer_success_is_refused(client, finance_user, make_user):
    sales = make_user(Role.SALES)
    client.force_login(finance_user)

    response = upload(client, Customer, f"{CUSTOMER_HEADER}\nACME-1,Acme,EUR,{sales.email},2026-01-01,active,0")

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [1]
    assert "csm" in result.invalid_rows[0].field_specific_errors
    assert not Customer.objects.exists()


def test_valid_customer_file_previews_then_writes_everything_on_confirm(client, finance_user, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    existing = CustomerFactory(client_id="KEEP-1", name="Kept Ltd", currency="EUR")
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            CUSTOMER_HEADER,
            f"ACME-1,Acme,EUR,{csm.email},2026-01-01,active,1",
            "BETA-2,Beta,USD,,2026-02-01,suspended,0",
            "KEEP-1,Kept Renamed,EUR,,2026-01-01,active,0",
        ]
    )

    preview = upload(client, Customer, csv_text)

    assert preview.status_code == 200
    assert "confirm_form" in preview.context, preview.content.decode()
    assert Customer.objects.count() == 1  # the preview is a dry run

    response = confirm(client, Customer, preview)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:catalog_customer_changelist")
    assert Customer.objects.count() == 3
    acme = Customer.objects.get(client_id="ACME-1")
    assert (acme.name, acme.csm, acme.require_csm_approval) == ("Acme", csm, True)
    assert Customer.objects.get(client_id="BETA-2").status == "suspended"
    existing.refresh_from_db()
    assert existing.name == "Kept Renamed"  # matched by client_id, not duplicated
    assert acme.history.latest().history_user == finance_user
    messages = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert "2 new, 1 updated" in messages


def test_a_file_that_turned_invalid_after_the_preview_writes_nothing(client, finance_user):
    client.force_login(finance_user)
    csv_text = f"{CUSTOMER_HEADER}\nACME-1,Acme,EUR,,2026-01-01,active,0\nBETA-2,Beta,EUR,,2026-01-01,active,0"
    preview = upload(client, Customer, csv_text)
    assert "confirm_form" in preview.context
    # Between preview and confirm someone else takes the name of the second row.
    CustomerFactory(client_id="OTHER-9", name="Beta")

    response = confirm(client, Customer, preview)

    assert not Customer.objects.filter(client_id__in=["ACME-1", "BETA-2"]).exists()
    messages = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert "Nothing was imported" in messages
    assert "Import finished" not in messages


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_roles_without_add_permission_cannot_import_customers(client, make_user, role):
    client.force_login(make_user(role))

    assert client.get(reverse("admin:catalog_customer_import")).status_code == 403
    response = upload(client, Customer, f"{CUSTOMER_HEADER}\nACME-1,Acme,EUR,,2026-01-01,active,0")
    assert response.status_code == 403
    assert not Customer.objects.exists()


# Price agreements, keyed by client id and service code.

AGREEMENT_HEADER = "client_id,service_code,valid_from,valid_to,unit_price,included_quantity,monthly_fee"


def test_valid_agreement_file_writes_with_natural_keys(client, finance_user):
    CustomerFactory(client_id="ACME-1")
    CustomerFactory(client_id="BETA-2")
    ServiceFactory(code="kyc_check")
    ServiceFactory(code="aml_screen")
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            AGREEMENT_HEADER,
            "ACME-1,kyc_check,2026-01-01,2026-06-30,0.050000,1000,0",
            "ACME-1,kyc_check,2026-07-01,,0.040000,1000,0",
            "BETA-2,aml_screen,2026-01-01,,1.250000,0,99.00",
        ]
    )

    preview = upload(client, PriceAgreement, csv_text)
    assert "confirm_form" in preview.context, preview.content.decode()
    assert not PriceAgreement.objects.exists()
    confirm(client, PriceAgreement, preview)

    rows = PriceAgreement.objects.order_by("customer__client_id", "valid_from").values_list(
        "customer__client_id", "service__code", "valid_from", "valid_to", "unit_price", "monthly_fee"
    )
    assert list(rows) == [
        ("ACME-1", "kyc_check", date(2026, 1, 1), date(2026, 6, 30), Decimal("0.05"), Decimal("0")),
        ("ACME-1", "kyc_check", date(2026, 7, 1), None, Decimal("0.04"), Decimal("0")),
        ("BETA-2", "aml_screen", date(2026, 1, 1), None, Decimal("1.25"), Decimal("99")),
    ]
    assert PriceAgreement.objects.first().history.latest().history_user == finance_user


def test_agreement_file_with_an_unknown_service_names_the_row_and_column_and_writes_nothing(client, finance_user):
    CustomerFactory(client_id="ACME-1")
    ServiceFactory(code="kyc_check")
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            AGREEMENT_HEADER,
            "ACME-1,kyc_check,2026-01-01,,0.05,0,0",
            "ACME-1,no_such_service,2026-01-01,,0.05,0,0",
        ]
    )

    response = upload(client, PriceAgreement, csv_text)

    assert response.status_code == 200
    result = response.context["result"]
    assert not result.has_errors()
    assert [row.number for row in result.invalid_rows] == [2]
    assert list(result.invalid_rows[0].field_specific_errors) == ["service"]
    assert "No service with code &#x27;no_such_service&#x27;" in response.content.decode()
    assert "confirm_form" not in response.context
    assert not PriceAgreement.objects.exists()


def test_agreement_file_with_overlapping_rows_is_refused(client, finance_user):
    CustomerFactory(client_id="ACME-1")
    ServiceFactory(code="kyc_check")
    client.force_login(finance_user)
    csv_text = "\n".join(
        [
            AGREEMENT_HEADER,
            "ACME-1,kyc_check,2026-01-01,2026-06-30,0.05,0,0",
            "ACME-1,kyc_check,2026-06-01,,0.04,0,0",
        ]
    )

    response = upload(client, PriceAgreement, csv_text)

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [2]
    assert "Overlaps" in str(result.invalid_rows[0].field_specific_errors)
    assert "confirm_form" not in response.context
    assert not PriceAgreement.objects.exists()


def test_agreement_file_with_a_negative_price_is_refused(client, finance_user):
    CustomerFactory(client_id="ACME-1")
    ServiceFactory(code="kyc_check")
    client.force_login(finance_user)

    response = upload(client, PriceAgreement, f"{AGREEMENT_HEADER}\nACME-1,kyc_check,2026-01-01,,-0.05,0,0")

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [1]
    assert "unit_price" in result.invalid_rows[0].field_specific_errors
    assert not PriceAgreement.objects.exists()


# Export.


def test_customer_export_neutralises_formulae(client, finance_user):
    CustomerFactory(name='=HYPERLINK("http://evil.example","click")', client_id="EVIL-1")
    client.force_login(finance_user)

    response = export(client, Customer, "csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    dataset = tablib.Dataset().load(response.content.decode(), format="csv")
    name = dataset["name"][0]
    assert not name.startswith("=")
    assert "HYPERLINK" in name


@pytest.mark.parametrize("dangerous", ['==HYPERLINK("x")', '+HYPERLINK("x")', "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)"])
def test_customer_export_neutralises_every_formula_prefix(client, finance_user, dangerous):
    CustomerFactory(name=dangerous, client_id="EVIL-1")
    client.force_login(finance_user)

    response = export(client, Customer, "csv")

    name = tablib.Dataset().load(response.content.decode(), format="csv")["name"][0]
    assert name[0] not in "=+-@\t\r"


def test_exported_formula_cells_import_back_unchanged(client, finance_user):
    customer = CustomerFactory(name="=SUM(1+1)", legal_name="-Minus Ltd", client_id="EVIL-1")
    client.force_login(finance_user)
    exported = export(client, Customer, "csv").content.decode()
    assert "'=SUM(1+1)" in exported

    preview = upload(client, Customer, exported)
    assert "confirm_form" in preview.context, preview.content.decode()
    confirm(client, Customer, preview)

    customer.refresh_from_db()
    assert (customer.name, customer.legal_name) == ("=SUM(1+1)", "-Minus Ltd")
    assert customer.history.count() == 1  # the unchanged row was skipped


def test_customer_export_xlsx_is_a_workbook_without_live_formulae(client, finance_user):
    CustomerFactory(name='=HYPERLINK("x")', client_id="EVIL-1")
    CustomerFactory(name="Plain Ltd", client_id="PLAIN-1")
    client.force_login(finance_user)

    response = export(client, Customer, "xlsx")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    names = {row[header.index("name")] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "Plain Ltd" in names
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_csm_export_contains_only_their_customers(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    CustomerFactory(csm=csm, client_id="MINE-1")
    CustomerFactory(client_id="THEIRS-1")
    client.force_login(csm)

    response = export(client, Customer, "csv")

    assert response.status_code == 200
    dataset = tablib.Dataset().load(response.content.decode(), format="csv")
    assert list(dataset["client_id"]) == ["MINE-1"]


def test_agreement_export_uses_natural_keys_and_round_trips(client, finance_user):
    agreement = PriceAgreementFactory(
        customer__client_id="ACME-1", service__code="kyc_check", valid_from=date(2026, 1, 1), unit_price=Decimal("0.05")
    )
    client.force_login(finance_user)

    exported = export(client, PriceAgreement, "csv").content.decode()
    dataset = tablib.Dataset().load(exported, format="csv")
    assert (dataset["client_id"][0], dataset["service_code"][0]) == ("ACME-1", "kyc_check")

    # Re-importing the export changes nothing and creates no duplicate.
    preview = upload(client, PriceAgreement, exported)
    assert "confirm_form" in preview.context, preview.content.decode()
    confirm(client, PriceAgreement, preview)
    assert list(PriceAgreement.objects.all()) == [agreement]


def test_export_follows_the_changelist_filters(client, finance_user):
    CustomerFactory(client_id="ACTIVE-1", status="active")
    CustomerFactory(client_id="CLOSED-1", status="closed")
    client.force_login(finance_user)

    response = export(client, Customer, "csv", status__exact="closed")

    assert list(tablib.Dataset().load(response.content.decode(), format="csv")["client_id"]) == ["CLOSED-1"]


def test_import_history_records_the_importing_user_on_updates(client, finance_user):
    customer = services.customer_create(actor=None, name="Acme", client_id="ACME-1", currency="EUR")
    client.force_login(finance_user)

    preview = upload(client, Customer, f"{CUSTOMER_HEADER}\nACME-1,Acme Renamed,EUR,,2026-01-01,active,0")
    confirm(client, Customer, preview)

    latest = customer.history.latest()
    assert (latest.name, latest.history_user) == ("Acme Renamed", finance_user)


def test_customer_file_requiring_csm_approval_without_a_csm_names_the_row_and_field(client, finance_user):
    client.force_login(finance_user)
    csv_text = f"{CUSTOMER_HEADER}\nACME-1,Acme,EUR,,2026-01-01,active,0\nSOYLENT-010,Soylent,USD,,2026-01-01,active,1"

    response = upload(client, Customer, csv_text)

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [2]
    assert list(result.invalid_rows[0].field_specific_errors) == ["require_csm_approval"]
    assert "SOYLENT-010 has no CSM to approve its bills" in response.content.decode()
    assert "confirm_form" not in response.context
    assert not Customer.objects.exists()
