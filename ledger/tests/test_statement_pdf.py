"""The printed statement: the balance brought forward from before its days, their lines, the closing balance and
page numbers, the same file on the admin's statement page and in the customer portal."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import time_machine
from pypdf import PdfReader

from billing_project.billing_time import DayRange
from catalog.tests.factories import CustomerFactory
from ledger.models import Adjustment
from ledger.pdf import render_statement_pdf
from ledger.selectors import customer_statement_period
from ledger.services.payments import adjustment_record

pytestmark = pytest.mark.django_db


def booked(customer, amount: str, day: date, *, credit: bool = False, reason: str = "Correction"):
    direction = Adjustment.Direction.CREDIT if credit else Adjustment.Direction.DEBIT
    with time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC), tick=False):
        adjustment_record(actor=None, customer=customer, direction=direction, amount=D(amount), reason=reason)


@pytest.fixture
def history():
    customer = CustomerFactory(client_id="ACME", name="Acme Verification", currency="EUR")
    booked(customer, "1200.00", date(2026, 9, 5), reason="September usage")
    booked(customer, "200.00", date(2026, 9, 20), credit=True, reason="Goodwill")
    booked(customer, "300.00", date(2026, 10, 3), reason="October usage")
    booked(customer, "50.00", date(2026, 10, 30), credit=True, reason="Late delivery")
    booked(customer, "75.00", date(2026, 11, 2), reason="November usage")
    return customer


def pdf_text(content: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split()), reader


def test_the_period_brings_the_earlier_balance_forward_and_closes_after_its_last_line(history):
    october = customer_statement_period(history, DayRange(date(2026, 10, 1), date(2026, 10, 31)))

    assert october.brought_forward == D("1000.00")
    assert [line.description for line in october.lines] == ["Adjustment: October usage", "Adjustment: Late delivery"]
    assert october.closing_balance == D("1250.00")
    whole = customer_statement_period(history, DayRange(None, None))
    assert (whole.brought_forward, len(whole.lines), whole.closing_balance) == (D("0.00"), 5, D("1325.00"))
    quiet = customer_statement_period(history, DayRange(date(2026, 12, 1), None))
    assert (quiet.brought_forward, quiet.lines, quiet.closing_balance) == (D("1325.00"), [], D("1325.00"))


def test_the_pdf_prints_the_balances_the_lines_and_page_numbers(history):
    text, reader = pdf_text(
        render_statement_pdf(customer_statement_period(history, DayRange(date(2026, 10, 1), date(2026, 10, 31))))
    )

    assert "Statement of Acme Verification" in text
    assert "Period: 1 Oct 2026 – 31 Oct 2026" in text
    assert "Balance brought forward EUR 1,000.00" in text
    assert "October usage" in text and "Late delivery" in text and "September usage" not in text
    assert "Closing balance EUR 1,250.00" in text
    assert "Page 1 of 1" in text


def test_a_long_statement_numbers_every_page(history):
    for number in range(80):
        booked(history, "1.00", date(2026, 11, 10), reason=f"Line {number}")

    text, reader = pdf_text(render_statement_pdf(customer_statement_period(history, DayRange(None, None))))

    assert len(reader.pages) > 1
    assert all(f"Page {n} of {len(reader.pages)}" in text for n in range(1, len(reader.pages) + 1))


def test_the_admin_downloads_the_pdf_for_the_days_asked(client, finance_user, history):
    client.force_login(finance_user)
    url = f"/admin/catalog/customer/{history.pk}/statement/"

    response = client.get(url, {"export": "pdf", "start": "2026-10-01", "end": "2026-10-31"})

    assert response["Content-Type"] == "application/pdf"
    assert 'filename="statement-acme-2026-10-01-2026-10-31.pdf"' in response["Content-Disposition"]
    assert "Closing balance EUR 1,250.00" in pdf_text(response.content)[0]
    refused = client.get(url, {"export": "pdf", "start": "2026-10-31", "end": "2026-10-01"})
    assert refused.status_code == 200 and "The period ends before it starts." in refused.content.decode()
