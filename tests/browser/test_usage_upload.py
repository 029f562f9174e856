"""A Finance user uploads a usage file by drag-and-drop in the admin and sees what was imported."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from tests.browser.test_admin_browser import admin_log_in, open_page
from usage.models import MonthlySummary, Upload, UsageRecord

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USAGE_CSV = (
    "serviceName,clientId,quantity,serviceTime\n"
    "kyc_check,ACME-1,3,2026-10-05T10:00:00Z\n"
    "kyc_check,ACME-1,2,2026-10-06T11:30:00Z\n"
)


def drop_file(page: Page, target: str, name: str, content: str) -> None:
    """Drop a file on `target` as a user dragging it from the desktop would (a synthetic drop event)."""
    data_transfer = page.evaluate_handle(
        """([name, content]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], name, {type: "text/csv"}));
            return transfer;
        }""",
        [name, content],
    )
    page.dispatch_event(target, "dragenter", {"dataTransfer": data_transfer})
    page.dispatch_event(target, "drop", {"dataTransfer": data_transfer})


def test_finance_user_uploads_usage_by_drag_and_drop_and_sees_the_result(page: Page):
    finance = UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    service = ServiceFactory(code="kyc_check", name="Identity check")
    PriceAgreementFactory(customer=CustomerFactory(client_id="ACME-1", name="Acme Verification"), service=service)

    admin_log_in(page, finance.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, "/admin/usage/upload/new/")
    expect(page.get_by_role("heading", name="Upload usage")).to_be_visible()

    drop_file(page, "#drop-zone", "october.csv", USAGE_CSV)
    expect(page.locator("#chosen-file")).to_contain_text("Selected: october.csv")
    page.locator("#upload-button").click()

    expect(page.get_by_role("heading", name="Upload result: october.csv")).to_be_visible()
    expect(page.locator("#upload-outcome")).to_contain_text("Imported 2 rows")
    upload = Upload.objects.get()
    assert (upload.status, upload.created_by, upload.original_name) == (Upload.Status.IMPORTED, finance, "october.csv")
    assert sorted(UsageRecord.objects.values_list("quantity", flat=True)) == [2, 3]
    assert MonthlySummary.objects.get().record_count == 2


def test_picking_a_file_in_unfolds_file_widget_shows_its_name_without_a_script_error(page: Page):
    finance = UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    admin_log_in(page, finance.email)
    open_page(page, "/admin/usage/upload/new/")
    page.set_input_files(
        "#drop-zone input[type=file]",
        files=[{"name": "october.csv", "mimeType": "text/csv", "buffer": USAGE_CSV.encode()}],
    )

    expect(page.locator("#drop-zone input[type=text]")).to_have_value("october.csv")
    expect(page.locator("#chosen-file")).to_contain_text("Selected: october.csv")
    assert errors == []
