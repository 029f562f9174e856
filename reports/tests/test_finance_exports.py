"""The finance report pages (reports.finance_views), their CSV, XLSX and PDF exports (reports.exports), the partner
revenue PDF, and GET /api/reports/<name> (reports.api), on the figures of test_finance_reports."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from accounts.roles import Role
from accounts.services import api_token_create
from billing_project.spreadsheets import AMOUNT_FORMAT, COUNT_FORMAT, DAY_FORMAT, RATE_FORMAT
from billing_project.wsgi import application
from catalog.tests.factories import CustomerFactory
from reports import finance
from reports.exports import render_pdf
from reports.tests import test_finance_reports as figures
from reports.tests.finance_data import make_invoice

# The figures' fixtures (today is 10 Apr 2026).
today, people, customers, aging, march, payments = (
    figures.today, figures.people, figures.customers, figures.aging, figures.march, figures.payments
)  # fmt: skip
MARCH, S = figures.MARCH, figures.S

pytestmark = pytest.mark.django_db

MARCH_QUERY = {"start": "2026-03-01", "end": "2026-03-31"}


def page(name: str) -> str:
    return reverse(f"admin:report_{name.replace('-', '_')}")


def _content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _pdf_text(content: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(content))
    return reader, "\n".join(pdf_page.extract_text() for pdf_page in reader.pages).replace("\xa0", " ")


def _html(response) -> str:
    """The page's text, amounts' non-breaking spaces as plain ones."""
    return response.content.decode().replace("\xa0", " ")


# Who opens which page.


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.FINANCE, set(finance.PERMISSIONS)),
        (Role.SALES, {"aged-receivables", "invoice-register", "payments-register", "revenue"}),
        (Role.CUSTOMER_SUCCESS, {"aged-receivables", "invoice-register", "payments-register"}),
        (Role.OPERATIONS, set()),
        (Role.ADMIN, set(finance.PERMISSIONS)),
    ],
)
def test_each_page_opens_for_the_roles_holding_its_permission(client, make_user, role, allowed):
    client.force_login(make_user(role))
    for name in finance.PERMISSIONS:
        assert client.get(page(name)).status_code == (200 if name in allowed else 403), name


def test_the_sidebar_lists_the_reports_a_user_may_open(client, people):
    client.force_login(people["csm"])
    html = _html(client.get(page("aged-receivables")))
    assert page("invoice-register") in html and page("tax") not in html


# The pages.


def test_the_register_page_shows_rows_totals_and_exports(client, people, march):
    client.force_login(people["finance"])
    html = _html(client.get(page("invoice-register"), {**MARCH_QUERY, "currency": "EUR"}))
    assert "INV-1" in html and "1 Mar 2026" in html and "Feb 2026" in html
    assert "EUR 1,030.00" in html and "-EUR 96.00" in html
    assert "Total EUR" in html and "EUR 1,474.00" in html
    assert "Export PDF" in html


def test_the_page_shows_a_page_of_rows_and_totals_over_all(client, people, customers):
    acme = customers["acme"]
    for n in range(55):
        make_invoice(
            acme, f"INV-{n:03d}", issued=f"2026-03-{1 + n % 28:02d} 10:00", lines=[("10", "0", None, S.MANUAL)]
        )
    client.force_login(people["finance"])
    first = _html(client.get(page("invoice-register"), MARCH_QUERY))
    assert "Page 1 of 2 (55 rows" in first and "EUR 550.00" in first
    second = _html(client.get(page("invoice-register"), {**MARCH_QUERY, "page": 2}))
    assert second.count("<tr>") == 1 + 5  # the header and five rows
    assert "EUR 550.00" in second


def test_an_empty_report_says_so_and_offers_no_export(client, people, customers):
    client.force_login(people["finance"])
    html = _html(client.get(page("tax"), MARCH_QUERY))
    assert 'id="report-empty"' in html and "Export CSV" not in html


def test_a_customer_a_csm_does_not_see_is_not_a_choice(client, people, customers, march):
    client.force_login(people["csm"])
    response = client.get(page("invoice-register"), {**MARCH_QUERY, "customer": customers["globex"].pk})
    assert 'id="filter-errors"' in _html(response)


def _customer_search(client, term: str = "") -> list[str]:
    """What the report pages' customer filter offers for `term` (the admin's autocomplete, catalog.widgets)."""
    query = {"app_label": "catalog", "model_name": "priceagreement", "field_name": "customer", "term": term}
    response = client.get(reverse("admin:autocomplete"), query)
    assert response.status_code == 200
    return [result["text"] for result in response.json()["results"]]


def test_the_customer_filter_searches_as_one_types_among_the_customers_the_user_may_see(client, people, customers):
    client.force_login(people["finance"])
    html = _html(client.get(page("invoice-register"), {**MARCH_QUERY, "customer": customers["acme"].pk}))
    # Only the chosen customer is on the page; the others are found by searching.
    assert 'class="admin-autocomplete"' in html and 'data-placeholder="Every customer"' in html
    assert "Acme" in html and "Globex" not in html and "Initech" not in html
    assert [text.split(" (")[0] for text in _customer_search(client)] == ["Acme", "Globex", "Initech"]
    assert [text.split(" (")[0] for text in _customer_search(client, "glob")] == ["Globex"]

    client.force_login(people["csm"])
    assert [text.split(" (")[0] for text in _customer_search(client)] == ["Acme"]
    assert _customer_search(client, "glob") == []


def test_a_customer_that_is_not_a_number_is_a_filter_error(client, people, customers):
    client.force_login(people["finance"])
    response = client.get(page("invoice-register"), {**MARCH_QUERY, "customer": "acme"})
    assert response.status_code == 200 and 'id="filter-errors"' in _html(response)


def test_the_date_filters_take_the_days_as_they_are_shown(client, people, march):
    client.force_login(people["finance"])
    typed = _html(client.get(page("invoice-register"), {"start": "1 Mar 2026", "end": "31 Mar 2026"}))
    iso = _html(client.get(page("invoice-register"), MARCH_QUERY))
    assert 'id="filter-errors"' not in typed and "Period: 1 Mar 2026 to 31 Mar 2026" in typed
    assert typed.count("<tr") == iso.count("<tr") > 2


def test_aging_page_defaults_to_today(client, people, aging):
    client.force_login(people["finance"])
    html = _html(client.get(page("aged-receivables")))
    assert "As of: 10 Apr 2026" in html and "EUR 1,132.00" in html and "GBP 500.00" in html


# CSV and XLSX.


def test_the_csv_export_holds_exact_amounts_and_the_totals(client, people, march):
    client.force_login(people["finance"])
    response = client.get(page("tax"), {**MARCH_QUERY, "export": "csv"})
    rows = list(csv.reader(io.StringIO(_content(response).decode())))
    assert rows[0] == [column.key for column in finance.TAX_COLUMNS]
    assert rows[1] == ["EUR", "0.2000", "", "1100.00", "220.00", "110.00", "21.00", "990.00", "199.00"]
    assert rows[-2][:2] == ["EUR", ""] and rows[-2][2] == "Total EUR" and rows[-2][-2:] == ["1270.00", "204.00"]


def test_the_xlsx_export_has_typed_numbers_a_frozen_header_and_totals_equal_to_the_sum(client, people, march):
    client.force_login(people["finance"])
    response = client.get(page("invoice-register"), {**MARCH_QUERY, "export": "xlsx"})
    sheet = load_workbook(io.BytesIO(_content(response)))["Invoice register"]
    assert sheet.freeze_panes == "A2"
    header, *body = list(sheet.iter_rows())
    assert [cell.value for cell in header][:2] == ["Issued", "Number"] and header[0].font.b
    rows, totals = body[:6], body[6:]
    net = 8  # columns: issued, number, document, customer, month, due, status, currency, net, tax, total
    first = rows[0]
    assert first[0].is_date and first[0].number_format == DAY_FORMAT
    assert isinstance(first[net].value, int | float) and first[net].number_format == AMOUNT_FORMAT
    assert [cell.value for cell in totals[0]][1] == "Total EUR" and totals[0][net].font.b
    for total in totals:
        currency = total[7].value
        for column in (net, net + 1, net + 2):
            summed = sum(Decimal(str(row[column].value)) for row in rows if row[7].value == currency)
            assert Decimal(str(total[column].value)) == summed
    assert [Decimal(str(t[net + 2].value)) for t in totals] == [Decimal("1474"), Decimal("360")]


def test_the_xlsx_rates_and_counts_have_their_formats(client, people, march, aging):
    client.force_login(people["finance"])
    tax = load_workbook(io.BytesIO(_content(client.get(page("tax"), {**MARCH_QUERY, "export": "xlsx"}))))
    rate = tax.active["B2"]
    assert rate.value == 0.2 and rate.number_format == RATE_FORMAT
    aged = load_workbook(io.BytesIO(_content(client.get(page("aged-receivables"), {"export": "xlsx"}))))
    assert aged.active["C2"].number_format == COUNT_FORMAT


# PDF.


def test_the_pdf_prints_the_filters_the_rows_the_totals_and_page_numbers(client, people, march, customers):
    client.force_login(people["finance"])
    response = client.get(page("invoice-register"), {**MARCH_QUERY, "currency": "EUR", "export": "pdf"})
    assert response["Content-Type"] == "application/pdf"
    reader, text = _pdf_text(response.content)
    assert "Invoice register" in text
    assert "Period: 1 Mar 2026 to 31 Mar 2026" in text and "Currency: EUR" in text
    assert "Customer: Every customer" in text
    assert "INV-2" in text and "EUR 1,474.00" in text and "Total EUR" in text
    assert "Page 1 of 1" in text
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert width > height  # eleven columns: landscape


def test_a_long_pdf_numbers_its_pages_and_a_narrow_one_is_portrait():
    rows = [{"name": f"Row {n}", "currency": "EUR", "amount": Decimal("1.00")} for n in range(120)]
    table = finance.ReportTable(
        name="test",
        title="Test",
        filters=[("Period", "March")],
        columns=[
            finance.Column("name", "Name"),
            finance.Column("currency", "Currency"),
            finance.Column("amount", "Amount", finance.MONEY),
        ],  # fmt: skip
        rows=rows,
        totals=[{"name": "Total EUR", "currency": "EUR", "amount": Decimal("120.00")}],
    )
    reader, text = _pdf_text(render_pdf(table, generated_at=finance.day_start(date(2026, 4, 1))))
    pages = len(reader.pages)
    assert pages >= 2 and f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert reader.pages[0].mediabox.width < reader.pages[0].mediabox.height
    assert "Total EUR" in reader.pages[-1].extract_text()


def test_the_partner_revenue_page_exports_a_pdf(client, people):
    client.force_login(people["finance"])
    response = client.get(
        reverse("admin:partner_revenue"), {"start": "2026-01-01", "end": "2026-01-31", "export": "pdf"}
    )
    _, text = _pdf_text(response.content)
    assert "Partner revenue" in text and "Period: 1 Jan 2026 to 31 Jan 2026" in text and "Page 1 of 1" in text


def test_a_report_over_the_pdf_row_cap_offers_the_spreadsheets_instead(client, people, march, monkeypatch):
    monkeypatch.setattr("billing_project.pdf_reports.PDF_MAX_ROWS", 2)
    client.force_login(people["finance"])
    response = client.get(page("invoice-register"), {**MARCH_QUERY, "export": "pdf"})
    assert response["Content-Type"].startswith("text/html")
    assert "A PDF holds at most 2 rows" in response.context["export_error"]


# The API.


@pytest.fixture
def api(settings):
    """api(user, name, query) -> the response of GET /api/reports/<name>, checked against the OpenAPI schema."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    settings.ALLOWED_HOSTS = ["localhost"]
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

    def call(user, name: str, query: dict):
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {api_token_create(actor=None, user=user, name='test')[1]}"
        case = schema[f"/api/reports/{name}"]["GET"].Case(headers=headers, query=query)
        response = case.call()
        case.validate_response(
            response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )
        return response

    yield call
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_the_api_gives_the_tax_report_as_documented(api, people, march):
    body = api(people["finance"], "tax", MARCH_QUERY).json()
    assert body["rows"][0] == {
        "currency": "EUR",
        "rate": "0.2000",
        "exemption": "",
        "invoiced_base": "1100.00",
        "invoiced_tax": "220.00",
        "credited_base": "110.00",
        "credited_tax": "21.00",
        "base": "990.00",
        "tax": "199.00",
    }
    assert [(t["currency"], t["base"], t["tax"]) for t in body["totals"]] == [
        ("EUR", "1270.00", "204.00"),
        ("GBP", "300.00", "60.00"),
    ]
    assert body["filters"]["Period"] == "1 Mar 2026 to 31 Mar 2026"


