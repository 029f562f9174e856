"""The back-office dashboard (/admin/): cards, charts and activity per role, scoped like the lists they link to."""

import json
from datetime import date, timedelta

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from approvals.models import ApprovalRequest
from catalog.models import Service
from catalog.services import customer_deputy_add
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice
from orders.models import Order
from reports.tests.dashboard_data import NOW, TODAY, at, balance, credit_note, invoice, payment, usage
from reports.tests.order_data import make_order

pytestmark = pytest.mark.django_db

DECEMBER, NOVEMBER = date(2026, 12, 1), date(2026, 11, 1)
LEDGER_CARDS = {"invoiced-this-month", "invoiced-last-month", "collected-this-month", "overdue", "drafts-waiting"}
BALANCE_CARDS = {"receivables", "dso", "credit-held"}
ORDER_CARDS = {"orders-open", "orders-overdue", "completion-time"}
ORDER_MONEY_CARDS = {"realised-order-revenue", "unrealised-order-revenue", "average-order-value"}
CARDS_OF = {
    Role.ADMIN: LEDGER_CARDS | BALANCE_CARDS | {"awaiting-my-approval", "usage-this-month"} | ORDER_CARDS
    | ORDER_MONEY_CARDS,
    Role.FINANCE: LEDGER_CARDS | BALANCE_CARDS | {"awaiting-my-approval", "usage-this-month"} | ORDER_CARDS
    | ORDER_MONEY_CARDS,
    # Customer Success and Sales open invoices and payments, not the ledger's accounts.
    Role.CUSTOMER_SUCCESS: LEDGER_CARDS | {"awaiting-my-approval", "usage-this-month"} | ORDER_CARDS,
    Role.SALES: LEDGER_CARDS | {"awaiting-my-approval", "usage-this-month"} | ORDER_CARDS | ORDER_MONEY_CARDS,
    Role.OPERATIONS: ORDER_CARDS,
}  # fmt: skip
ALL_CHARTS = ["invoiced-collected", "aging", "usage-by-category", "orders-by-status", "top-customers"]
CHARTS_OF = {
    Role.ADMIN: ALL_CHARTS,
    Role.FINANCE: ALL_CHARTS,
    Role.CUSTOMER_SUCCESS: ALL_CHARTS,
    Role.SALES: ALL_CHARTS,
    Role.OPERATIONS: ["orders-by-status"],
}


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=False):
        yield TODAY


