"""The admin upload page, its result page and the error report: who may use them and what they show."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from usage.models import MonthlySummary, Upload, UsageRecord

pytestmark = pytest.mark.django_db

UPLOAD_URL = "/admin/usage/upload/new/"
GOOD_CSV = (
    b"serviceName,clientId,quantity,serviceTime,note\r\n"
    b"kyc_check,ACME-1,3,2026-10-05T10:00:00Z,first\r\n"
    b"kyc_check,ACME-1,2,2026-10-06T10:00:00Z,second\r\n"
    b"kyc_check,GLOBEX-1,1,2026-10-07T10:00:00Z,third\r\n"
)
BAD_CSV = (
    b"serviceName,clientId,quantity,serviceTime\n"
    b"kyc_check,ACME-1,3,2026-10-05T10:00:00Z\n"
    b"no_such_service,ACME-1,1,2026-10-05T10:00:00Z\n"
    b"kyc_check,NOBODY,1,2026-10-05T10:00:00Z\n"
    b"kyc_check,ACME-1,=2+3,2026-10-05T10:00:00Z\n"
)


@pytest.fixture
def catalog():
    service = ServiceFactory(code="kyc_check")
    for client_id in ["ACME-1", "GLOBEX-1"]:
        PriceAgreementFactory(customer=CustomerFactory(client_id=client_id), service=service)
    return service


def csv_file(content: bytes, name: str = "usage.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def post_file(client, content: bytes, name: str = "usage.csv", **data):
    return client.post(UPLOAD_URL, {"file": csv_file(content, name), **data})


@pytest.mark.parametrize("role", [Role.FINANCE, Role.ADMIN])
def test_finance_and_admin_open_the_upload_page(client, make_user, role):
    client.force_login(make_user(role))
    response = client.get(UPLOAD_URL)
    assert response.status_code == 200
    assert b'id="drop-zone"' in response.content
    assert b'type="file"' in response.content
    assert b"Upload usage" in response.content  # the sidebar entry of the unfold base template


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_other_staff_are_refused_the_upload_page(client, make_user, role, catalog):
    client.force_login(make_user(role))
    assert client.get(UPLOAD_URL).status_code == 403
    assert post_file(client, GOOD_CSV).status_code == 403
    assert not Upload.objects.exists()


def test_a_portal_user_is_sent_to_the_admin_login(client, portal_user):
    client.force_login(portal_user)
    response = client.get(UPLOAD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_good_file_is_imported_and_the_result_page_shows_rows_and_warnings(client, finance_user, catalog):
    client.force_login(finance_user)
    response = post_file(client, GOOD_CSV, "october.csv")

    upload = Upload.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:usage_upload_result", args=[upload.pk])
    assert (upload.status, upload.source, upload.created_by) == (
        Upload.Status.IMPORTED,
        Upload.Source.UPLOAD,
        finance_user,
    )
    assert UsageRecord.objects.count() == 3
    assert sorted(MonthlySummary.objects.values_list("customer__client_id", "quantity", "record_count")) == [
        ("ACME-1", 5, 2),
        ("GLOBEX-1", 1, 1),
    ]

    page = client.get(response["Location"]).content.decode()
    assert "Imported 3 rows in" in page
    assert "note" in page  # the extra column's warning
    assert 'id="upload-errors"' not in page


def test_a_bad_file_writes_nothing_and_its_errors_are_shown_with_the_report_link(client, finance_user, catalog):
    client.force_login(finance_user)
    response = post_file(client, BAD_CSV, "bad.csv")

    upload = Upload.objects.get()
    assert upload.status == Upload.Status.FAILED
    assert not UsageRecord.objects.exists()
    assert not MonthlySummary.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Nothing was imported: 3 errors in 4 rows" in page
    assert "<td>3</td><td>serviceName</td><td>no_such_service</td><td>is not a known service code</td>" in page
    assert "<td>4</td><td>clientId</td><td>NOBODY</td>" in page
    assert reverse("admin:usage_upload_errors", args=[upload.pk]) in page


def test_an_oversize_file_is_refused_with_a_clear_message(client, finance_user, catalog, settings):
    settings.USAGE_UPLOAD_MAX_BYTES = 100
    client.force_login(finance_user)
    response = post_file(client, GOOD_CSV + b"kyc_check,ACME-1,1,2026-10-08T10:00:00Z,x\n" * 3)

    assert response.status_code == 200
    assert "the upload page takes up to 100\xa0bytes" in response.content.decode()
    assert "manage.py import_usage" in response.content.decode()
    assert not Upload.objects.exists()


def test_the_size_limit_is_a_setting_read_from_the_environment():
    from django.conf import settings

    assert settings.USAGE_UPLOAD_MAX_BYTES == 10 * 1024 * 1024


def test_a_duplicate_file_is_refused_then_imported_when_forced(client, finance_user, catalog):
    client.force_login(finance_user)
    post_file(client, GOOD_CSV)

    refused = post_file(client, GOOD_CSV, "again.csv")
    assert refused.status_code == 409
    assert "Duplicate content." in refused.content.decode()
    assert "already imported" in refused.content.decode()
    assert Upload.objects.count() == 1
    assert UsageRecord.objects.count() == 3

    forced = post_file(client, GOOD_CSV, "again.csv", force="on")
    assert forced.status_code == 302
    upload = Upload.objects.latest("pk")
    assert (upload.status, upload.forced) == (Upload.Status.IMPORTED, True)
    assert UsageRecord.objects.count() == 6
    assert MonthlySummary.objects.get(customer__client_id="ACME-1").record_count == 4


def test_a_request_without_a_file_is_a_form_error(client, finance_user):
    client.force_login(finance_user)
    response = client.post(UPLOAD_URL, {})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_the_error_report_is_a_csv_of_row_column_value_reason(client, finance_user, catalog):
    client.force_login(finance_user)
    post_file(client, BAD_CSV, "bad.csv")
    upload = Upload.objects.get()

    response = client.get(reverse("admin:usage_upload_errors", args=[upload.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="bad-errors-{upload.pk}.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1] == ["3", "serviceName", "no_such_service", "is not a known service code"]
    assert rows[2][:3] == ["4", "clientId", "NOBODY"]
    assert rows[3][:3] == ["5", "quantity", "'=2+3"]  # a formula from the file is shown, never run
    assert len(rows) == 1 + upload.error_count


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_the_result_page_and_error_report_need_the_permission_to_view_uploads(client, make_user, role, finance_user):
    upload = Upload.objects.create(source=Upload.Source.UPLOAD, original_name="x.csv", status=Upload.Status.FAILED)
    client.force_login(make_user(role))
    assert client.get(reverse("admin:usage_upload_result", args=[upload.pk])).status_code == 403
    assert client.get(reverse("admin:usage_upload_errors", args=[upload.pk])).status_code == 403


def test_an_unknown_upload_answers_404(client, finance_user):
    client.force_login(finance_user)
    assert client.get(reverse("admin:usage_upload_result", args=[999])).status_code == 404
    assert client.get(reverse("admin:usage_upload_errors", args=[999])).status_code == 404


def test_the_error_report_of_a_portal_user_is_the_admin_login(client):
    upload = Upload.objects.create(source=Upload.Source.UPLOAD, original_name="x.csv", status=Upload.Status.FAILED)
    client.force_login(PortalMembershipFactory().user)
    response = client.get(reverse("admin:usage_upload_errors", args=[upload.pk]))
    assert response.status_code == 302


NUL_CSV = b"serviceName,clientId,quantity,serviceTime\nkyc_check,ACME\x00-001,1,2026-10-05T10:00:00Z\n"


def test_a_nul_byte_in_a_field_is_refused_and_shown_escaped_on_the_result_page_and_in_the_report(
    client, finance_user, catalog
):
    client.force_login(finance_user)

    response = post_file(client, NUL_CSV, "nul.csv")

    assert response.status_code == 302
    upload = Upload.objects.get()
    assert (upload.status, upload.error_count) == (Upload.Status.FAILED, 1)
    assert not UsageRecord.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "<td>2</td><td>clientId</td><td>ACME\\x00-001</td><td>is not a known client id</td>" in page
    report = client.get(reverse("admin:usage_upload_errors", args=[upload.pk])).content.decode()
    assert list(csv.reader(io.StringIO(report)))[1] == ["2", "clientId", "ACME\\x00-001", "is not a known client id"]


def test_the_error_report_escapes_control_characters_kept_before_they_were_escaped(client, finance_user):
    upload = Upload.objects.create(
        source=Upload.Source.UPLOAD,
        original_name="old\x1b.csv",
        status=Upload.Status.FAILED,
        error_count=1,
        errors=[{"row": 2, "column": "clientId", "value": "ACME\x1b[31m", "reason": "is not a known client id"}],
    )
    client.force_login(finance_user)

    response = client.get(reverse("admin:usage_upload_errors", args=[upload.pk]))

    assert response["Content-Disposition"] == f'attachment; filename="old\\\\x1b-errors-{upload.pk}.csv"'
    assert list(csv.reader(io.StringIO(response.content.decode())))[1][2] == "ACME\\x1b[31m"
