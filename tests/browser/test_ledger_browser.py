"""A Finance user bills a customer's month from the admin: month-end preview and run, issue, PDF, payments (one
from the payment form, one from the invoice page)."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.formatting import day
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import Invoice, Payment
from ledger.services.billing import billing_config_update
from tests.browser.test_admin_browser import admin_log_in, choose_in_autocomplete, open_page
from usage.services import usage_import_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER = "Acme Verification GmbH (ACME)"


@pytest.fixture
def october_usage(db):
    """ACME priced 0.50 per check, tax 20%, with 100 checks in October 2026: 60.00 EUR to invoice."""
    customer = CustomerFactory(name="Acme Verification GmbH", client_id="ACME", currency="EUR")
    service = ServiceFactory(code="kyc_check", name="Identity check")
    PriceAgreementFactory(customer=customer, service=service, unit_price=Decimal("0.5"), valid_from=date(2026, 1, 1))
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"), payment_terms_days=14)
    events = [
        {"serviceName": "kyc_check", "clientId": "ACME", "quantity": "100", "serviceTime": "2026-10-05T10:00:00Z"}
    ]
    usage_import_events(actor=None, events=events, received_at=datetime(2026, 11, 1, tzinfo=UTC))
    return customer


def test_finance_bills_a_month_issues_the_invoice_and_books_its_payment(page: Page, october_usage):
    finance = UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    admin_log_in(page, finance.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Month-end: a preview that writes nothing, then the run for this one customer.
    open_page(page, "/admin/ledger/billingrun/month-end/")
    page.get_by_label("Month").fill("2026-10")
    # The customer is optional here, so its select2 box also holds a clear button: compare its title.
    page.locator("#select2-id_customer-container").click()
    page.locator(".select2-container--open").get_by_role("searchbox").fill("Acme")
    page.get_by_role("option", name=CUSTOMER).click()
    expect(page.locator("#select2-id_customer-container")).to_have_attribute("title", CUSTOMER)
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("preview-customer")
    expect(preview).to_contain_text(CUSTOMER)
    expect(preview).to_contain_text("Identity check — usage at 0.5")
    expect(preview.get_by_test_id("invoice-total")).to_have_text(re.compile(r"EUR\s60\.00"))
    assert not Invoice.objects.exists()

    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text(f"Month-end 2026-10 for {CUSTOMER} created its invoice.")).to_be_visible()
    invoice = Invoice.objects.get()
    page.get_by_role("link", name=str(invoice)).click()

    # Issue it through the confirmation dialog.
    page.get_by_role("link", name="Issue").click()
    expect(page.get_by_role("heading", name="Issue this invoice?")).to_be_visible()
    page.get_by_role("button", name="Issue").click()
    expect(page.get_by_text(re.compile(r"Invoice INV-\d{4}-\d{6} issued: EUR\s60\.00"))).to_be_visible()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED

    # Its PDF, served by the application.
    pdf_response = page.expect_response(lambda response: response.url.endswith("/pdf/"))
    with pdf_response as served, page.expect_download() as downloaded:
        page.get_by_role("link", name="Download PDF").click()
    assert served.value.headers["content-type"] == "application/pdf"
    assert downloaded.value.suggested_filename == f"{invoice.number}.pdf"
    with open(downloaded.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    # The customer pays part of it; the payment form, with the customer chosen, offers its open invoice.
    open_page(page, "/admin/ledger/payment/add/")
    choose_in_autocomplete(page, "id_customer", "Acme", CUSTOMER)
    invoice_choice = f"{invoice.number} — EUR\xa060.00 open, due {day(invoice.due_date)}"
    expect(page.locator("#id_invoice option")).to_have_text(["None: the oldest open invoices first", invoice_choice])
    page.get_by_label("Amount").fill("20.00")
    page.get_by_label("Bank reference").fill("SEPA-2026-11-28-0042")
    page.get_by_role("button", name="Book payment").click()
    expect(
        page.get_by_text(re.compile(r"Payment of EUR\s20\.00 from Acme Verification GmbH \(ACME\) booked"))
    ).to_be_visible()
    assert Payment.objects.get().bank_reference == "SEPA-2026-11-28-0042"

    # Then the rest, recorded from the invoice page: the form opens with the customer, what is owed and the invoice.
    open_page(page, f"/admin/ledger/invoice/{invoice.pk}/change/")
    page.get_by_role("link", name="Record payment").click()
    expect(page.locator("#select2-id_customer-container")).to_have_text(CUSTOMER)
    expect(page.get_by_label("Amount")).to_have_value("40.00")
    expect(page.locator("#id_invoice option:checked")).to_have_text(invoice_choice.replace("60.00", "40.00"))
    page.get_by_label("Bank reference").fill("SEPA-2026-11-30-0043")
    page.get_by_role("button", name="Book payment").click()
    expect(page.get_by_text(f"{invoice.number} is paid.")).to_be_visible()
    assert Payment.objects.get(bank_reference="SEPA-2026-11-30-0043").allocations.get().invoice == invoice

    open_page(page, f"/admin/catalog/customer/{october_usage.pk}/change/")
    expect(page.get_by_test_id("customer-balance")).to_have_text(re.compile(r"EUR\s0\.00"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
