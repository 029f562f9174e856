"""Exports too long for a request (reports.services.exports, reports.admin, reports.export_views): a report or an
admin list of more than settings.EXPORT_BACKGROUND_ROWS rows becomes one Export written by a Celery task (eager
here: the task runs when the request's transaction commits), with its progress, its file for its owner only, one
email with the link; asking twice or running the task twice writes one file and sends one email; a failure is
shown on its page. The real worker on PostgreSQL and Redis: test_background_exports_worker.py."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory
from reports.models import Export
from reports.services import exports as service
from reports.services.exports import export_run, exports_delete_expired
from reports.tests.finance_data import make_credit_note, make_invoice

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
TOTALS = ["120.00", "75.50", "310.25", "42.10", "999.99", "18.00"]  # one invoice each, on 2 to 7 March


@pytest.fixture(autouse=True)
def small_threshold(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path  # each test's files its own (SQLite gives ids again)
    settings.EXPORT_BACKGROUND_ROWS = 3
    settings.EXPORT_PROGRESS_ROWS = 2
    settings.SITE_URL = "https://billing.example.com"


@pytest.fixture
def march(db):
    """Six invoices and one credit note issued in March: seven rows of the invoice register."""
    acme = CustomerFactory(name="Acme", currency="EUR")
    invoices = [
        make_invoice(acme, f"INV-X-{day}", issued=f"2026-03-0{day} 10:00", lines=[(total, "0", None, "manual")])
        for day, total in enumerate(TOTALS, start=2)
    ]
    make_credit_note(invoices[0], "CN-X-1", issued="2026-03-20 10:00", subtotal="20.00", tax="0.00")
    return acme


def register_url(**query) -> str:
    return reverse("admin:report_invoice_register") + "?" + "&".join(f"{k}={v}" for k, v in (MARCH | query).items())


def ask(client, user, url, on_commit, *, execute=True):
    client.force_login(user)
    with on_commit(execute=execute):
        return client.get(url)


def export_page(export: Export, view: str = "change") -> str:
    return reverse(f"admin:reports_export_{view}", args=[export.pk])


def stored_files(export: Export) -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT) / "exports"
    return sorted(root.rglob(f"{export.pk}-*")) if root.exists() else []


# Below the threshold nothing changes.


def test_a_report_within_the_threshold_downloads_at_once(client, finance_user, march, settings):
    settings.EXPORT_BACKGROUND_ROWS = 7
    response = ask(client, finance_user, register_url(export="xlsx"), lambda **kw: _nothing())
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="invoice-register-2026-03-01')
    assert not Export.objects.exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# Above it: one export, written in the background.


def test_a_long_report_is_exported_in_the_background_with_its_numbers(
    client, finance_user, march, django_capture_on_commit_callbacks, mailoutbox
):
    response = ask(client, finance_user, register_url(export="xlsx"), django_capture_on_commit_callbacks)

    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == export_page(export)
    assert (export.user, export.source, export.format, export.status) == (
        finance_user, "report:invoice-register", "xlsx", Export.Status.DONE
    )  # fmt: skip
    assert (export.rows_written, export.total_rows, export.percent) == (7, 7, 100)
    assert ["Period", "1 Mar 2026 to 31 Mar 2026"] in export.filters
    assert export.file_name == "invoice-register-2026-03-01-to-2026-03-31.xlsx"

    sheet = load_workbook(io.BytesIO(client.get(export_page(export, "download")).getvalue())).active
    header, *rows, total = list(sheet.iter_rows(values_only=True))
    assert header[:2] == ("Issued", "Number") and header[-3:] == ("Net", "Tax", "Total")
    assert [row[1] for row in rows] == [f"INV-X-{day}" for day in range(2, 8)] + ["CN-X-1"]
    totals = [row[-1] for row in rows]
    assert all(isinstance(value, int | float) for value in totals)  # numbers, not text
    assert totals[-1] == -20
    assert total[1] == "Total EUR"
    expected = sum((Decimal(value) for value in TOTALS), Decimal("-20.00"))
    assert Decimal(str(total[-1])).quantize(Decimal("0.01")) == expected
    assert round(sum(Decimal(str(value)) for value in totals), 2) == expected

    (message,) = mailoutbox
    assert message.to == [finance_user.email]
    assert message.subject == "Your export is ready: Invoice register (XLSX)"
    assert f"https://billing.example.com{export_page(export)}\n" in message.body
    assert "7 rows" in message.body


def test_the_export_page_shows_progress_then_the_file(client, finance_user, march, django_capture_on_commit_callbacks):
    ask(client, finance_user, register_url(export="csv"), django_capture_on_commit_callbacks, execute=False)
    export = Export.objects.get()
    page = client.get(export_page(export)).content.decode()
    assert "Queued" in page and "Waiting for a worker" in page and "export_progress.js" in page
    assert client.get(export_page(export, "status")).json() == {
        "status": "queued", "status_label": "Queued", "rows_written": 0, "total_rows": None, "percent": None,
        "progress": "Waiting for a worker…", "open": True,
    }  # fmt: skip

    Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING, rows_written=4, total_rows=7)
    assert client.get(export_page(export, "status")).json()["progress"] == "4 of 7 rows (57 %)"
    assert client.get(export_page(export, "download")).status_code == 404  # no file yet

    Export.objects.filter(pk=export.pk).update(status=Export.Status.QUEUED, rows_written=0, total_rows=None)
    export_run(export_id=export.pk)
    page = client.get(export_page(export)).content.decode()
    assert "Ready" in page and "Download invoice-register-2026-03-01-to-2026-03-31.csv" in page
    assert "export_progress.js" not in page
    rows = list(csv.reader(io.StringIO(b"".join(client.get(export_page(export, "download"))).decode())))
    assert rows[0][:2] == ["issued", "number"] and len(rows) == 1 + 7 + 1
    assert rows[-1][1] == "Total EUR" and rows[-1][-1] == str(sum(Decimal(v) for v in TOTALS) - 20)


def test_progress_is_saved_as_the_rows_are_written(client, finance_user, march, monkeypatch, mailoutbox):
    export = service.export_start(
        actor=finance_user, source="report:invoice-register", title="Invoice register",
        query="start=2026-03-01&end=2026-03-31", filters=[], format="csv", file_name="register.csv",
    )  # fmt: skip
    saved = []
    original = service._Progress.save

    def record(progress):
        saved.append((progress.written, progress.total))
        original(progress)

    monkeypatch.setattr(service._Progress, "save", record)
    export_run(export_id=export.pk)
    assert saved == [(0, 7), (2, 7), (4, 7), (6, 7)]  # every EXPORT_PROGRESS_ROWS rows
    export.refresh_from_db()
    assert (export.status, export.rows_written) == (Export.Status.DONE, 7)


# Whose file it is.


def test_only_the_owner_and_a_superuser_open_the_export(
    client, make_user, finance_user, march, django_capture_on_commit_callbacks
):
    ask(client, finance_user, register_url(export="xlsx"), django_capture_on_commit_callbacks)
    export = Export.objects.get()
    urls = [export_page(export), export_page(export, "status"), export_page(export, "download")]

    client.force_login(make_user(Role.FINANCE))
    assert [client.get(url).status_code for url in urls] == [404, 404, 404]
    assert export_page(export) not in client.get(reverse("admin:reports_export_changelist")).content.decode()

    client.force_login(make_user(Role.ADMIN, is_superuser=True))
    assert [client.get(url).status_code for url in urls] == [200, 200, 200]

    client.force_login(finance_user)
    assert [client.get(url).status_code for url in urls] == [200, 200, 200]
    assert export_page(export) in client.get(reverse("admin:reports_export_changelist")).content.decode()


# Twice is once.


def test_asking_twice_while_it_is_written_gives_the_same_export(
    client, finance_user, march, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(finance_user)
    with django_capture_on_commit_callbacks() as queued:
        first = client.get(register_url(export="xlsx"))
        second = client.get(register_url(export="xlsx", page="2"))  # another page of the same report
    assert first["Location"] == second["Location"]
    export = Export.objects.get()
    for callback in queued:  # each request queued the task: both deliveries run
        callback()
    export_run(export_id=export.pk)  # and a redelivery after it is done
    assert len(stored_files(export)) == 1
    assert len(mailoutbox) == 1

    ask(client, finance_user, register_url(export="xlsx"), django_capture_on_commit_callbacks)
    assert Export.objects.count() == 2  # once done, asking again is a new export


def test_a_second_delivery_while_the_first_writes_writes_nothing(finance_user, march, mailoutbox):
    export = service.export_start(
        actor=finance_user, source="report:invoice-register", title="Invoice register",
        query="start=2026-03-01&end=2026-03-31", filters=[], format="csv", file_name="register.csv",
    )  # fmt: skip
    Export.objects.filter(pk=export.pk).update(status=Export.Status.RUNNING, updated_at=timezone.now())
    export_run(export_id=export.pk)
    export.refresh_from_db()
    assert (export.status, bool(export.file), stored_files(export), mailoutbox) == ("running", False, [], [])

    # A run with no progress for EXPORT_STALLED_AFTER_MINUTES died with its worker: the next delivery takes over.
    stalled = timezone.now() - timedelta(minutes=django_settings.EXPORT_STALLED_AFTER_MINUTES + 1)
    Export.objects.filter(pk=export.pk).update(updated_at=stalled, rows_written=4)
    export_run(export_id=export.pk)
    export.refresh_from_db()
    assert (export.status, export.rows_written, len(stored_files(export)), len(mailoutbox)) == ("done", 7, 1, 1)


# Failures.


def test_a_failed_export_says_why_on_its_page_and_in_its_email(
    client, make_user, march, django_capture_on_commit_callbacks, mailoutbox
):
    sales = make_user(Role.SALES)
    ask(client, sales, register_url(export="xlsx"), django_capture_on_commit_callbacks, execute=False)
    export = Export.objects.get()
    sales.groups.clear()  # no longer allowed to open the report when the worker gets to it
    export_run(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == Export.Status.FAILED and not export.file
    assert export.error == "Since it was asked for, its owner may no longer open the invoice register."
    client.force_login(make_user(Role.ADMIN, is_superuser=True))
    page = client.get(export_page(export)).content.decode()
    assert "Failed" in page and export.error in page
    (message,) = mailoutbox
    assert message.subject == "Your export failed: Invoice register (XLSX)" and export.error in message.body


def test_an_error_while_writing_fails_the_export_and_keeps_no_file(finance_user, march, monkeypatch, mailoutbox):
    export = service.export_start(
        actor=finance_user, source="report:invoice-register", title="Invoice register",
        query="start=2026-03-01&end=2026-03-31", filters=[], format="xlsx", file_name="register.xlsx",
    )  # fmt: skip

    def broken(table, kind, file):
        raise OSError("No space left on device")

    monkeypatch.setattr(service.exports, "write_table", broken)
    export_run(export_id=export.pk)
    export.refresh_from_db()
    assert (export.status, export.error, stored_files(export)) == ("failed", "OSError: No space left on device", [])
    assert len(mailoutbox) == 1


# Admin lists.


def test_a_long_admin_list_is_exported_in_the_background_as_filtered(
    client, finance_user, march, django_capture_on_commit_callbacks, mailoutbox
):
    other = CustomerFactory(name="Other", currency="EUR")
    make_invoice(other, "INV-OTHER", issued="2026-03-05 10:00", lines=[("5.00", "0", None, "manual")])
    url = reverse("admin:ledger_invoice_changelist") + f"?customer__id__exact={march.pk}&status__exact=issued"
    response = ask(client, finance_user, url + "&export=csv", django_capture_on_commit_callbacks)

    export = Export.objects.get()
    assert response["Location"] == export_page(export)
    assert (export.source, export.title, export.status) == ("list:ledger.invoice", "Invoices", "done")
    assert ["Status", "Issued"] in export.filters and ["Customer", str(march)] in export.filters
    rows = list(csv.reader(io.StringIO(b"".join(client.get(export_page(export, "download"))).decode())))
    assert rows[0][:2] == ["Invoice", "Customer"]
    assert sorted(row[0] for row in rows[1:]) == [f"INV-X-{day}" for day in range(2, 8)]
    assert export.rows_written == 6 and len(mailoutbox) == 1


def test_a_short_admin_list_still_downloads_at_once(client, finance_user, march):
    client.force_login(finance_user)
    response = client.get(reverse("admin:ledger_invoice_changelist") + "?export=xlsx&q=INV-X-2")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert not Export.objects.exists()


# Tidying up.


def test_exports_finished_more_than_the_kept_days_ago_are_deleted_with_their_files(finance_user, march, settings):
    settings.EXPORT_KEEP_DAYS = 7
    exports = []
    for _ in range(2):
        export = service.export_start(
            actor=finance_user, source="report:invoice-register", title="Invoice register",
            query="start=2026-03-01&end=2026-03-31", filters=[], format="csv", file_name="register.csv",
        )  # fmt: skip
        export_run(export_id=export.pk)
        exports.append(Export.objects.get(pk=export.pk))
    old, recent = exports
    Export.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))
    lost = Export.objects.create(user=finance_user, source="report:tax", title="Tax report", format="csv")
    Export.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(days=8))  # its task never ran
    assert exports_delete_expired() == 2
    assert list(Export.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not default_storage.exists(old.file.name) and default_storage.exists(recent.file.name)


def test_the_command_deletes_expired_exports_and_says_how_many(finance_user, march):
    export = service.export_start(
        actor=finance_user, source="report:invoice-register", title="Invoice register",
        query="start=2026-03-01&end=2026-03-31", filters=[], format="csv", file_name="register.csv",
    )  # fmt: skip
    export_run(export_id=export.pk)
    out = io.StringIO()
    call_command("delete_expired_exports", "--days", "0", stdout=out)
    assert out.getvalue() == "Deleted 1 export(s) finished more than 0 day(s) ago.\n"
    assert not Export.objects.exists()
    with pytest.raises(CommandError, match="--days -1: expected 0 or more"):
        call_command("delete_expired_exports", "--days", "-1")
