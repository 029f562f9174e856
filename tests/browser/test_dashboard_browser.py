"""The dashboard in a real browser, for each role: no console error, charts drawn, nothing scrolling sideways at
1,280 px; a screenshot per role in playwright-artifacts/dashboard-<role>.png."""

from datetime import timedelta

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.billing_time import billing_today
from catalog.models import Service
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice
from orders.models import Order
from reports.kpis import add_months, month_start
from reports.tests.dashboard_data import at, balance, invoice, payment, usage
from reports.tests.order_data import make_order
from tests.browser.test_admin_browser import admin_log_in
from tests.browser.test_content_security_policy import watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = settings.BASE_DIR / "playwright-artifacts"
MAIN_SCROLLS_SIDEWAYS = """() => {
  const main = document.querySelector("#main");
  return main.scrollWidth > main.clientWidth || document.documentElement.scrollWidth > window.innerWidth;
}"""
CHARTS_DRAWN = """() => [...document.querySelectorAll("canvas.chart")].filter(
  (canvas) => window.Chart.getChart(canvas) && canvas.clientWidth > 0 && canvas.clientHeight > 0
).length"""


def seed(csm) -> None:
    """Three months of a little of everything, in two currencies, for the CSM's customer and others."""
    today = billing_today()
    this_month = month_start(today)
    mine = CustomerFactory(name="Acme Payments", csm=csm)
    others = [CustomerFactory(name=f"{name} Ltd") for name in ("Umbrella Verify", "Initech Checks", "Hooli Identity")]
    dollars = CustomerFactory(name="Globex Screening", currency="USD")
    services = [ServiceFactory(category=category) for category in (Service.Category.KYC, Service.Category.AML)]
    for back in range(3):
        month = add_months(this_month, -back)
        for index, customer in enumerate([mine, *others, dollars]):
            amount = f"{1200 + 310 * index + 45 * back}.00"
            bill = invoice(customer, amount, issued=at(month), due=month + timedelta(days=14), period=month)
            if back:
                payment(customer, amount, received=at(month + timedelta(days=10)))
                Invoice.objects.filter(pk=bill.pk).update(status=Invoice.Status.PAID, amount_paid=bill.total)
            for service in services:
                usage(customer, service, f"{150 + 20 * index + 7 * back}.25", period=month)
    invoice(mine, "480.00")  # a draft
    for customer in [mine, *others, dollars]:
        balance(customer, "1500.00")
    balance(others[0], "-120.00")
    created = f"{this_month:%Y-%m-%d} 09:00"
    make_order(mine, fee="900.00", created=created)
    make_order(others[0], fee="1500.00", created=created, status=Order.Status.IN_PROGRESS)
    make_order(others[1], fee="700.00", created=created, status=Order.Status.COMPLETED, ended=f"{today:%Y-%m-%d} 08:00")


@pytest.mark.parametrize("role", list(Role))
def test_dashboard_reads_right_for_each_role(page: Page, role):
    csm = UserFactory(roles=[Role.CUSTOMER_SUCCESS], email="cs@example.com", full_name="Casey Success")
    seed(csm)
    user = csm if role == Role.CUSTOMER_SUCCESS else UserFactory(roles=[role], email="user@example.com")
    problems = watch(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    admin_log_in(page, user.email)
    expect(page.locator("#dashboard")).to_be_visible()
    page.wait_for_load_state("networkidle")

    assert problems == []
    assert not page.evaluate(MAIN_SCROLLS_SIDEWAYS)
    expect(page.locator("[data-kpi]").first).to_be_visible()
    assert page.evaluate(CHARTS_DRAWN) == page.locator("canvas.chart").count() > 0
    if role == Role.OPERATIONS:
        expect(page.locator("#dashboard")).not_to_contain_text("EUR")
    else:
        expect(page.locator('[data-kpi="invoiced-this-month"]')).to_contain_text("EUR")
    if role == Role.CUSTOMER_SUCCESS:
        expect(page.locator("#dashboard")).not_to_contain_text("Umbrella")
    ARTIFACTS.mkdir(exist_ok=True)
    slug = str(role).lower().replace(" ", "-")
    page.screenshot(path=ARTIFACTS / f"dashboard-{slug}.png", full_page=True)
