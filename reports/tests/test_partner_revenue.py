"""The partner revenue report (reports.revenue): its figures worked out by hand, its admin page with the CSV and
XLSX exports, and GET /api/reports/partner-revenue; who may see it.

January 2026, in the billing time zone. Acme pays in EUR, Globex in GBP; partners Alpha and Beta.
"""

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

from accounts.roles import Role
from accounts.services import api_token_create
from billing_project.wsgi import application
from catalog.tests.factories import CustomerFactory, PartnerFactory
from orders.models import Order, Settlement
from reports.revenue import NO_PARTNER, partner_revenue
from reports.tests.order_data import make_expense, make_order, make_settlement

pytestmark = pytest.mark.django_db

S = Order.Status
SETTLED = Settlement.Status
JANUARY = {"start": date(2026, 1, 1), "end": date(2026, 1, 31)}
PAGE = reverse("admin:partner_revenue")
API = "/api/reports/partner-revenue"
JANUARY_QUERY = {"start": "2026-01-01", "end": "2026-01-31"}


@pytest.fixture
def people(make_user):
    return {
        "admin": make_user(Role.ADMIN),
        "finance": make_user(Role.FINANCE),
        "sales": make_user(Role.SALES),
        "operations": make_user(Role.OPERATIONS),
        "csm": make_user(Role.CUSTOMER_SUCCESS),
    }


@pytest.fixture
def data(people):
    user = people["finance"]
    acme = CustomerFactory(name="Acme", currency="EUR", csm=people["csm"])
    globex = CustomerFactory(name="Globex", currency="GBP")
    alpha = PartnerFactory(name="Alpha Partners")
    beta = PartnerFactory(name="Beta Ltd")

    # Alpha, EUR: completed in January; expenses 120 + 30, and 50 reversed; settlement 291.00 approved, then a
    # correction of -10.00 calculated, and a void one of 500.00 that does not count.
    a1 = make_order(
        acme, fee="1000.00", base_charge="120.00", partner=alpha, status=S.COMPLETED, ended="2026-01-10 12:00"
    )
    make_expense(a1, "120.00", user=user)
    make_expense(a1, "30.00", user=user)
    make_expense(a1, "-50.00", user=user, reverses=make_expense(a1, "50.00", user=user))
    make_settlement(a1, "291.00", status=SETTLED.APPROVED, sequence=1)
    make_settlement(a1, "500.00", status=SETTLED.VOID, sequence=2)
    make_settlement(a1, "-10.00", status=SETTLED.CALCULATED, sequence=3)
    # Alpha, EUR: failed in January; expense 40; settlement 100.00 paid.
    a2 = make_order(acme, fee="500.00", partner=alpha, status=S.FAILED, ended="2026-01-20 08:00")
    make_expense(a2, "40.00", user=user)
    make_settlement(a2, "100.00", status=SETTLED.PAID, user=user)
    # Alpha, EUR: completed on the first moment of February, cancelled, or still open: not counted.
    a3 = make_order(acme, fee="999.00", partner=alpha, status=S.COMPLETED, ended="2026-02-01 00:00")
    make_expense(a3, "999.00", user=user)
    make_settlement(a3, "99.00", status=SETTLED.APPROVED)
    make_order(acme, fee="777.00", partner=alpha, status=S.CANCELLED, ended="2026-01-10 00:00")
    make_order(acme, fee="888.00", partner=alpha, status=S.IN_PROGRESS)
    # Beta, EUR: completed in the period's last second; its only settlement is void.
    a4 = make_order(
        acme, fee="200.00", base_charge="20.00", partner=beta, status=S.COMPLETED, ended="2026-01-31 23:59:59"
    )
    make_settlement(a4, "60.00", status=SETTLED.VOID)
    # No partner, EUR.
    a5 = make_order(acme, fee="300.00", base_charge="10.00", status=S.COMPLETED, ended="2026-01-05 00:00")
    make_expense(a5, "5.00", user=user)
    # Alpha, GBP.
    g1 = make_order(globex, fee="800.00", partner=alpha, status=S.COMPLETED, ended="2026-01-15 00:00")
    make_expense(g1, "100.00", user=user)
    make_settlement(g1, "210.00", status=SETTLED.APPROVED)
    return {"alpha": alpha, "beta": beta}


def figures(row) -> tuple:
    return (
        row.partner_name,
        row.currency,
        row.orders_completed,
        row.orders_failed,
        row.fees,
        row.base_charges,
        row.expenses,
        row.partner_share,
        row.kept_by_us,
    )


def D(text: str) -> Decimal:
    return Decimal(text)


EUR_ALPHA = ("Alpha Partners", "EUR", 1, 1, D("1500.00"), D("120.00"), D("190.00"), D("381.00"), D("1049.00"))
EUR_BETA = ("Beta Ltd", "EUR", 1, 0, D("200.00"), D("20.00"), D("0.00"), D("0.00"), D("220.00"))
EUR_NONE = ("No partner", "EUR", 1, 0, D("300.00"), D("10.00"), D("5.00"), D("0.00"), D("305.00"))
EUR_TOTAL = ("Total", "EUR", 3, 1, D("2000.00"), D("150.00"), D("195.00"), D("381.00"), D("1574.00"))
GBP_ALPHA = ("Alpha Partners", "GBP", 1, 0, D("800.00"), D("0.00"), D("100.00"), D("210.00"), D("490.00"))
GBP_TOTAL = ("Total", "GBP", 1, 0, D("800.00"), D("0.00"), D("100.00"), D("210.00"), D("490.00"))


