"""An order's money through a real browser (issue 12's acceptance): a Finance user records an expense and completes
the order, the partner's settlement appears with its calculation, another Finance user approves it, the first
creates a payout batch, the second approves it, and the bank's pain.001 file downloads and pays the partner's share.

DESIGN.md's rules with these inputs: fee 1,000.00 + 20 % tax and base charge 120.00, paid in full (1,320.00); one
registrar fee of 120.00; a 30 % agreement: net = 1,000.00 + 120.00 − 120.00 = 1,000.00, share 300.00.
"""

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from xml.etree import ElementTree

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.billing_time import billing_today
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_issue
from ledger.services.payments import payment_record
from orders.models import Order, PayoutBatch, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.orders import order_create, order_transition
from orders.tests.factories import OrderTypeFactory
from tests.browser.test_admin_browser import admin_log_in
from tests.browser.test_orders_browser import transition, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IBAN, BIC = "DE02120300000000202051", "BYLADEM1001"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
APPROVE, APPROVE_AND_PAY = re.compile(r"\bApprove$"), re.compile(r"\bApprove and pay$")  # after the button's icon
MAKER_REFUSED = "You submitted this; someone else must decide it (maker-checker)."


@pytest.fixture
def order_in_progress(db) -> Order:
    """A partner's formation for a EUR customer taxed at 20 %, its invoice issued and paid in full, work started."""
    customer = CustomerFactory(name="Acme GmbH", client_id="ACME", currency="EUR")
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    partner = PartnerFactory(name="Formations Partner GmbH", iban=IBAN, bic=BIC, payout_currency="EUR")
    revenue_share_agreement_create(
        actor=None, partner=partner, percentage=D("30"), valid_from=billing_today() - timedelta(days=90)
    )
    order_type = OrderTypeFactory(
        name="German GmbH formation", default_fee=D("1000.00"), default_base_charge=D("120.00")
    )
    order = order_create(actor=None, customer=customer, order_type=order_type, partner=partner)
    invoice = invoice_issue(actor=None, invoice=order.invoice)
    assert invoice.total == D("1320.00")
    payment_record(
        actor=None,
        customer=customer,
        amount=D("1320.00"),
        received_at=datetime.now(UTC) - timedelta(hours=1),
        bank_reference="BANK-ACME-1",
    )
    return order_transition(actor=None, order=order, to_status=Order.Status.IN_PROGRESS)


