"""Every page works under the Content-Security-Policy: no console error, no uncaught error, no CSP violation."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft, invoice_issue
from tests.browser.test_admin_browser import admin_log_in, choose_in_autocomplete, open_page
from usage.services import usage_import_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  const text = `${event.effectiveDirective} refused ${event.blockedURI || "inline code"} (${where})`;
  window.cspViolations.push(text);
  window.reportCspViolation(text);
});
"""
INJECT_INLINE_SCRIPT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.injectedScriptRan = true;";
  document.head.appendChild(script);
  return window.injectedScriptRan === true;
}"""


def watch(page: Page) -> list[str]:
    """Every console error, uncaught error and CSP violation of the page from now on."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and problems.append(f"{page.url}: console: {message.text} ({message.location.get('url')})")
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught: {error.stack}"))
    page.expose_function("reportCspViolation", lambda text: problems.append(f"{page.url}: CSP violation: {text}"))
    page.add_init_script(REPORT_VIOLATIONS)
    return problems


def visit(page: Page, path: str) -> None:
    open_page(page, path)
    page.wait_for_load_state("networkidle")


@pytest.fixture
def billed_customer(db):
    """ACME with a price, October's usage and its issued invoice, and a portal user."""
    customer = CustomerFactory(name="Acme Verification GmbH", client_id="ACME", currency="EUR")
    service = ServiceFactory(code="kyc_check", name="Identity check")
    ServiceFactory(code="aml_screen", name="Sanctions screening")
    PriceAgreementFactory(customer=customer, service=service, unit_price=Decimal("0.5"), valid_from=date(2026, 1, 1))
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"), payment_terms_days=14)
    events = [
        {"serviceName": "kyc_check", "clientId": "ACME", "quantity": "100", "serviceTime": "2026-10-05T10:00:00Z"}
    ]
    usage_import_events(actor=None, events=events, received_at=datetime(2026, 11, 1, tzinfo=UTC))
    invoice = invoice_issue(
        actor=None, invoice=invoice_create_draft(actor=None, customer=customer, period=date(2026, 10, 1)), send=False
    )
    PortalMembershipFactory(customer=customer, user=UserFactory(email="portal@acme.example", is_staff=False))
    return customer, invoice


def test_the_admin_works_under_its_policy(page: Page, billed_customer, tmp_path):
    customer, invoice = billed_customer
    admin = UserFactory(roles=[Role.ADMIN], email="admin@countinghouse.example", full_name="Ada Admin")
    problems = watch(page)

    admin_log_in(page, admin.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    sidebar = page.locator("#nav-sidebar-apps a").evaluate_all("links => links.map(link => link.getAttribute('href'))")
    assert len(sidebar) > 20
    for path in sidebar:
        visit(page, path)

    # A changelist with filters, opened from its filter panel.
    visit(page, "/admin/ledger/invoice/?status__exact=issued")
    expect(page.get_by_role("link", name=invoice.number)).to_be_visible()
    page.locator("a[x-on\\:click='filterOpen = true']").click()  # Alpine.js opens the panel
    expect(page.locator("#changelist-filter")).to_be_visible()

    # A change form with tabs, inlines and an autocomplete that asks the server.
    visit(page, f"/admin/catalog/customer/{customer.pk}/change/")
    page.locator("#tabs-items").get_by_role("link", name="Price agreements").click()
    page.get_by_role("link", name="Add another Price agreement").click()
    page.locator("#select2-id_price_agreements-1-service-container").click()
    page.locator(".select2-container--open").get_by_role("searchbox").fill("Sanctions")
    expect(page.get_by_role("option", name="Sanctions screening (aml_screen)")).to_be_visible()

    visit(page, f"/admin/ledger/invoice/{invoice.pk}/change/")

    # The usage upload page and its script.
    visit(page, "/admin/usage/upload/new/")
    csv = tmp_path / "usage.csv"
    csv.write_text("service_name,client_id,quantity,service_time\nkyc_check,ACME,1,2026-11-05T10:00:00Z\n")
    page.locator("input[type=file]").set_input_files(csv)
    expect(page.locator("#chosen-file")).to_contain_text("Selected: usage.csv")

    # A new API token's page, with its copy button.
    visit(page, "/admin/accounts/apitoken/add/")
    choose_in_autocomplete(page, "id_user", "admin@", str(admin))
    page.get_by_label("Name").fill("usage uploader")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="API token created")).to_be_visible()

    assert problems == [], "\n".join(problems)


def test_the_portal_works_under_the_policy(page: Page, billed_customer):
    _, invoice = billed_customer
    problems = watch(page)

    visit(page, "/portal/login/")
    page.get_by_label("Email").fill("portal@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Acme Verification GmbH")).to_be_visible()
    page.get_by_role("link", name="Invoices", exact=True).click()
    expect(page.get_by_text(invoice.number)).to_be_visible()
    # The portal's styles come from its stylesheet: the header keeps its colour.
    assert page.locator("header").evaluate("element => getComputedStyle(element).backgroundColor") == "rgb(49, 46, 129)"

    assert problems == [], "\n".join(problems)


def test_the_api_docs_work_under_the_policy(page: Page, db):
    problems = watch(page)

    visit(page, "/api/docs/")

    expect(page.locator(".opblock-summary-path", has_text="/api/session").first).to_be_visible()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("path", ["/portal/login/", "/admin/login/", "/api/docs/"])
def test_an_injected_inline_script_does_not_run(page: Page, db, path):
    watch(page)
    visit(page, path)

    assert page.evaluate(INJECT_INLINE_SCRIPT) is False
    page.wait_for_function("() => window.cspViolations.some(text => text.startsWith('script-src'))")