# The figures.


def test_the_report_counts_orders_ended_in_the_period_by_partner_and_currency(people, data):
    report = partner_revenue(people["finance"], **JANUARY)

    # Expenses: reversals included (120 + 30 + 50 − 50 + 40); shares: live settlements only (291 − 10 + 100).
    assert [figures(row) for row in report.rows] == [EUR_ALPHA, EUR_BETA, EUR_NONE, GBP_ALPHA]
    assert [figures(row) for row in report.totals] == [EUR_TOTAL, GBP_TOTAL]
    assert [figures(row) for row in report.rows_with_totals()] == [
        EUR_ALPHA, EUR_BETA, EUR_NONE, EUR_TOTAL, GBP_ALPHA, GBP_TOTAL,
    ]  # fmt: skip


def test_the_order_completed_on_the_first_moment_after_the_period_counts_in_the_next(people, data):
    report = partner_revenue(people["finance"], start=date(2026, 2, 1), end=date(2026, 2, 28))

    assert [figures(row) for row in report.rows] == [
        ("Alpha Partners", "EUR", 1, 0, D("999.00"), D("0.00"), D("999.00"), D("99.00"), D("-99.00"))
    ]


def test_filters_by_partner_by_no_partner_and_by_currency(people, data):
    finance = people["finance"]

    assert [figures(r) for r in partner_revenue(finance, **JANUARY, partner=data["beta"]).rows] == [EUR_BETA]
    assert [figures(r) for r in partner_revenue(finance, **JANUARY, partner=NO_PARTNER).rows] == [EUR_NONE]
    assert [figures(r) for r in partner_revenue(finance, **JANUARY, currency="GBP").rows] == [GBP_ALPHA]
    assert partner_revenue(finance, **JANUARY, currency="USD").is_empty


def test_the_report_counts_only_the_orders_the_user_sees(people, data):
    # A CSM is not given the report, but its read is scoped like every order read: their customer's orders only.
    report = partner_revenue(people["csm"], **JANUARY)

    assert [figures(row) for row in report.rows] == [EUR_ALPHA, EUR_BETA, EUR_NONE]


def test_the_report_takes_a_constant_number_of_statements(people, data, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # the user's roles, orders, expenses, settlements, partner names
        partner_revenue(people["finance"], **JANUARY)


# The admin page.


@pytest.mark.parametrize(
    ("role", "status"),
    [("admin", 200), ("finance", 200), ("sales", 200), ("operations", 403), ("csm", 403)],
)
def test_the_page_opens_for_admin_finance_and_sales_only(client, people, role, status):
    client.force_login(people[role])

    assert client.get(PAGE).status_code == status
    assert client.get(PAGE, {**JANUARY_QUERY, "export": "csv"}).status_code == status


def test_the_page_shows_rows_with_money_in_its_currency_and_totals(client, people, data):
    client.force_login(people["sales"])

    response = client.get(PAGE, {"period": "custom", **JANUARY_QUERY})

    page = response.content.decode()
    assert response.status_code == 200
    assert "From 1 Jan 2026 to 31 Jan 2026" in page
    assert "EUR\u00a01,500.00" in page and "EUR\u00a01,049.00" in page and "EUR\u00a01,574.00" in page
    assert "Total GBP" in page and "GBP\u00a0490.00" in page
    assert "Export CSV" in page


def test_an_empty_period_says_what_to_do(client, people, data):
    client.force_login(people["finance"])

    page = client.get(PAGE, {"start": "2025-06-01", "end": "2025-06-30"}).content.decode()

    assert 'id="report-empty"' in page
    assert "choose a longer period" in page
    assert "Export CSV" not in page


def test_a_period_that_ends_before_it_starts_is_refused_on_the_page(client, people):
    client.force_login(people["finance"])

    page = client.get(PAGE, {"start": "2026-02-01", "end": "2026-01-01"}).content.decode()

    assert 'id="filter-errors"' in page and "The period ends before it starts." in page


def test_a_preset_period_needs_no_dates(client, people, data, monkeypatch):
    monkeypatch.setattr("reports.revenue_views.billing_today", lambda: date(2026, 2, 14))
    client.force_login(people["finance"])

    response = client.get(PAGE, {"period": "last_month"})

    assert response.context["report"].start == date(2026, 1, 1)
    assert response.context["report"].end == date(2026, 1, 31)
    assert [figures(row) for row in response.context["report"].totals] == [EUR_TOTAL, GBP_TOTAL]


def test_the_csv_export_holds_the_rows_and_totals_with_formulas_neutralised(client, people, data):
    data["beta"].name = "=HYPERLINK(1)"
    data["beta"].save()
    client.force_login(people["finance"])

    response = client.get(PAGE, {**JANUARY_QUERY, "export": "csv"})

    assert response["Content-Disposition"] == 'attachment; filename="partner-revenue-2026-01-01-to-2026-01-31.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "partner", "currency", "orders_completed", "orders_failed", "fees", "base_charges", "expenses",
        "partner_share", "kept_by_us",
    ]  # fmt: skip
    assert rows[1:] == [
        ["'=HYPERLINK(1)", "EUR", "1", "0", "200.00", "20.00", "0.00", "0.00", "220.00"],  # sorts before "A"
        ["Alpha Partners", "EUR", "1", "1", "1500.00", "120.00", "190.00", "381.00", "1049.00"],
        ["No partner", "EUR", "1", "0", "300.00", "10.00", "5.00", "0.00", "305.00"],
        ["Total", "EUR", "3", "1", "2000.00", "150.00", "195.00", "381.00", "1574.00"],
        ["Alpha Partners", "GBP", "1", "0", "800.00", "0.00", "100.00", "210.00", "490.00"],
        ["Total", "GBP", "1", "0", "800.00", "0.00", "100.00", "210.00", "490.00"],
    ]


