"""A CSM works their approval queue: rejects a bill with a comment, reverts the rejection, approves it; the invoice
page then shows the whole timeline."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from approvals.models import ApprovalRequest
from approvals.services import approval_submit
from catalog.tests.factories import CustomerFactory
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual
from tests.browser.test_admin_browser import admin_log_in, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUEUE = "/admin/approvals/awaitingapproval/"


@pytest.fixture
def csm(db):
    return UserFactory(roles=[Role.CUSTOMER_SUCCESS], email="csm@countinghouse.example", full_name="Casey Success")


@pytest.fixture
def submitted(csm):
    """A manual draft for ACME (rule: its CSM approves), submitted by a Finance user: 120.00 EUR."""
    finance = UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example", full_name="Fin Ance")
    customer = CustomerFactory(name="Acme Verification GmbH", client_id="ACME", currency="EUR", csm=csm)
    billing_config_update(actor=None, customer=customer, approval_rule="csm", tax_rate=Decimal("0.2"))
    lines = [{"description": "Onboarding workshop", "quantity": Decimal(1), "unit_price": Decimal(100)}]
    invoice = invoice_create_manual(actor=finance, customer=customer, lines=lines)
    return approval_submit(actor=finance, target=invoice)


def run_on_row(page: Page, summary: str, action: str, comment: str) -> None:
    """Tick the queue's row, choose the action, give the comment and run it."""
    page.get_by_role("row").filter(has_text=summary).get_by_role("checkbox").check()
    page.get_by_label("Select action to run").select_option(label=action)
    page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name="Run").click()


def test_a_csm_rejects_reverts_and_approves_a_bill_from_the_queue(page: Page, csm, submitted):
    invoice_id = submitted.target_id
    summary = submitted.summary
    admin_log_in(page, csm.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # The queue, from the sidebar.
    page.locator("#nav-sidebar-apps").get_by_role("link", name="Awaiting my approval").click()
    expect(page).to_have_url(re.compile(re.escape(QUEUE)))
    row = page.get_by_role("row").filter(has_text=summary)
    expect(row).to_contain_text("The customer's CSM")
    expect(row).to_contain_text("Fin Ance")

    # Reject it, with a comment.
    run_on_row(page, summary, "Reject selected requests (comment required)", "The workshop was cancelled")
    expect(page.get_by_text(f"Rejected: {summary}.")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=summary)).to_have_count(0)
    assert Invoice.objects.get(pk=invoice_id).status == Invoice.Status.REJECTED

    # Revert the rejection from the invoice page, through its dialog.
    open_page(page, f"/admin/ledger/invoice/{invoice_id}/change/")
    page.get_by_role("link", name="Revert decision").click()
    expect(page.get_by_role("heading", name="Revert the latest decision?")).to_be_visible()
    page.get_by_label("Comment").fill("It took place after all")
    page.get_by_role("button", name="Revert").click()
    expect(page.get_by_text(f"Your decision on {Invoice.objects.get(pk=invoice_id)} was reverted")).to_be_visible()
    assert Invoice.objects.get(pk=invoice_id).status == Invoice.Status.PENDING_APPROVAL

    # Back in the queue: approve it.
    open_page(page, QUEUE)
    run_on_row(page, summary, "Approve selected requests", "Checked against the contract")
    expect(page.get_by_text(f"Approved: {summary}.")).to_be_visible()
    assert Invoice.objects.get(pk=invoice_id).status == Invoice.Status.APPROVED
    assert ApprovalRequest.objects.get(pk=submitted.pk).status == ApprovalRequest.Status.APPROVED

    # The invoice page: the timeline, oldest first, and no decision left to make.
    open_page(page, f"/admin/ledger/invoice/{invoice_id}/change/")
    timeline = page.get_by_test_id("approval-timeline").get_by_test_id("timeline-action")
    expect(timeline).to_have_count(4)
    expect(timeline.nth(0)).to_contain_text("Submitted")
    expect(timeline.nth(0)).to_contain_text("Fin Ance")
    expect(timeline.nth(1)).to_contain_text("Rejected")
    expect(timeline.nth(1)).to_contain_text("The workshop was cancelled")
    expect(timeline.nth(2)).to_contain_text("Reverted the rejection of")
    expect(timeline.nth(2)).to_contain_text("It took place after all")
    expect(timeline.nth(3)).to_contain_text("Approved")
    expect(timeline.nth(3)).to_contain_text("Casey Success")
    expect(page.get_by_test_id("approval-status")).to_contain_text("Approved under the rule")
    expect(page.get_by_role("link", name="Approve", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Reject", exact=True)).to_have_count(0)


def test_an_admin_reroutes_a_bill_nobody_can_approve_and_sales_approves_it(page: Page, csm, submitted):
    invoice_id = submitted.target_id
    csm.is_active = False  # the CSM has left since the bill was submitted
    csm.save()
    UserFactory(roles=[Role.ADMIN], email="admin@countinghouse.example", full_name="Ada Admin")
    sales = UserFactory(roles=[Role.SALES], email="sales@countinghouse.example", full_name="Sam Sales")
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    admin_log_in(page, "admin@countinghouse.example")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, f"/admin/ledger/invoice/{invoice_id}/change/")
    expect(page.get_by_test_id("approval-blocked")).to_contain_text("ACME's CSM, Casey Success")
    expect(page.get_by_test_id("approval-blocked")).to_contain_text("is inactive")

    page.get_by_role("link", name="Re-route approval").click()
    expect(page.get_by_role("heading", name="Re-route this approval request?")).to_be_visible()
    page.get_by_label("Sam Sales <sales@countinghouse.example> alone, instead of every step").check()
    page.get_by_label("Comment").fill("Casey has left; Sam knows the account")
    page.get_by_role("button", name="Re-route").click()
    expect(page.get_by_text(f"{Invoice.objects.get(pk=invoice_id)} re-routed to")).to_be_visible()

    expect(page.get_by_test_id("approval-blocked")).to_have_count(0)
    rerouted = page.get_by_test_id("timeline-action").filter(has_text="Re-routed")
    expect(rerouted).to_contain_text("from “The customer's CSM” to “Sam Sales")
    expect(rerouted).to_contain_text("Ada Admin")
    expect(rerouted).to_contain_text("Casey has left; Sam knows the account")
    assert errors == []
    request = ApprovalRequest.objects.get(pk=submitted.pk)
    assert [step["users"] for step in request.rule["steps"]] == [[sales.pk]]
