"""A background export (reports.services.exports) on a real Celery worker on Redis against PostgreSQL: the page
queues it, the worker writes it and emails its owner once. Needs REDIS_URL and PostgreSQL; skips without them."""

import io

import pytest
from django.core.files.storage import default_storage
from openpyxl import load_workbook

from billing_project import settings_test
from ledger.tests.test_worker import needs_postgres, needs_redis, wait_for
from orders.tests.test_digest_worker import emails_written, worker_with_mail_files  # noqa: F401 (a fixture)
from reports.models import Export
from reports.tests.test_background_exports import export_page, march, register_url  # noqa: F401 (a fixture)


@needs_redis
@needs_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_the_export_and_emails_once(client, finance_user, settings, request):
    worker, log, mail_dir = request.getfixturevalue("worker_with_mail_files")  # orders' worker, its emails in files
    request.getfixturevalue("march")  # seven rows of the invoice register
    settings.EXPORT_BACKGROUND_ROWS = 3
    settings.MEDIA_ROOT = settings_test.MEDIA_ROOT  # where the worker, on the test settings, writes
    client.force_login(finance_user)
    response = client.get(register_url(export="xlsx"))
    export = Export.objects.get()
    assert response["Location"] == export_page(export)
    done = wait_for(
        lambda: Export.objects.filter(pk=export.pk, status=Export.Status.DONE, emailed_at__isnull=False).first(),
        timeout=60,
        what="the export to be written",
        worker=worker,
        log=log,
    )
    assert (done.rows_written, done.total_rows) == (7, 7)
    sheet = load_workbook(io.BytesIO(client.get(export_page(export, "download")).getvalue())).active
    assert sheet.max_row == 1 + 7 + 1
    (message,) = emails_written(mail_dir)
    assert message["Subject"] == "Your export is ready: Invoice register (XLSX)"
    default_storage.delete(done.file.name)
