"""One look in the ledger admin: amounts with their currency code, prices trimmed, quantities without trailing
zeros, the project's date formats, and one name per invoice (its number, or "Draft invoice for …" before)."""

import re
from datetime import date
from decimal import Decimal as D

import pytest

from ledger.models import BillingRun, Transaction
from ledger.services.invoices import invoice_create_draft, invoice_issue
from usage.models import MonthlySummary

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)
MOMENT = r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}"  # 2 Dec 2026, 14:12


@pytest.fixture
def october(priced_customer, import_usage):
    """Acme with 2,500 checks in October 2026 at 0.50: 1,250.00, tax 20 %, 1,500.00 in all."""
    customer, service = priced_customer
    import_usage(customer, service, [(2500, "2026-10-03T10:00:00Z")])
    return customer


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_a_draft_is_named_for_its_customer_and_month_and_an_issued_invoice_by_its_number(finance, october):
    draft = invoice_create_draft(actor=None, customer=october, period=OCTOBER)
    assert str(draft) == "Draft invoice for Acme, October 2026"
    assert "Draft invoice for Acme, October 2026" in page(finance, f"/admin/ledger/invoice/{draft.pk}/change/")

    issued = invoice_issue(actor=None, invoice=draft, send=False)
    assert str(issued) == issued.number
    charge = Transaction.objects.get(kind=Transaction.Kind.CHARGE)
    journal = page(finance, f"/admin/ledger/transaction/{charge.pk}/change/")
    assert "Receivable — Acme (EUR)" in journal  # the account's name, never its code
    assert f"receivable:{october.pk}" not in journal


def test_invoice_amounts_prices_and_quantities_follow_the_one_format(finance, october):
    invoice = invoice_issue(
        actor=None, invoice=invoice_create_draft(actor=None, customer=october, period=OCTOBER), send=False
    )
    listing = page(finance, "/admin/ledger/invoice/")
    assert "EUR\xa01,500.00" in listing
    assert "October 2026" in listing

    detail = page(finance, f"/admin/ledger/invoice/{invoice.pk}/change/")
    for shown in ["EUR\xa01,250.00", "EUR\xa0250.00", "EUR\xa01,500.00", "EUR\xa00.50", "2,500", "20\xa0%"]:
        assert shown in detail, shown
    assert "2500.000000" not in detail and "0.500000" not in detail and "1500.00 EUR" not in detail
    assert re.search(MOMENT, detail)  # issued at, in the project's date-time format


def test_the_journal_and_payments_show_amounts_with_their_currency(finance, october):
    invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=october, period=OCTOBER), send=False)
    assert "EUR\xa01,500.00" in page(finance, "/admin/ledger/transaction/")
    assert "EUR\xa01,500.00" in page(finance, "/admin/ledger/account/")


def test_a_month_end_run_shows_its_status_as_words_and_its_times_formatted(finance, october):
    finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "customer": october.pk, "run": ""})
    run = BillingRun.objects.get()
    listing = page(finance, "/admin/ledger/billingrun/")
    assert "October 2026" in listing

    detail = page(finance, f"/admin/ledger/billingrun/{run.pk}/change/")
    assert "Completed" in detail
    assert "(&#x27;completed&#x27;" not in detail and "('completed'" not in detail
    assert re.search(rf"Last progress.*?{MOMENT}", detail, re.S)
    assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", detail)  # no raw timestamp


def test_usage_summaries_show_money_not_twelve_decimals(finance, october):
    summary = MonthlySummary.objects.get()
    assert summary.amount == D("1250")
    listing = page(finance, "/admin/usage/monthlysummary/")
    assert "EUR\xa01,250.00" in listing and "EUR\xa00.50" in listing and "2,500" in listing
    assert "1250.000000000000" not in listing
