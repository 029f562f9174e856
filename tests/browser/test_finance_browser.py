"""The finance report pages in a real browser at 1,280 px: each opens from the sidebar for Finance with no console
error and nothing scrolling sideways, shows its rows and totals, and hands over its PDF. Screenshots are kept in
$SCREENSHOT_DIR when set (the test's temporary folder otherwise)."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from reports.tests import test_finance_reports as figures
from tests.browser.test_admin_browser import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

today, customers, march, payments, aging = (
    figures.today,
    figures.customers,
    figures.march,
    figures.payments,
    figures.aging,
)

REPORTS = [
    ("Aged receivables", {}),
    ("Invoice register", {"start": "2026-03-01", "end": "2026-03-31"}),
    ("Payments register", {"start": "2026-03-01", "end": "2026-03-31"}),
    ("Revenue by month and service", {"start": "2026-01-01", "end": "2026-04-30"}),
    ("Tax report", {"start": "2026-03-01", "end": "2026-03-31"}),
]


@pytest.fixture
def people(make_user):
    return {
        "finance": UserFactory(roles=[Role.FINANCE], email="finance@example.com"),
        "csm": make_user(Role.CUSTOMER_SUCCESS),
    }


def test_finance_opens_each_report_from_the_sidebar(page: Page, people, march, payments, aging, tmp_path):
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_log_in(page, "finance@example.com")
    for title, dates in REPORTS:
        page.locator("#nav-sidebar-apps").get_by_role("link", name=title).click()
        if dates:
            page.get_by_label("Period").select_option("custom")
            page.get_by_label("From", exact=True).fill(dates["start"])
            page.get_by_label("To", exact=True).fill(dates["end"])
            page.get_by_role("button", name="Show").click()
        expect(page.locator("#content-main h1")).to_have_text(title)
        expect(page.locator("#finance-report tr.total").first).to_contain_text("Total EUR")
        # Measured once the page has loaded (its scripts restyle the filters): under load they may not have yet.
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"), title
        page.screenshot(path=shots / f"finance-{title.lower().replace(' ', '-')}.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_role("link", name="Export PDF").click()
        assert download.value.suggested_filename.endswith(".pdf")
    assert errors == []


def test_a_csm_finds_only_their_customers_in_the_customer_filter(page: Page, people, customers, march):
    """The customer filter searches as one types (the admin's autocomplete), among the CSM's customers only; the
    report then holds that customer's rows."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_log_in(page, people["csm"].email)
    page.locator("#nav-sidebar-apps").get_by_role("link", name="Invoice register").click()
    page.locator("#report-filters .select2-selection").click()
    options = page.locator(".select2-results__option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Acme")
    page.locator(".select2-search__field").fill("glob")
    expect(options).to_have_text(["No results found"])
    page.locator(".select2-search__field").fill("acm")
    options.filter(has_text="Acme").click()
    page.get_by_label("Period").select_option("custom")
    page.get_by_label("From", exact=True).fill("2026-03-01")
    page.get_by_label("To", exact=True).fill("2026-03-31")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#report-filter-summary")).to_contain_text("Customer: Acme")
    expect(page.locator("#finance-report tbody tr").first).to_contain_text("Acme")
    assert errors == []
