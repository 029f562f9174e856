"""Every list: search on its natural keys, the filters people reach for, CSV/XLSX of the filtered list, and the
customer list's balance and overdue columns, in a number of queries that does not grow with the rows."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from accounts.roles import Role
from billing_project.billing_time import billing_today
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory
from ledger.models import Invoice
from ledger.services.invoices import invoice_create_draft, invoice_issue
from ledger.services.receivables import invoices_mark_overdue
from usage.models import ClosedPeriod

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def billed(priced_customer, import_usage):
    """Acme billed for October (1,500.00 EUR issued) and Globex with a draft; Acme's invoice is overdue."""
    acme, service = priced_customer
    globex = CustomerFactory(client_id="GLOBEX", name="Globex", currency="EUR")
    PriceAgreementFactory(customer=globex, service=service, unit_price=D("0.5"), valid_from=date(2026, 1, 1))
    import_usage(acme, service, [(2500, "2026-10-03T10:00:00Z")])
    import_usage(globex, service, [(10, "2026-10-04T10:00:00Z")])
    issued = invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=acme, period=OCTOBER))
    Invoice.objects.filter(pk=issued.pk).update(due_date=billing_today() - timedelta(days=3))
    invoices_mark_overdue()
    invoice_create_draft(actor=None, customer=globex, period=OCTOBER)
    return acme, globex


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def xlsx_rows(response) -> list[tuple]:
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    return list(sheet.iter_rows(values_only=True))


def test_the_invoice_list_exports_what_its_filters_show(finance, billed):
    page = finance.get("/admin/ledger/invoice/?status__exact=overdue").content.decode()
    assert 'data-testid="export-links"' in page and "status__exact=overdue&amp;export=csv" in page

    rows = csv_rows(finance.get("/admin/ledger/invoice/", {"status__exact": "overdue", "export": "csv"}))
    assert rows[0][:3] == ["Invoice", "Customer", "Client id"]
    assert [(row[1], row[5], row[9]) for row in rows[1:]] == [("Acme", "Overdue", "1500.00")]

    rows = xlsx_rows(finance.get("/admin/ledger/invoice/", {"export": "xlsx"}))
    assert {row[0] for row in rows[1:]} == {
        Invoice.objects.get(customer__client_id="ACME").number,
        "Draft invoice for Globex, October 2026",
    }
    totals = [row[9] for row in rows[1:]]
    assert all(isinstance(total, int | float) for total in totals)  # numbers a spreadsheet can sum
    assert sum(D(str(total)) for total in totals) == D("1505.00")


def test_payments_journal_usage_and_summaries_export(finance, billed):
    journal = csv_rows(finance.get("/admin/ledger/transaction/", {"export": "csv"}))
    assert journal[0] == ["Date", "Kind", "Reference", "Description", "Customer", "Currency", "Amount"]
    assert [row[6] for row in journal[1:]] == ["1500.00"]
    assert csv_rows(finance.get("/admin/ledger/payment/", {"export": "csv"}))[0][0] == "Received at"

    records = xlsx_rows(finance.get("/admin/usage/usagerecord/", {"q": "GLOBEX", "export": "xlsx"}))
    assert [(row[1], row[5]) for row in records[1:]] == [("GLOBEX", 10)]
    summaries = csv_rows(finance.get("/admin/usage/monthlysummary/", {"export": "csv"}))
    assert sorted((row[1], row[8]) for row in summaries[1:]) == [
        ("ACME", "1250.000000000000"),
        ("GLOBEX", "5.000000000000"),
    ]


def test_export_needs_the_permission_to_view_the_list(client, make_user, billed):
    client.force_login(make_user(Role.OPERATIONS))
    assert client.get("/admin/ledger/invoice/", {"export": "csv"}).status_code == 403


def test_the_customer_list_shows_balance_and_overdue(finance, billed):
    page = finance.get("/admin/catalog/customer/").content.decode()
    assert "EUR\xa01,500.00 (1 invoice)" in page  # Acme's overdue invoice
    assert "EUR\xa00.00" in page  # Globex: a draft is not owed yet

    overdue_only = finance.get("/admin/catalog/customer/", {"overdue": "yes"})
    assert [customer.client_id for customer in overdue_only.context["cl"].result_list] == ["ACME"]


def test_operations_sees_customers_without_money(client, make_user, billed):
    client.force_login(make_user(Role.OPERATIONS))
    page = client.get("/admin/catalog/customer/").content.decode()
    assert "Acme" in page and "EUR\xa01,500.00" not in page


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_customer_list_costs_the_same_queries_with_more_customers(finance, billed, import_usage):
    before = count_queries(finance, "/admin/catalog/customer/")
    acme, _ = billed
    service = acme.price_agreements.get().service
    for number in range(3):
        customer = CustomerFactory(currency="EUR")
        PriceAgreementFactory(customer=customer, service=service, valid_from=date(2026, 1, 1))
        import_usage(customer, service, [(10 + number, "2026-10-05T10:00:00Z")])
        invoice = invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=customer, period=OCTOBER))
        Invoice.objects.filter(pk=invoice.pk).update(due_date=billing_today() - timedelta(days=1))
    invoices_mark_overdue()
    assert count_queries(finance, "/admin/catalog/customer/") == before


def test_usage_records_are_found_by_client_id_or_by_event_id_within_a_customer(finance, billed):
    acme, globex = billed
    found = finance.get("/admin/usage/usagerecord/", {"q": "globex"})
    assert [record.customer_id for record in found.context["cl"].result_list] == [globex.pk]

    record = found.context["cl"].result_list[0]
    type(record).objects.filter(pk=record.pk).update(event_id="evt-42")
    by_event = finance.get("/admin/usage/usagerecord/", {"q": "evt-42", "customer__id__exact": globex.pk})
    assert [r.pk for r in by_event.context["cl"].result_list] == [record.pk]
    assert not finance.get("/admin/usage/usagerecord/", {"q": "evt-42"}).context["cl"].result_list


def test_summaries_closed_periods_and_month_end_runs_are_searchable(finance, billed):
    acme, globex = billed
    summaries = finance.get("/admin/usage/monthlysummary/", {"q": "Acme"}).context["cl"].result_list
    assert {summary.customer_id for summary in summaries} == {acme.pk}

    ClosedPeriod.objects.create(customer=globex, period=OCTOBER)
    ClosedPeriod.objects.create(customer=acme, period=OCTOBER)
    closed = finance.get("/admin/usage/closedperiod/", {"q": "GLOBEX"}).context["cl"].result_list
    assert [row.customer_id for row in closed] == [globex.pk]

    finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "customer": globex.pk, "run": ""})
    assert len(finance.get("/admin/ledger/billingrun/", {"q": "2026-10"}).context["cl"].result_list) == 1
    assert len(finance.get("/admin/ledger/billingrun/", {"q": "Globex"}).context["cl"].result_list) == 1
    assert not finance.get("/admin/ledger/billingrun/", {"q": "2026-09"}).context["cl"].result_list
