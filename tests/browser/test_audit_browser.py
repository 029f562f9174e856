"""The audit log through a real browser: Finance changes a customer, then finds the change and exports it."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from catalog.services import customer_create, customer_update
from tests.browser.test_admin_browser import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_finds_a_change_in_the_audit_log_and_exports_it(page: Page, tmp_path):
    finance = UserFactory(roles=[Role.FINANCE], email="finance@example.com", full_name="Fiona Finance")
    acme = customer_create(actor=finance, name="Acme", client_id="ACME", billing_email="a@acme.example")
    customer_update(actor=finance, customer=acme, billing_email="ap@acme.example")
    admin_log_in(page, finance.email)

    page.locator("#nav-sidebar-apps").get_by_role("link", name="Audit log").click()
    page.get_by_label("Model").select_option("catalog.customer")
    page.get_by_role("button", name="Show").click()

    rows = page.locator("#audit-log tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Fiona Finance")
    expect(rows.first).to_contain_text("Acme (ACME)")
    expect(rows.first).to_contain_text("billing email")
    expect(rows.first).to_contain_text("ap@acme.example")
    page.screenshot(path=tmp_path / "audit-log.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "when,user,model,object_id,object,change,fields"
    assert len(lines) == 3
    assert "billing email: a@acme.example → ap@acme.example" in lines[1]
