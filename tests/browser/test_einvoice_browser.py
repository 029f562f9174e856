"""E-invoicing data in the admin through a real browser: the customer's e-invoicing fields with the missing one
named, and the seller shown read-only on a billing configuration."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory
from ledger.services.billing import billing_config_for
from tests.browser.test_admin_browser import admin_log_in, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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