def test_the_xlsx_export_holds_numbers_a_spreadsheet_can_sum(client, people, data):
    client.force_login(people["finance"])

    response = client.get(PAGE, {**JANUARY_QUERY, "currency": "EUR", "export": "xlsx"})

    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Partner revenue"]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "partner"
    assert rows[1] == ["Alpha Partners", "EUR", 1, 1, 1500, 120, 190, 381, 1049]
    assert rows[-1] == ["Total", "EUR", 3, 1, 2000, 150, 195, 381, 1574]
    assert len(rows) == 5


# The API.


@pytest.fixture
def api(settings, people):
    """api(user, query) -> the response of GET /api/reports/partner-revenue, checked against the OpenAPI schema."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    settings.ALLOWED_HOSTS = ["localhost"]
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

    def call(user, query: dict):
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {api_token_create(actor=None, user=user, name='test')[1]}"
        case = schema[API]["GET"].Case(headers=headers, query=query)
        response = case.call()
        case.validate_response(
            response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )
        return response

    yield call
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_the_api_gives_the_report_as_documented(api, people, data):
    body = api(people["finance"], JANUARY_QUERY).json()

    assert body["start"] == "2026-01-01" and body["end"] == "2026-01-31"
    assert body["rows"][0] == {
        "partner": {"id": data["alpha"].pk, "name": "Alpha Partners"},
        "currency": "EUR",
        "orders_completed": 1,
        "orders_failed": 1,
        "fees": "1500.00",
        "base_charges": "120.00",
        "expenses": "190.00",
        "partner_share": "381.00",
        "kept_by_us": "1049.00",
    }
    assert [row["partner"] and row["partner"]["name"] for row in body["rows"]] == [
        "Alpha Partners", "Beta Ltd", None, "Alpha Partners",
    ]  # fmt: skip
    assert [(t["currency"], t["kept_by_us"]) for t in body["totals"]] == [("EUR", "1574.00"), ("GBP", "490.00")]


def test_the_api_period_is_this_month_to_today_by_default(api, people, data, monkeypatch):
    monkeypatch.setattr("reports.api.billing_today", lambda: date(2026, 1, 20))

    body = api(people["finance"], {}).json()

    assert (body["start"], body["end"]) == ("2026-01-01", "2026-01-20")
    assert [(t["currency"], t["orders_completed"], t["orders_failed"]) for t in body["totals"]] == [
        ("EUR", 2, 1),  # a1 and a5 completed, a2 failed, by the 20th; a4 on the 31st
        ("GBP", 1, 0),
    ]


def test_the_api_filters_by_partner_and_currency(api, people, data):
    only_beta = api(people["sales"], {**JANUARY_QUERY, "partner": str(data["beta"].pk)}).json()
    no_partner = api(people["sales"], {**JANUARY_QUERY, "partner": "none", "currency": "EUR"}).json()

    assert [row["partner"]["name"] for row in only_beta["rows"]] == ["Beta Ltd"]
    assert [(row["partner"], row["fees"]) for row in no_partner["rows"]] == [(None, "300.00")]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "2026-13-01", "end": "2026-01-31"}, "start"),
        ({"end": "2100-12-31", "start": "2101-01-01"}, "start"),
        ({**JANUARY_QUERY, "partner": "999999"}, "partner"),
        ({**JANUARY_QUERY, "partner": "x"}, "partner"),
        ({**JANUARY_QUERY, "currency": "XXX"}, "currency"),
    ],
)
def test_bad_queries_answer_400_naming_the_parameter(api, people, query, field):
    response = api(people["finance"], query)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize(("role", "status"), [("operations", 403), ("csm", 403), (None, 401)])
def test_operations_customer_success_and_strangers_are_refused(api, people, role, status):
    response = api(people[role] if role else None, JANUARY_QUERY)

    assert response.status_code == status


def test_portal_users_are_refused(api, portal_user):
    response = api(portal_user, JANUARY_QUERY)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
