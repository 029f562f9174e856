"""E-invoicing in the admin and the portal through a real browser: the customer's e-invoicing fields with the
missing one named, the seller shown read-only on a billing configuration, and an issued invoice's and credit note's
e-invoices downloaded from their pages; an invoice whose files are still being made says so on both."""

import os
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import Customer, EinvoiceDelivery
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from ledger.services.billing import billing_config_for, billing_config_update
from ledger.services.invoices import (
    credit_note_issue,
    invoice_create_manual,
    invoice_documents_store,
    invoice_issue,
    invoices_issue,
)
from ledger.tasks import invoice_documents_task
from tests.browser.test_admin_browser import admin_log_in, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def portal_invoices(browser, live_server, email: str):
    """A browser context signed in to the portal as `email`, and its page on the invoices."""
    portal = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = portal.new_page()
    page.goto("/portal/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/portal/invoices/")
    return portal, page


def test_finance_sets_a_customer_to_receive_ubl_and_is_told_what_is_missing(page: Page, tmp_path):
    UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    customer = CustomerFactory(name="Acme Payments", client_id="ACME-001", street_line1="Keizersgracht 1")
    admin_log_in(page, "finance@countinghouse.example")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 900})
    open_page(page, f"/admin/catalog/customer/{customer.pk}/change/")

    page.get_by_label("City").fill("Amsterdam")
    page.get_by_label("E-invoice delivery").select_option("ubl")
    page.get_by_label("VAT identifier").fill("NL004495445B01")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("Needed to receive e-invoices: give the country")).to_be_visible()
    page.screenshot(path=tmp_path / "customer-missing-country.png", full_page=True)
    page.get_by_label("Country").select_option("NL")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    customer = Customer.objects.get(pk=customer.pk)
    assert (customer.einvoice_delivery, customer.country.code, customer.vat_id) == ("ubl", "NL", "NL004495445B01")


def test_the_seller_is_shown_on_a_billing_configuration(page: Page, tmp_path):
    UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    config = billing_config_for(CustomerFactory(name="Acme Payments"))
    admin_log_in(page, "finance@countinghouse.example")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 900})

    open_page(page, f"/admin/ledger/billingconfig/{config.pk}/change/")

    expect(page.get_by_text("VAT identifier: GB123456782")).to_be_visible()
    expect(page.get_by_text("IBAN GB33 BUKB 2020 1555 5555 55, BIC BUKBGB22")).to_be_visible()
    page.screenshot(path=tmp_path / "billing-config-seller.png", full_page=True)


def test_an_issued_invoices_e_invoices_are_downloaded_from_the_admin_and_the_portal(
    browser, live_server, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    artifacts = Path(os.environ.get("BROWSER_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    customer = CustomerFactory(
        name="Acme Payments",
        client_id="ACME-001",
        currency="EUR",
        street_line1="Keizersgracht 1",
        city="Amsterdam",
        postal_code="1015 CJ",
        country="NL",
        billing_email="ap@acme.example",
        einvoice_delivery=EinvoiceDelivery.FACTURX,
    )
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"))
    PortalMembershipFactory(customer=customer, user=UserFactory(email="jane@acme.example", is_staff=False))
    lines = [{"description": "Onboarding", "quantity": Decimal(1), "unit_price": Decimal("1250.00")}]
    draft = invoice_create_manual(actor=None, customer=customer, lines=lines)
    invoice = invoice_issue(actor=None, invoice=draft, send=False)
    note = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=Decimal("150.00"))
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()

    admin_log_in(page, "finance@countinghouse.example")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, f"/admin/ledger/invoice/{invoice.pk}/change/")
    expect(page.get_by_role("link", name=f"{invoice.number}.xml")).to_be_visible()
    page.get_by_role("link", name=f"{invoice.number}-facturx.pdf").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "admin-invoice-einvoice.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name=f"{invoice.number}-facturx.pdf").click()
    assert download.value.suggested_filename == f"{invoice.number}-facturx.pdf"
    open_page(page, f"/admin/ledger/creditnote/{note.pk}/change/")
    with page.expect_download() as download:
        page.get_by_role("link", name=f"{note.number}.xml").click()
    assert download.value.suggested_filename == f"{note.number}.xml"
    page.screenshot(path=artifacts / "admin-credit-note-einvoice.png", full_page=True)

    portal, page = portal_invoices(browser, live_server, "jane@acme.example")
    row = page.get_by_test_id("open-invoices").locator("tbody tr")
    expect(row).to_contain_text(invoice.number)
    with page.expect_download() as download:
        row.get_by_role("link", name="Factur-X").click()
    assert download.value.suggested_filename == f"{invoice.number}-facturx.pdf"
    page.screenshot(path=artifacts / "portal-invoices-einvoice.png", full_page=True)
    context.close()
    portal.close()


def test_an_invoice_month_end_issued_says_its_pdf_is_being_made_until_its_files_are_stored(
    browser, live_server, settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path / "media"
    artifacts = Path(os.environ.get("BROWSER_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    held = []  # the task that makes the files, held back so that the pages are seen before it runs
    monkeypatch.setattr(invoice_documents_task, "delay", lambda *args: held.append(args))
    UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    customer = CustomerFactory(name="Acme Payments", client_id="ACME-001", currency="EUR", country="GB")
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"))
    PortalMembershipFactory(customer=customer, user=UserFactory(email="jane@acme.example", is_staff=False))
    lines = [{"description": "Onboarding", "quantity": Decimal(1), "unit_price": Decimal("1250.00")}]
    (invoice,) = invoices_issue(
        actor=None, invoices=[invoice_create_manual(actor=None, customer=customer, lines=lines)]
    )
    assert [ids for ids, *_ in held] == [[invoice.pk]]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    admin_log_in(page, "finance@countinghouse.example")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, f"/admin/ledger/invoice/{invoice.pk}/change/")
    expect(page.get_by_text("Being made", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / "admin-invoice-pdf-being-made.png", full_page=True)
    portal, page = portal_invoices(browser, live_server, "jane@acme.example")
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    row = page.get_by_test_id("open-invoices").locator("tbody tr")
    expect(row).to_contain_text("PDF being made")
    page.screenshot(path=artifacts / "portal-invoice-pdf-being-made.png", full_page=True)

    assert invoice_documents_store(invoice_ids=[invoice.pk], actor=None, send=False) == 1
    page.reload()
    expect(row.get_by_role("link", name="PDF")).to_be_visible()
    assert errors == []
    context.close()
    portal.close()
