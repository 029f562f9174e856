"""The customer's statement a page at a time (admin: 100 lines; API: the lists' page size), each page carrying
the balance over from the one before; exports stay whole and are streamed; an empty account says so."""

import csv
import io
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from billing_project.formatting import money
from catalog.tests.factories import CustomerFactory
from ledger.models import Adjustment
from ledger.selectors import customer_statement
from ledger.services.payments import adjustment_record
from ledger.views import STATEMENT_PAGE_SIZE

pytestmark = pytest.mark.django_db
API_PAGE_SIZE = settings.REST_FRAMEWORK["PAGE_SIZE"]


def movements(customer, n: int) -> list[D]:
    """n adjustments, debits of 1.00, 2.00 … with every third a credit; returns the balance after each."""
    balance, balances = D("0.00"), []
    for number in range(1, n + 1):
        credit = number % 3 == 0
        direction = Adjustment.Direction.CREDIT if credit else Adjustment.Direction.DEBIT
        adjustment_record(actor=None, customer=customer, direction=direction, amount=D(number), reason=f"Line {number}")
        balance += -D(number) if credit else D(number)
        balances.append(balance)
    return balances


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def long_history(db):
    """A customer with one line more than an admin page holds."""
    customer = CustomerFactory(client_id="LONG", currency="EUR")
    return customer, movements(customer, STATEMENT_PAGE_SIZE + 1)


def test_the_selector_reads_lines_lazily_and_counts_them_with_the_balance(long_history):
    customer, balances = long_history

    with CaptureQueriesContext(connection) as queries:
        statement = customer_statement(customer)
        assert (len(statement), statement.balance) == (len(balances), balances[-1])
    assert len(queries) == 1

    with CaptureQueriesContext(connection) as queries:
        latest = statement[-3:]
    assert len(queries) == 1
    assert [line.balance_after for line in latest] == balances[-3:]
    assert statement[0].balance_before == D("0.00")
    assert statement[-1].balance_before == balances[-2]
    assert [line.balance_after for line in statement] == balances  # iterating reads every line


# --- Admin -------------------------------------------------------------------------------------------------------


def test_the_admin_statement_shows_100_lines_a_page_with_the_balance_brought_forward(finance, long_history):
    customer, balances = long_history
    url = f"/admin/catalog/customer/{customer.pk}/statement/"

    first = finance.get(url)
    second = finance.get(url, {"page": 2})

    assert [line.balance_after for line in first.context["lines"]] == balances[:STATEMENT_PAGE_SIZE]
    assert (first.context["opening_balance"], first.context["closing_balance"]) == (D("0.00"), balances[99])
    assert [line.balance_after for line in second.context["lines"]] == balances[STATEMENT_PAGE_SIZE:]
    assert second.context["opening_balance"] == balances[99]  # what the first page carried forward
    page = " ".join(second.content.decode().split())
    assert "Page 2 of 2: lines 101–101 of 101" in page
    carried = money(balances[99], "EUR").replace("\u00a0", " ")  # the page's spaces were joined above
    assert "Balance brought forward</td> <td" in page and f">{carried}</td>" in page
    assert finance.get(url, {"page": "last"}).context["page"].number == 2
    assert finance.get(url, {"page": "999"}).context["page"].number == 2  # out of range: the last page


def test_a_statement_page_costs_the_same_queries_whatever_the_page(finance, long_history):
    customer, _ = long_history
    url = f"/admin/catalog/customer/{customer.pk}/statement/"

    def queries(page):
        with CaptureQueriesContext(connection) as captured:
            assert finance.get(url, {"page": page}).status_code == 200
        return len(captured)

    assert queries(1) == queries(2) <= 9


def test_the_exports_hold_every_line_and_are_streamed(finance, long_history):
    customer, balances = long_history
    url = f"/admin/catalog/customer/{customer.pk}/statement/"

    exported = finance.get(url, {"export": "csv"})
    workbook = finance.get(url, {"export": "xlsx"})

    assert exported.streaming and workbook.streaming
    rows = list(csv.reader(io.StringIO(exported.getvalue().decode())))
    assert [row[5] for row in rows[1:]] == [str(balance) for balance in balances]
    sheet = load_workbook(io.BytesIO(workbook.getvalue())).active
    assert [row[5] for row in sheet.iter_rows(min_row=2, values_only=True)] == [float(b) for b in balances]


def test_the_customer_page_shows_the_latest_lines_and_the_balance_before_them(finance, long_history):
    customer, balances = long_history

    response = finance.get(f"/admin/catalog/customer/{customer.pk}/change/")

    account = response.context["account"]
    assert [line.balance_after for line in account["lines"]] == balances[-10:]
    assert (account["earlier"], account["opening_balance"], account["balance"]) == (True, balances[-11], balances[-1])
    assert f"/admin/catalog/customer/{customer.pk}/statement/?page=last" in response.content.decode()


def test_a_customer_with_no_entries_says_so(finance):
    customer = CustomerFactory()

    statement = finance.get(f"/admin/catalog/customer/{customer.pk}/statement/").content.decode()
    customer_page = finance.get(f"/admin/catalog/customer/{customer.pk}/change/").content.decode()

    for page in (statement, customer_page):
        assert "No entries yet" in page
        assert 'data-testid="statement"' not in page
    assert "?export=csv" not in statement


# --- API ---------------------------------------------------------------------------------------------------------


def test_the_api_statement_is_paged_as_the_other_lists(finance_user, client_for):
    customer = CustomerFactory(currency="EUR")
    balances = movements(customer, 2 * API_PAGE_SIZE + 3)
    client = client_for(finance_user)
    url = f"/api/customers/{customer.pk}/statement"

    first = client.get(url).json()
    last = client.get(url, {"page": 3}).json()

    assert (first["count"], first["previous"], first["next"].endswith(f"{url}?page=2")) == (len(balances), None, True)
    assert [line["balance_after"] for line in first["lines"]] == [str(b) for b in balances[:API_PAGE_SIZE]]
    assert (first["opening_balance"], first["balance"]) == ("0.00", str(balances[-1]))
    assert [line["balance_after"] for line in last["lines"]] == [str(b) for b in balances[2 * API_PAGE_SIZE :]]
    assert last["opening_balance"] == str(balances[2 * API_PAGE_SIZE - 1])  # where page 2 left off
    assert (last["next"], last["previous"].endswith(f"{url}?page=2")) == (None, True)
    assert client.get(url, {"page": 4}).status_code == 404


def test_the_api_statement_costs_the_same_queries_on_any_page(finance_user, client_for, django_assert_num_queries):
    customer = CustomerFactory()
    movements(customer, API_PAGE_SIZE + 1)
    client = client_for(finance_user)
    url = f"/api/customers/{customer.pk}/statement"
    with CaptureQueriesContext(connection) as first:
        client.get(url)

    with django_assert_num_queries(len(first)):
        assert len(client.get(url, {"page": 2}).json()["lines"]) == 1


def test_the_api_statement_of_a_customer_with_no_entries(finance_user, client_for):
    customer = CustomerFactory(currency="GBP")

    statement = client_for(finance_user).get(f"/api/customers/{customer.pk}/statement").json()

    assert {key: statement[key] for key in ("count", "next", "previous", "opening_balance", "lines")} == {
        "count": 0,
        "next": None,
        "previous": None,
        "opening_balance": None,
        "lines": [],
    }
