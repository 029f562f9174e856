"""Pricing models in a real browser at 1,280 px: Finance adds a graduated agreement with its tiers on the agreement's
page, quotes it in the price calculator, and the portal shows the tiers. No console error, nothing scrolling
sideways. Screenshots are kept in $SCREENSHOT_DIR when set (the test's temporary folder otherwise)."""

import os
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog import services as catalog_services
from catalog.models import PriceAgreement, PricingModel
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, ServiceFactory
from ledger.services.billing import billing_config_update
from tests.browser.test_admin_browser import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def choose(page: Page, select: str, value: int, label: str) -> None:
    """Pick an option of a search-as-you-type select (its options come from the admin's autocomplete)."""
    page.evaluate(
        "([select, value, label]) => { document.querySelector(select).append(new Option(label, value, true, true)); }",
        [select, str(value), label],
    )


def no_sideways_scroll(page: Page) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")


def test_finance_adds_tiers_quotes_them_and_the_portal_shows_them(page: Page, live_server, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    UserFactory(roles=[Role.FINANCE], email="finance@example.com")
    customer = CustomerFactory(name="Acme Payments", client_id="ACME-001", currency="EUR")
    service = ServiceFactory(code="api_call", name="API call", unit_label="call")
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"))
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=Decimal("500"), valid_from=date(2026, 1, 1)
    )
    admin_log_in(page, "finance@example.com")

    page.goto("/admin/catalog/priceagreement/add/")
    choose(page, "#id_customer", customer.pk, customer.name)
    choose(page, "#id_service", service.pk, service.name)
    page.locator("#id_valid_from").fill("2026-01-01")
    page.locator("#id_pricing_model").select_option("graduated")
    page.get_by_role("link", name=re.compile("^Tiers", re.I)).click()
    for index, (up_to, unit_price) in enumerate([("10000", "0.010"), ("100000", "0.008"), ("", "0.005")]):
        page.get_by_text("Add another tier").click()
        page.locator(f"#id_tiers-{index}-up_to").fill(up_to)
        page.locator(f"#id_tiers-{index}-unit_price").fill(unit_price)
    page.screenshot(path=shots / "pricing-agreement-tiers.png", full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("3 tiers, EUR\u00a00.01 to EUR\u00a00.005")
    page.screenshot(path=shots / "pricing-agreements.png", full_page=True)
    agreement = PriceAgreement.objects.get()
    assert [tier.up_to for tier in agreement.tiers.all()] == [Decimal(10_000), Decimal(100_000), None]

    page.locator("#nav-sidebar-apps").get_by_role("link", name="Price calculator").click()
    page.locator("#id_service").select_option(str(service.pk))
    choose(page, "#id_customer", customer.pk, customer.name)
    page.locator("#id_period").fill("2026-10")
    page.locator("#id_quantity").fill("150000")
    page.get_by_role("button", name="Calculate").click()
    quote = page.get_by_test_id("quote")
    expect(quote).to_contain_text("API call — 10,001 to 100,000 at 0.008")
    expect(page.get_by_test_id("invoice-total")).to_have_text("EUR\u00a01,284.00")
    expect(page.get_by_test_id("quote-commitment")).to_contain_text("EUR\u00a0500.00")
    assert no_sideways_scroll(page)
    page.screenshot(path=shots / "pricing-calculator.png", full_page=True)

    page.locator("#nav-sidebar-apps").get_by_role("link", name="Minimum commitments").click()
    expect(page.locator("#result_list")).to_contain_text("EUR\u00a0500.00")
    assert no_sideways_scroll(page)
    page.screenshot(path=shots / "pricing-commitments.png", full_page=True)
    assert errors == []

    membership = PortalMembershipFactory(customer=customer, user__email="portal@example.com")
    portal = page.context.browser.new_page(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    portal.goto("/portal/login/")
    portal.get_by_label("Email").fill(membership.user.email)
    portal.get_by_label("Password").fill(PASSWORD)
    portal.get_by_role("button", name="Sign in").click()
    expect(portal.get_by_test_id("price-terms").first).to_contain_text("10,001 – 100,000: EUR\u00a00.008")
    expect(portal.get_by_test_id("commitment")).to_contain_text("EUR\u00a0500.00 a month")
    portal.screenshot(path=shots / "pricing-portal-prices.png", full_page=True)
    portal.close()
    assert agreement.pricing_model == PricingModel.GRADUATED
