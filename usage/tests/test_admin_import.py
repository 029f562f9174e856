from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage.models import Upload, UsageRecord

pytestmark = pytest.mark.django_db
URL = "/admin/usage/usagerecord/import/"
HEADER = "serviceName,clientId,quantity,serviceTime\n"


@pytest.fixture(autouse=True)
def catalog():
    PriceAgreementFactory(
        customer=CustomerFactory(client_id="ACME-001"),
        service=ServiceFactory(code="kyc_basic"),
        valid_from=date(2026, 1, 1),
    )


def post_import(client, content: str):
    upload = SimpleUploadedFile("usage.csv", content.encode(), content_type="text/csv")
    return client.post(URL, {"import_file": upload, "format": "0", "resource": "0"})


def test_the_import_page_goes_through_the_usage_pipeline(client, make_user):
    client.force_login(make_user(Role.FINANCE))
    assert client.get(URL).status_code == 200

    response = post_import(client, HEADER + "kyc_basic,ACME-001,3,2026-10-03T10:00:00Z\n")

    upload = Upload.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/upload/{upload.pk}/result/")
    assert (upload.source, upload.status) == (Upload.Source.ADMIN_IMPORT, Upload.Status.IMPORTED)
    assert UsageRecord.objects.get().quantity == 3


def test_a_bad_row_through_the_import_page_writes_nothing(client, make_user):
    client.force_login(make_user(Role.FINANCE))
    post_import(
        client, HEADER + "kyc_basic,ACME-001,3,2026-10-03T10:00:00Z\nkyc_basic,ACME-001,-1,2026-10-03T10:00:00Z\n"
    )

    upload = Upload.objects.get()
    assert upload.status == Upload.Status.FAILED
    assert upload.errors == [{"row": 3, "column": "quantity", "value": "-1", "reason": "must be positive"}]
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_only_importers_may_use_the_import_page(client, make_user, role):
    client.force_login(make_user(role))
    assert post_import(client, HEADER + "kyc_basic,ACME-001,3,2026-10-03T10:00:00Z\n").status_code == 403
    assert not Upload.objects.exists()