def test_the_api_registers_come_a_page_at_a_time_with_totals_over_all(api, people, march, payments):
    body = api(people["finance"], "invoice-register", {**MARCH_QUERY, "page_size": 2, "page": 2}).json()
    assert body["count"] == 6 and [row["number"] for row in body["rows"]] == ["INV-3", "INV-5"]
    assert body["rows"][1]["due_date"] is not None
    assert body["totals"][0]["total"] == "1474.00"
    notes = api(people["finance"], "invoice-register", {**MARCH_QUERY, "status": "credit_note"}).json()
    assert [row["due_date"] for row in notes["rows"]] == [None, None]
    paid = api(people["finance"], "payments-register", MARCH_QUERY).json()
    assert [row["unallocated"] for row in paid["rows"]] == ["100.00", None, "0.00", "0.00"]
    assert paid["totals"][0]["amount"] == "690.00"


def test_the_api_aging_revenue_and_scoping(api, people, aging, customers):
    acme_only = api(people["csm"], "aged-receivables", {}).json()
    assert [row["customer"] for row in acme_only["rows"]] == ["Acme"]
    assert acme_only["rows"][0]["days_over_90"] == "191.00"
    refused = api(people["csm"], "aged-receivables", {"customer": customers["globex"].pk})
    assert refused.status_code == 400 and set(refused.json()["error"]["fields"]) == {"customer"}
    revenue = api(people["sales"], "revenue", {"start": "2026-01-01", "group": "category"})
    assert revenue.status_code == 200


@pytest.mark.parametrize(
    ("role", "name"),
    [(Role.OPERATIONS, "invoice-register"), (Role.CUSTOMER_SUCCESS, "tax"), (Role.SALES, "tax")],
)
def test_roles_without_the_permission_are_refused(api, make_user, role, name):
    assert api(make_user(role), name, {}).status_code == 403


def test_strangers_and_portal_users_are_refused(api, portal_user):
    assert api(None, "tax", {}).status_code == 401
    assert api(portal_user, "aged-receivables", {}).status_code == 403


def test_empty_query_values_mean_not_filtered(api, people, march):
    everything = api(people["finance"], "tax", MARCH_QUERY).json()
    assert api(people["finance"], "tax", {**MARCH_QUERY, "customer": "", "currency": ""}).json() == everything


def test_a_customer_in_another_currency_is_just_another_row(people, customers):
    other = CustomerFactory(name="Umbrella", currency="USD")
    make_invoice(other, "U1", issued="2026-03-02 10:00", lines=[("10.10", "0.2", None, S.MANUAL)])
    table = finance.invoice_register(people["finance"], **MARCH)
    assert [(t["currency"], t["total"]) for t in table.totals] == [("USD", Decimal("12.12"))]
