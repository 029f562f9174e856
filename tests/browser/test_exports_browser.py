"""A long export in a real browser at 1,280 px (reports.services.exports): asked for on the invoice register's
page, it opens its own page, which follows its progress and offers the file once written. Screenshots are kept in
$SCREENSHOT_DIR when set (the test's temporary folder otherwise)."""

import os
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from reports import tasks
from reports.models import Export
from reports.services.exports import export_run
from reports.tests.test_background_exports import march  # noqa: F401 (a fixture: seven rows in March)
from tests.browser.test_admin_browser import admin_log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_long_export_shows_its_progress_then_downloads(page: Page, march, settings, monkeypatch, tmp_path):  # noqa: F811
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    settings.EXPORT_BACKGROUND_ROWS = 3
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(tasks.export_run_task, "delay", lambda export_id: None)  # queued until this test runs it
    UserFactory(roles=[Role.FINANCE], email="finance@example.com")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_log_in(page, "finance@example.com")

    page.goto("/admin/reports/invoice-register/?period=custom&start=2026-03-01&end=2026-03-31")
    page.get_by_role("link", name="Export XLSX").click()
    expect(page.get_by_test_id("export-status")).to_have_text("Queued")
    export = Export.objects.get()

    Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING, rows_written=4, total_rows=7)
    expect(page.get_by_test_id("export-progress")).to_have_text("4 of 7 rows (57 %)")  # the page's poll
    expect(page.get_by_test_id("export-status")).to_have_text("Running")
    page.screenshot(path=shots / "export-progress.png", full_page=True)

    Export.objects.filter(pk=export.pk).update(status=Export.Status.QUEUED, rows_written=0, total_rows=None)
    export_run(export_id=export.pk)
    expect(page.get_by_test_id("export-status")).to_have_text("Ready")  # reloaded once done
    expect(page.get_by_test_id("export-progress")).to_have_text("7 rows")
    assert page.evaluate("document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth")
    page.screenshot(path=shots / "export-done.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("export-download").click()
    assert download.value.suggested_filename == "invoice-register-2026-03-01-to-2026-03-31.xlsx"
    with download.value.path().open("rb") as file:  # a download's path has no extension for openpyxl to go by
        assert load_workbook(file).active.max_row == 1 + 7 + 1

    page.locator("#nav-sidebar-apps").get_by_role("link", name="My exports").click()
    expect(page.locator("#result_list")).to_contain_text("Invoice register")
    page.screenshot(path=shots / "export-list.png", full_page=True)
    assert errors == []
