"""The portal's statement, payments and invoices: the customer's own account only, the balance brought forward
and the closing balance on the page, in the PDF and in the CSV, and clear empty states."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from ledger.models import Adjustment
from ledger.services.invoices import invoice_create_manual, invoice_issue
from ledger.services.payments import adjustment_record, payment_record

pytestmark = pytest.mark.django_db
STATEMENT = reverse("portal:statement")
PAYMENTS = reverse("portal:payments")
INVOICES = reverse("portal:invoices")


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def issue(customer, amount: str, day: date):
    line = [{"description": "Onboarding", "quantity": Decimal(1), "unit_price": Decimal(amount)}]
    with time_machine.travel(at(day), tick=False):
        return invoice_issue(
            actor=None, invoice=invoice_create_manual(actor=None, customer=customer, lines=line), send=False
        )


def pay(customer, amount: str, day: date, reference: str):
    with time_machine.travel(at(day), tick=False):
        return payment_record(
            actor=None, customer=customer, amount=Decimal(amount), received_at=at(day), bank_reference=reference
        )


@pytest.fixture
def account():
    """Acme: invoiced 1,000.00 in September and 400.00 on 5 October, paid 1,000.00 on 20 October, credited 25.00
    on 3 November; another customer has movements of its own."""
    membership = PortalMembershipFactory(customer__client_id="ACME", customer__name="Acme", customer__currency="EUR")
    customer = membership.customer
    september = issue(customer, "1000.00", date(2026, 9, 10))
    october = issue(customer, "400.00", date(2026, 10, 5))
    pay(customer, "1000.00", date(2026, 10, 20), "BANK-ACME-1")
    with time_machine.travel(at(date(2026, 11, 3)), tick=False):
        adjustment_record(
            actor=None, customer=customer, direction=Adjustment.Direction.CREDIT, amount=Decimal(25), reason="Goodwill"
        )
    other = CustomerFactory(client_id="GLOBEX", name="Globex", currency="EUR")
    issue(other, "777.00", date(2026, 10, 7))
    pay(other, "777.00", date(2026, 10, 8), "BANK-GLOBEX-1")
    return membership, september, october


def test_the_statement_opens_on_last_month_with_the_balance_brought_forward(client, account):
    membership, september, october = account
    client.force_login(membership.user)

    with time_machine.travel(at(date(2026, 11, 20)), tick=False):
        page = client.get(STATEMENT)

    shown = page.context["statement"]
    assert (shown.days.first, shown.days.last) == (date(2026, 10, 1), date(2026, 11, 20))
    assert shown.brought_forward == Decimal("1000.00")
    adjustment = Adjustment.objects.get()  # its reference carries its id, which PostgreSQL does not reuse
    assert [line.reference for line in shown.lines] == [october.number, "BANK-ACME-1", f"ADJ-{adjustment.pk}"]
    assert shown.closing_balance == Decimal("375.00")
    content = page.content.decode()
    assert "Balance brought forward" in content and "EUR\u00a01,000.00" in content
    assert "Closing balance" in content and "EUR\u00a0375.00" in content
    assert "777.00" not in content and "GLOBEX" not in content


def test_the_statement_pdf_and_csv_print_the_days_asked(client, account):
    membership, september, october = account
    client.force_login(membership.user)
    days = {"start": "2026-10-01", "end": "2026-10-31"}

    pdf = client.get(STATEMENT, days | {"export": "pdf"})
    export = client.get(STATEMENT, days | {"export": "csv"})

    assert pdf["Content-Type"] == "application/pdf"
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Period: 1 Oct 2026 – 31 Oct 2026" in text
    assert "Balance brought forward EUR 1,000.00" in text
    assert october.number in text and "BANK-ACME-1" in text and september.number not in text
    assert "Closing balance EUR 400.00" in text and "Page 1 of 1" in text
    assert "GLOBEX" not in text and "777.00" not in text
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[1][1:] == ["Balance brought forward", "", "", "", "1000.00", "EUR"]
    assert [row[5] for row in rows[2:]] == ["1400.00", "400.00"]


def test_a_period_without_movements_and_a_wrong_one_say_so(client, account):
    membership, *_ = account
    client.force_login(membership.user)

    quiet = client.get(STATEMENT, {"start": "2026-12-01", "end": "2026-12-02"})
    wrong = client.get(STATEMENT, {"start": "2026-12-02", "end": "2026-12-01"})

    assert "No charges, payments or adjustments from 1 Dec 2026 to 2 Dec 2026" in quiet.content.decode()
    assert quiet.context["statement"].closing_balance == Decimal("375.00")
    assert "The period ends before it starts." in wrong.content.decode()
    assert client.get(STATEMENT, {"start": "2026-12-02", "end": "2026-12-01", "export": "pdf"}).status_code == 200


def test_payments_show_only_the_customers_own(client, account):
    membership, *_ = account
    client.force_login(membership.user)

    page = client.get(PAYMENTS)

    assert [payment.bank_reference for payment in page.context["page"].object_list] == ["BANK-ACME-1"]
    content = page.content.decode()
    assert "20 Oct 2026" in content and "EUR\u00a01,000.00" in content and "BANK-GLOBEX-1" not in content


def test_invoices_are_split_into_open_and_paid_with_their_pdfs(client, account):
    membership, september, october = account
    client.force_login(membership.user)

    page = client.get(INVOICES)

    assert list(page.context["open_invoices"]) == [october]
    assert list(page.context["page"].object_list) == [september]
    content = page.content.decode()
    assert reverse("portal:invoice_pdf", args=[october.pk]) in content
    assert reverse("portal:invoice_pdf", args=[september.pk]) in content
    assert "EUR\u00a0400.00</td>" in content  # still to pay on October's: the payment went to September's


def test_another_customers_invoice_pdf_is_not_found(client, account):
    membership, *_ = account
    foreign = issue(CustomerFactory(client_id="INITECH"), "50.00", date(2026, 10, 9))
    client.force_login(membership.user)

    assert client.get(reverse("portal:invoice_pdf", args=[foreign.pk])).status_code == 404


def test_empty_account_pages_say_what_is_happening(client):
    membership = PortalMembershipFactory(customer__currency="EUR")
    client.force_login(membership.user)

    assert "No payments received yet." in client.get(PAYMENTS).content.decode()
    invoices = client.get(INVOICES).content.decode()
    assert "you have no open invoices" in invoices and "No paid invoices yet." in invoices
    statement = client.get(STATEMENT).content.decode()
    assert "No charges, payments or adjustments" in statement and "EUR\u00a00.00" in statement
