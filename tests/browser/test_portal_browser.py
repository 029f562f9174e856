"""The customer portal through a real browser at 1,280 px: the portal user reads October's usage with its costs,
downloads it, and opens the statement PDF; every portal page is photographed (BROWSER_ARTIFACTS names a folder to
keep the screenshots in, as CI does) and must load without a console error or a sideways scroll."""

import csv
import io
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from ledger.services.invoices import invoice_create_manual, invoice_issue
from ledger.services.payments import payment_record
from usage.services import usage_import_events

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAGES = ["Account", "Usage", "Statement", "Invoices", "Payments", "Orders"]


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def acme(db, media_in_tmp):
    """Acme with a portal user: October's usage of an identity check (1,000 included, then 0.04 a check), an
    issued invoice and a payment; Globex has usage of its own."""
    customer = CustomerFactory(name="Acme Ltd", client_id="ACME", currency="EUR")
    globex = CustomerFactory(name="Globex", client_id="GLOBEX", currency="EUR")
    PortalMembershipFactory(customer=customer, user=UserFactory(email="jane@acme.example", is_staff=False))
    checks = ServiceFactory(code="kyc_check", name="Identity check")
    for who in (customer, globex):
        PriceAgreementFactory(
            customer=who, service=checks, unit_price=Decimal("0.04"), included_quantity=Decimal(1000),
            monthly_fee=Decimal(10), valid_from=date(2026, 1, 1),
        )  # fmt: skip
    usage_import_events(
        actor=None,
        events=[
            {"serviceName": "kyc_check", "clientId": client, "quantity": quantity, "serviceTime": "2026-10-12T09:00Z"}
            for client, quantity in (("ACME", "1600"), ("GLOBEX", "9000"))
        ],
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    line = [{"description": "Onboarding", "quantity": Decimal(1), "unit_price": Decimal("250.00")}]
    invoice = invoice_issue(
        actor=None, invoice=invoice_create_manual(actor=None, customer=customer, lines=line), send=False
    )
    payment_record(
        actor=None, customer=customer, amount=Decimal("100.00"), received_at=datetime.now(UTC), bank_reference="TR-1"
    )
    return invoice


def watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught: {error}"))
    page.on(
        "response", lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}")
    )
    return problems


def test_the_portal_user_reads_octobers_usage_exports_it_and_opens_the_statement_pdf(
    browser, live_server, acme, tmp_path
):
    artifacts = Path(os.environ.get("BROWSER_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = watch(page)
    page.goto("/portal/login/")
    page.get_by_label("Email").fill("jane@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/portal/")

    # October's usage, with its costs.
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Usage").click()
    page.get_by_label("Month", exact=True).fill("2026-10")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage in October 2026")
    row = page.get_by_test_id("usage").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Identity check")
    expect(row).to_contain_text("600 × EUR\u00a00.04")
    expect(row.locator("td").last).to_have_text("EUR\u00a034.00")  # 10.00 fee + 600 × 0.04
    expect(page.get_by_test_id("usage-total").locator("td").last).to_have_text("EUR\u00a034.00")
    expect(page.locator("main")).not_to_contain_text("GLOBEX")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(row["service"], row["amount"]) for row in rows] == [("Identity check", "34.00")]
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel").click()
    assert download.value.suggested_filename == "usage-2026-10.xlsx"

    # The statement, and its PDF.
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Statement").click()
    page.get_by_label("From").fill("2026-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("brought-forward")).to_contain_text("EUR\u00a00.00")
    expect(page.get_by_test_id("statement")).to_contain_text(acme.number)
    expect(page.get_by_test_id("closing-balance")).to_contain_text("EUR\u00a0150.00")
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").click()
    reader = PdfReader(download.value.path())
    text = " ".join(" ".join(pdf_page.extract_text() for pdf_page in reader.pages).split())
    assert "Statement of" in text and "Balance brought forward EUR 0.00" in text
    assert acme.number in text and "Closing balance EUR 150.00" in text and "Page 1 of 1" in text

    # Every portal page, photographed at 1,280 px, without sideways scrolling.
    for name in PAGES:
        page.get_by_role("navigation", name="Portal").get_by_role("link", name=name).click()
        expect(page.get_by_role("navigation", name="Portal").get_by_role("link", name=name)).to_have_attribute(
            "aria-current", "page"
        )
        if name == "Usage":
            page.goto("/portal/usage/?month=2026-10")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        page.screenshot(path=artifacts / f"portal-{name.lower()}.png", full_page=True)
    assert problems == []
    context.close()