def open_dashboard(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response


def cards(response) -> dict[str, list[str]]:
    board = response.context["dashboard"]
    return {card.key: card.figures for card in [*board.money_cards, *board.order_cards]}


def card(response, key: str):
    board = response.context["dashboard"]
    return next(card for card in [*board.money_cards, *board.order_cards] if card.key == key)


def charts(response) -> dict[str, dict]:
    """{chart key: its Chart.js data} of every chart drawn."""
    return {
        chart.key: json.loads(chart.data) for group in response.context["dashboard"].charts for chart in group.charts
    }


@pytest.fixture
def book(make_user):
    """Two EUR customers of a CSM (one as deputy), one EUR and one USD customer of nobody, with a little of
    everything the dashboard sums."""
    csm = make_user(Role.CUSTOMER_SUCCESS, full_name="Casey Success")
    mine = CustomerFactory(name="Acme Payments", csm=csm)
    deputised = CustomerFactory(name="Initech Checks")
    customer_deputy_add(actor=None, customer=deputised, user=csm)
    other = CustomerFactory(name="Umbrella Verify")
    dollars = CustomerFactory(name="Globex Screening", currency="USD")
    kyc = ServiceFactory(category=Service.Category.KYC)

    invoice(mine, "1210.00", subtotal="1000.00", issued=at(date(2026, 12, 2)), due=TODAY - timedelta(days=1))
    invoice(deputised, "121.00", subtotal="100.00", issued=at(date(2026, 11, 5)), due=TODAY - timedelta(days=40),
            status=Invoice.Status.OVERDUE, period=date(2026, 10, 1))  # fmt: skip
    invoice(other, "2420.00", subtotal="2000.00", issued=at(date(2026, 12, 3)), due=TODAY + timedelta(days=10))
    invoice(dollars, "99.99", issued=at(date(2026, 12, 4)), due=TODAY - timedelta(days=95))
    invoice(mine, "50.00")  # a draft
    invoice(other, "70.00", status=Invoice.Status.APPROVED)
    payment(mine, "100.00", received=at(date(2026, 12, 5)))
    payment(other, "2420.00", received=at(date(2026, 12, 6)))
    balance(mine, "1110.00")
    balance(deputised, "121.00")
    balance(other, "-30.00")
    balance(dollars, "99.99")
    usage(mine, kyc, "12.50", period=DECEMBER)
    usage(other, kyc, "7.25", period=DECEMBER)
    make_order(mine, fee="300.00", created="2026-12-01 09:00", status=Order.Status.COMPLETED, ended="2026-12-11 09:00")
    make_order(other, fee="800.00", created="2026-12-02 09:00")
    return {"csm": csm, "mine": mine, "deputised": deputised, "other": other}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_the_cards_and_charts_of_the_lists_it_may_open(client, make_user, role):
    response = open_dashboard(client, make_user(role))

    assert set(cards(response)) == CARDS_OF[role]
    assert [group.key for group in response.context["dashboard"].charts] == CHARTS_OF[role]
    html = response.content.decode()
    for key in CARDS_OF[role]:
        assert f'data-kpi="{key}"' in html


@pytest.mark.parametrize("role", list(Role))
def test_every_card_opens_its_list(client, make_user, role, book):
    response = open_dashboard(client, make_user(role))

    for item in [*response.context["dashboard"].money_cards, *response.context["dashboard"].order_cards]:
        opened = client.get(item.url)
        assert opened.status_code == 200, item.url
        assert "cl" in opened.context, item.url  # the list itself, not its error page


def test_finance_figures_per_currency(client, finance_user, book):
    response = open_dashboard(client, finance_user)

    figures = cards(response)
    assert figures["invoiced-this-month"] == ["EUR\xa03,630.00", "USD\xa099.99"]  # 1,210.00 + 2,420.00
    assert figures["invoiced-last-month"] == ["EUR\xa0121.00"]
    assert figures["collected-this-month"] == ["EUR\xa02,520.00"]
    assert figures["receivables"] == ["EUR\xa01,231.00", "USD\xa099.99"]
    assert figures["credit-held"] == ["EUR\xa030.00"]
    # 1,231.00 ÷ (1,210.00 + 121.00 + 2,420.00) × 90 = 29.54 days; 99.99 ÷ 99.99 × 90 = 90.
    assert figures["dso"] == ["EUR 30 days", "USD 90 days"]
    assert figures["overdue"] == ["EUR\xa01,331.00 · 2 invoices", "USD\xa099.99 · 1 invoice"]
    assert figures["drafts-waiting"] == ["2 invoices", "EUR\xa0120.00"]
    assert figures["usage-this-month"] == ["EUR\xa019.75"]
    assert figures["orders-open"] == ["1 order"]
    assert figures["realised-order-revenue"] == ["EUR\xa0300.00"]
    assert figures["unrealised-order-revenue"] == ["EUR\xa0800.00"]
    assert figures["average-order-value"] == ["EUR\xa0550.00"]
    assert figures["completion-time"] == ["Median 10.0 days", "90th percentile 10.0 days"]
    html = response.content.decode()
    assert "EUR\xa03,630.00" in html and "USD\xa099.99 · 1 invoice" in html


def test_csm_dashboard_shows_only_their_customers(client, book):
    response = open_dashboard(client, book["csm"])

    figures = cards(response)
    assert figures["invoiced-this-month"] == ["EUR\xa01,210.00"]
    assert figures["invoiced-last-month"] == ["EUR\xa0121.00"]
    assert figures["collected-this-month"] == ["EUR\xa0100.00"]
    assert figures["overdue"] == ["EUR\xa01,331.00 · 2 invoices"]
    assert figures["drafts-waiting"] == ["1 invoice", "EUR\xa050.00"]
    assert figures["usage-this-month"] == ["EUR\xa012.50"]
    assert figures["orders-open"] == []
    drawn = charts(response)
    assert set(drawn) == {"invoiced-collected-EUR", "aging-EUR", "usage-EUR", "orders-by-status", "top-customers-EUR"}
    assert drawn["top-customers-EUR"]["labels"] == ["Acme Payments", "Initech Checks"]
    html = response.content.decode()
    assert "Umbrella" not in html and "Globex" not in html and "USD" not in html


def test_operations_sees_no_money(client, make_user, book):
    response = open_dashboard(client, make_user(Role.OPERATIONS))

    assert set(cards(response)) == ORDER_CARDS
    assert set(charts(response)) == {"orders-by-status"}
    html = response.content.decode()
    assert "EUR" not in html and "USD" not in html
    assert response.context["dashboard"].activity == []  # no order completed with a status change


def test_cards_count_what_their_lists_show(client, finance_user, book):
    response = open_dashboard(client, finance_user)

    overdue = client.get(card(response, "overdue").url).context["cl"]
    waiting = client.get(card(response, "drafts-waiting").url).context["cl"]
    open_orders = client.get(card(response, "orders-open").url).context["cl"]

    assert overdue.result_count == 3  # 2 in EUR, 1 in USD
    assert waiting.result_count == 2
    assert open_orders.result_count == 1
    issued = client.get(card(response, "invoiced-this-month").url).context["cl"]
    assert {row.number for row in issued.result_list} == set(
        Invoice.objects.filter(issued_at__gte=at(DECEMBER, 0)).values_list("number", flat=True)
    )


def test_awaiting_my_approval_counts_the_requests_i_may_decide(client, book, make_user):
    csm = book["csm"]
    step = {"name": "csm", "label": "The CSM", "users": [csm.pk], "groups": []}
    invoice_type = ContentType.objects.get_for_model(Invoice)
    for customer in (book["mine"], book["other"]):
        bill = invoice(customer, "10.00", status=Invoice.Status.PENDING_APPROVAL)
        ApprovalRequest.objects.create(
            target_type=invoice_type,
            target_id=bill.pk,
            summary=f"Bill for {customer.name}",
            rule={"name": "csm", "label": "CSM", "steps": [step]},
            scope=customer.client_id,
        )

    assert cards(open_dashboard(client, csm))["awaiting-my-approval"] == ["1 request"]
    assert cards(open_dashboard(client, make_user(Role.SALES)))["awaiting-my-approval"] == []


def test_charts_carry_the_figures_per_currency(client, finance_user, book):
    drawn = charts(open_dashboard(client, finance_user))

    flow = drawn["invoiced-collected-EUR"]
    assert len(flow["labels"]) == 12 and flow["labels"][-1] == "Dec 2026" and flow["labels"][0] == "Jan 2026"
    assert flow["datasets"][0]["data"][-2:] == [121.0, 3630.0]
    assert flow["datasets"][1]["data"][-1] == 2520.0
    assert drawn["aging-EUR"]["labels"] == ["Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]
    assert drawn["aging-EUR"]["datasets"][0]["data"] == [2420.0, 1210.0, 121.0, 0.0, 0.0]
    assert drawn["aging-USD"]["datasets"][0]["data"] == [0.0, 0.0, 0.0, 0.0, 99.99]
    assert drawn["usage-EUR"]["datasets"] == [
        {"label": "KYC", "data": [0.0] * 11 + [19.75], "backgroundColor": "#6366f1"}
    ]
    by_status = drawn["orders-by-status"]
    assert dict(zip(by_status["labels"], by_status["datasets"][0]["data"], strict=True)) == {
        "Started": 1,
        "Documents pending": 0,
        "In progress": 0,
        "Completed": 1,
        "Failed": 0,
        "Cancelled": 0,
    }
    top = drawn["top-customers-EUR"]
    assert top["labels"] == ["Umbrella Verify", "Acme Payments", "Initech Checks"]
    assert top["datasets"][0]["data"] == [2000.0, 1000.0, 100.0]
    assert drawn["top-customers-USD"]["labels"] == ["Globex Screening"]


def test_credit_notes_show_in_the_month_they_are_issued(client, finance_user, book):
    credit_note(Invoice.objects.get(customer=book["other"], number__isnull=False), "420.00", issued=at(TODAY))

    assert cards(open_dashboard(client, finance_user))["invoiced-this-month"] == ["EUR\xa03,210.00", "USD\xa099.99"]


def test_empty_dashboard_says_what_to_do(client, finance_user):
    response = open_dashboard(client, finance_user)

    board = response.context["dashboard"]
    assert all(not group.charts for group in board.charts)
    html = response.content.decode()
    for group in board.charts:
        assert group.empty in html
    assert "run month-end from Billing runs" in html
    assert "Usage arrives by upload" in html
    assert "Nothing issued yet this month" in html
    assert "Invoices issued, payments recorded, bills approved or rejected and orders completed" in html
    assert 'class="chart"' not in html


def test_staff_without_a_role_is_told_why_there_is_nothing(client, make_user):
    CustomerFactory()
    response = open_dashboard(client, make_user())

    assert cards(response) == {}
    assert 'id="dashboard-empty"' in response.content.decode()


def test_charts_are_drawn_without_inline_script(client, finance_user, book):
    html = open_dashboard(client, finance_user).content.decode()

    assert 'class="chart" data-type="bar"' in html
    assert "<script>" not in html.split('id="dashboard"')[1]


def grow(book, size: int) -> None:
    """`size` more of everything the dashboard reads, for the CSM's customers and the others."""
    for n in range(size):
        aml = ServiceFactory(category=Service.Category.AML)
        for customer in (book["mine"], CustomerFactory(name=f"More {size}-{n}")):
            issued = invoice(customer, "10.00", issued=at(date(2026, 12, 1)), due=TODAY - timedelta(days=n))
            credit_note(issued, "1.00", issued=at(TODAY))
            invoice(customer, "5.00")
            payment(customer, "3.00", received=at(TODAY))
            usage(customer, aml, "1.00", period=DECEMBER)
            make_order(customer, status=Order.Status.COMPLETED, created="2026-12-01 09:00", ended="2026-12-02 09:00")


def queries_for(client, user) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("admin:index")).status_code == 200
    return len(captured)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.CUSTOMER_SUCCESS])
def test_query_count_does_not_grow_with_the_data(client, make_user, book, role, django_assert_max_num_queries):
    user = book["csm"] if role == Role.CUSTOMER_SUCCESS else make_user(role)
    grow(book, 2)
    small = queries_for(client, user)
    grow(book, 12)

    with django_assert_max_num_queries(small):
        assert client.get(reverse("admin:index")).status_code == 200
    assert small <= 40


def test_a_card_with_tens_of_millions_shows_its_figures_in_the_smaller_type(finance_user, client):
    big = CustomerFactory(currency="EUR")
    invoice(big, "52463290.51", issued=at(TODAY))
    small = CustomerFactory(currency="USD")
    invoice(small, "895.00", issued=at(TODAY))
    client.force_login(finance_user)

    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("admin:index")).content.decode()

    invoiced = page[page.index('data-kpi="invoiced-this-month"') :]
    invoiced = invoiced[: invoiced.index("</a>")]
    assert invoiced.count("dashboard-figure dashboard-figure-long") == 2  # both currencies, alike
    assert "EUR\xa052,463,290.51" in invoiced
    drafts = page[page.index('data-kpi="drafts-waiting"') :]
    assert "dashboard-figure-long" not in drafts[: drafts.index("</a>")]
