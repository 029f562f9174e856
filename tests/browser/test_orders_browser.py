"""The order desk through a real browser: Operations runs an order from creation to completion in the admin, and
the customer's portal user then reads the finished order."""

import pytest
from playwright.sync_api import Locator, Page, expect

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from orders.models import Order
from orders.tests.conftest import pdf_bytes, png_bytes
from orders.tests.factories import DocumentTypeFactory, OrderTypeFactory, RequirementFactory
from tests.browser.test_admin_browser import admin_log_in, choose_in_autocomplete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch(page: Page) -> list[str]:
    """Every console error and uncaught error of the page from now on."""
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught: {error.stack}"))
    return problems


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def formation(db):
    """Acme with a portal user, and a formation requiring a passport and a proof of address."""
    order_type = OrderTypeFactory(code="uk_formation", name="UK company formation")
    passport = DocumentTypeFactory(code="passport", name="Passport", accepted_kinds="pdf,png", validity_days=365)
    address = DocumentTypeFactory(code="proof_of_address", name="Proof of address", accepted_kinds="pdf,png")
    RequirementFactory(order_type=order_type, document_type=passport)
    RequirementFactory(order_type=order_type, document_type=address)
    customer = CustomerFactory(name="Acme Ltd", client_id="ACME", currency="GBP")
    PortalMembershipFactory(customer=customer, user=UserFactory(email="jane@acme.example", is_staff=False))
    return customer


def documents_tab(page: Page) -> None:
    page.locator("#order-tabs").get_by_role("link", name="Documents").click()


def upload(page: Page, document: Locator, name: str, path) -> None:
    document.get_by_label(f"File for {name}").set_input_files(path)
    expect(document.locator(".order-file input[type=text]")).to_have_value(path.name)
    document.get_by_role("button", name="Upload").click()
    expect(page.get_by_text(f"{name}: {path.name} received.")).to_be_visible()


def review(page: Page, document: Locator, name: str, *, reject_because: str = "") -> None:
    if reject_because:
        document.get_by_label(f"Reason to reject {name}").fill(reject_because)
        document.get_by_role("button", name="Reject").click()
        expect(page.get_by_text(f"{name} rejected.")).to_be_visible()
    else:
        document.get_by_role("button", name="Accept").click()
        expect(page.get_by_text(f"{name} accepted.")).to_be_visible()


def transition(page: Page, button: str, done: str) -> None:
    page.get_by_role("link", name=button).click()
    page.locator("#dialog").get_by_role("button", name=button).click()
    expect(page.get_by_text(done)).to_be_visible()


def test_operations_runs_an_order_to_completion_and_the_client_follows_it_in_the_portal(
    page: Page, browser, live_server, formation, media_in_tmp, tmp_path
):
    operations = UserFactory(roles=[Role.OPERATIONS], email="olga@countinghouse.example", full_name="Olga Ops")
    passport_file, address_file, address_again = (
        tmp_path / "passport.pdf",
        tmp_path / "bill.png",
        tmp_path / "lease.pdf",
    )
    passport_file.write_bytes(pdf_bytes())
    address_file.write_bytes(png_bytes())
    address_again.write_bytes(pdf_bytes())
    page.set_viewport_size({"width": 1280, "height": 900})
    problems = watch(page)

    admin_log_in(page, operations.email)
    page.goto("/admin/orders/order/add/")
    choose_in_autocomplete(page, "id_customer", "Acme", "Acme Ltd (ACME)")
    page.get_by_label("Order type").select_option(label="UK company formation")
    page.get_by_role("button", name="Create order").click()
    summary = page.get_by_test_id("order-summary")
    expect(summary).to_be_visible()
    order = Order.objects.get(customer=formation)
    expect(page.get_by_text(f"{order.number} created for Acme Ltd: 2 required document(s) pending.")).to_be_visible()
    expect(summary).to_contain_text("Documents pending")
    expect(summary).to_contain_text("Waiting for 2 required documents: Passport (pending), Proof of address (pending)")

    documents_tab(page)
    passport, address = page.get_by_test_id("document-passport"), page.get_by_test_id("document-proof_of_address")
    upload(page, passport, "Passport", passport_file)
    upload(page, address, "Proof of address", address_file)
    expect(passport).to_contain_text("Received")
    expect(address).to_contain_text("Received")

    review(page, address, "Proof of address", reject_because="The bill is older than three months.")
    expect(address.get_by_test_id("rejection-reason")).to_have_text("The bill is older than three months.")
    expect(summary).to_contain_text("Proof of address (rejected)")

    upload(page, address, "Proof of address", address_again)
    expect(address).to_contain_text("Earlier files (1)")
    review(page, passport, "Passport")
    review(page, address, "Proof of address")
    expect(passport).to_contain_text("Accepted")
    expect(address).to_contain_text("Accepted")
    expect(address.get_by_test_id("rejection-reason")).to_have_count(0)
    expect(page.locator("#order-tabs")).to_contain_text("Documents 2/2")

    page.locator("#order-tabs").get_by_role("link", name="Comments").click()
    page.get_by_label("Body").fill("Both documents checked against the register.")
    page.get_by_label("Attachments").set_input_files(passport_file)
    expect(page.get_by_test_id("comments").locator(".order-file input[type=text]")).to_have_value(passport_file.name)
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_text("Comment added with 1 attachment(s).")).to_be_visible()

    transition(page, "Start work", f"{order.number} is in progress.")
    expect(summary).to_contain_text("In progress")
    transition(page, "Complete", f"{order.number} is completed.")
    expect(summary).to_contain_text("Completed")
    page.locator("#order-tabs").get_by_role("link", name="Timeline").click()
    timeline = page.get_by_test_id("timeline").locator("tbody tr")
    expect(timeline).to_have_count(4)
    for row, (before, after) in enumerate(
        [
            ("—", "Started"),
            ("Started", "Documents pending"),
            ("Documents pending", "In progress"),
            ("In progress", "Completed"),
        ]
    ):
        expect(timeline.nth(row).locator("td").nth(1)).to_have_text(before)
        expect(timeline.nth(row).locator("td").nth(2)).to_have_text(after)
    expect(timeline.nth(2)).to_contain_text("Olga Ops")

    # The client, in a browser of their own.
    portal = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    client = portal.new_page()
    problems += watch(client)
    client.goto("/portal/login/")
    client.get_by_label("Email").fill("jane@acme.example")
    client.get_by_label("Password").fill(PASSWORD)
    client.get_by_role("button", name="Sign in").click()
    expect(client).to_have_url("/portal/")
    client.goto("/portal/orders/")
    row = client.get_by_role("row").filter(has_text=order.number)
    expect(row).to_contain_text("UK company formation")
    expect(row.locator(".status")).to_have_text("Completed")
    row.get_by_role("link", name=order.number).click()

    expect(client.get_by_role("heading", level=1)).to_have_text(f"{order.number} · UK company formation")
    expect(client.locator(".facts .status")).to_have_text("Completed")
    expect(client.get_by_text("2 of 2 required documents accepted.")).to_be_visible()
    for name in ["Passport", "Proof of address"]:
        checklist_row = client.locator(".checklist tbody tr").filter(has_text=name)
        expect(checklist_row.locator(".status")).to_have_text("Accepted")
        expect(checklist_row.get_by_role("link", name="Download")).to_be_visible()
    expect(client.locator(".timeline .status")).to_have_text(
        ["Opened", "Documents pending", "In progress", "Completed"]
    )
    portal.close()

    assert problems == [], "\n".join(problems)