def sign_in(browser, live_server, email: str, problems: list[str]) -> Page:
    """A Finance user's own browser (a new context), signed in to the admin."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems += watch(page)
    admin_log_in(page, email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return page


def calculation_value(page: Page, key: str):
    return page.locator(f'[data-testid=calculation-row][data-key="{key}"] td').nth(1)


def post_button(page: Page, url: str) -> None:
    """Post a button the page does not offer, as a hand-made request would: the server must still refuse it. The
    redirect is not followed here, so the page shows the message when it opens next."""
    token = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    response = page.request.post(
        url,
        form={"_form_submitted": "on", "csrfmiddlewaretoken": token},
        headers={"X-CSRFToken": token},
        max_redirects=0,
    )
    assert response.status == 302, response.status


def test_finance_takes_an_order_from_its_expense_to_the_partners_bank_file(
    page: Page, browser, live_server, order_in_progress
):
    started = time.monotonic()
    order = order_in_progress
    # Completing an order is Operations' button; this Finance user also runs orders, so their action settles it.
    maker = UserFactory(roles=[Role.FINANCE, Role.OPERATIONS], email="mia@countinghouse.example", full_name="Mia Maker")
    checker = UserFactory(roles=[Role.FINANCE], email="carl@countinghouse.example", full_name="Carl Checker")
    page.set_viewport_size({"width": 1280, "height": 900})
    problems = watch(page)

    # The maker records the registrar's fee on the Expenses tab.
    admin_log_in(page, maker.email)
    page.goto(f"/admin/orders/order/{order.pk}/change/")
    page.locator("#order-tabs").get_by_role("link", name="Expenses").click()
    expenses = page.get_by_test_id("expenses")
    expect(expenses).to_contain_text("No expenses recorded.")
    expenses.get_by_label("Amount").fill("120.00")
    expenses.get_by_label("Category").select_option(label="Registrar fee")
    expenses.get_by_label("Payee").fill("Handelsregister Berlin")
    expenses.get_by_label("Reference").fill("HRB-2026-0042")
    expenses.get_by_role("button", name="Record expense").click()
    expect(page.get_by_text("Expense of EUR 120.00 to Handelsregister Berlin recorded and posted.")).to_be_visible()
    expect(expenses.get_by_test_id("expense-row")).to_have_count(1)
    expect(expenses.get_by_test_id("expense-total")).to_have_text("EUR\u00a0120.00")

    # Completing the order calculates the settlement in the same step.
    transition(page, "Complete", f"{order.number} is completed.")
    expect(page.get_by_test_id("order-summary")).to_contain_text("Completed")
    page.locator("#order-tabs").get_by_role("link", name="Settlement").click()
    tab = page.get_by_test_id("settlement")
    expect(tab.get_by_test_id("settlement-status")).to_contain_text("Calculated")
    row = tab.get_by_test_id("settlement-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("EUR\u00a01,000.00")  # net
    expect(row).to_contain_text("30 %")
    expect(row.locator("td").nth(5)).to_have_text("EUR\u00a0300.00")
    expect(row).to_contain_text("Awaiting approval")

    # Its page shows the whole calculation; the maker may not approve what their action calculated.
    row.get_by_role("link", name="Settlement").click()
    expect(page.get_by_role("heading", name=f"{order.number} · Settlement")).to_be_visible()
    expect(page.get_by_test_id("settlement-agreement")).to_contain_text("Formations Partner GmbH · 30 %")
    for key, value in [
        ("fee_billed", "EUR\u00a01,000.00"),
        ("fee_tax_rate", "20 %"),
        ("base_charge_billed", "EUR\u00a0120.00"),
        ("paid", "EUR\u00a01,320.00"),
        ("fee_received", "EUR\u00a01,000.00"),
        ("base_charge_received", "EUR\u00a0120.00"),
        ("expenses", "EUR\u00a0120.00"),
        ("net", "EUR\u00a01,000.00"),
        ("percentage", "30 %"),
        ("share", "EUR\u00a0300.00"),
        ("amount", "EUR\u00a0300.00"),
    ]:
        expect(calculation_value(page, key)).to_have_text(value)
    expect(page.get_by_test_id("approval-status")).to_contain_text(
        "Your action calculated it, so another Finance user approves it (maker-checker)."
    )
    expect(page.get_by_role("link", name=APPROVE)).to_have_count(0)
    settlement = Settlement.objects.get(order=order)
    settlement_page = f"/admin/orders/settlement/{settlement.pk}/change/"
    post_button(page, f"/admin/orders/settlement/{settlement.pk}/approve/")
    page.goto(settlement_page)
    expect(page.get_by_text(MAKER_REFUSED)).to_be_visible()
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED

    # The checker, in a browser of their own, approves it.
    checker_page = sign_in(browser, live_server, checker.email, problems)
    checker_page.goto(settlement_page)
    checker_page.get_by_role("link", name=APPROVE).click()
    checker_page.locator("#dialog").get_by_role("button", name="Approve").click()
    expect(
        checker_page.get_by_text(f"{settlement} approved: EUR\u00a0300.00 posted to Formations Partner GmbH's payable.")
    ).to_be_visible()
    expect(checker_page.get_by_test_id("settlement-calculation")).to_be_visible()

    # The maker creates the partner's payout batch: Orders → Payout batches → Create payout batches.
    page.get_by_role("navigation").get_by_role("link", name="Payout batches").click()
    expect(page.get_by_role("heading", name="Payout batches")).to_be_visible()
    page.get_by_role("link", name="Add payout batch").click()
    expect(page.get_by_role("heading", name="Create payout batches")).to_be_visible()
    page.get_by_label("Formations Partner GmbH (1 settlement waiting, EUR\u00a0300.00)").check()
    expect(page.get_by_label("Cut-off date")).to_have_value(f"{billing_today():%Y-%m-%d}")
    page.get_by_role("button", name="Create batches").click()
    batch = PayoutBatch.objects.get()
    expect(
        page.get_by_text(
            f"Created {batch.number} (Formations Partner GmbH, EUR\u00a0300.00). Another Finance user approves each to "
            "pay it."
        )
    ).to_be_visible()
    expect(page.get_by_text("IBAN DE02 1203 0000 0000 2020 51, BIC BYLADEM1001")).to_be_visible()
    expect(page.get_by_role("link", name=APPROVE_AND_PAY)).to_have_count(0)

    # The checker approves the batch and downloads the bank file.
    checker_page.goto(f"/admin/orders/payoutbatch/{batch.pk}/change/")
    checker_page.get_by_role("link", name=APPROVE_AND_PAY).click()
    checker_page.locator("#dialog").get_by_role("button", name="Approve").click()
    approved = f"{batch.number} approved: EUR\u00a0300.00 to Formations Partner GmbH."
    expect(checker_page.get_by_text(approved)).to_be_visible()
    with checker_page.expect_download() as download_info:
        checker_page.get_by_role("link", name="Bank file").click()
    download = download_info.value
    assert download.suggested_filename == f"{batch.number}-pain001.xml"
    tree = ElementTree.parse(download.path())
    assert tree.find("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", NS).text == "300.00"
    (transfer,) = tree.findall("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", NS)
    assert transfer.find("p:Amt/p:InstdAmt", NS).text == "300.00"
    assert transfer.find("p:CdtrAcct/p:Id/p:IBAN", NS).text == IBAN
    assert transfer.find("p:Cdtr/p:Nm", NS).text == "Formations Partner GmbH"
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.PAID and settlement.payout == batch
    checker_page.context.close()

    assert problems == [], "\n".join(problems)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"the walk took {elapsed:.1f} s"
