"""The usage admin: who sees which lists, scoping to a CSM's customers, read-only lists, filters and query counts."""

import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage import admin as usage_admin
from usage.admin import EstimatedCountPaginator
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord
from usage.selectors import estimated_row_count
from usage.services import usage_import_file

pytestmark = pytest.mark.django_db

CHANGELISTS = {
    "upload": "/admin/usage/upload/",
    "usagerecord": "/admin/usage/usagerecord/",
    "monthlysummary": "/admin/usage/monthlysummary/",
    "closedperiod": "/admin/usage/closedperiod/",
}
RECEIVED_AT = datetime(2026, 11, 15, tzinfo=UTC)
# Session, user, portal membership, permissions (2), roles (3: list scope, month filter, customer filter),
# services for their filter, months for theirs, count, page. PostgreSQL also reads the row estimate.
LIST_QUERIES = 12


def import_rows(rows: list[str], name: str = "usage.csv") -> Upload:
    content = "serviceName,clientId,quantity,serviceTime\n" + "\n".join(rows) + "\n"
    upload = usage_import_file(
        actor=None, stream=io.BytesIO(content.encode()), name=name, keep_file=False, received_at=RECEIVED_AT
    )
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    return upload


@pytest.fixture
def catalog(make_user):
    """Two customers, ACME looked after by a CSM, with records in October and November 2026."""
    csm = make_user(Role.CUSTOMER_SUCCESS)
    acme = CustomerFactory(name="Acme Verification", client_id="ACME-1", csm=csm)
    globex = CustomerFactory(name="Globex Screening", client_id="GLOBEX-1")
    kyc, aml = ServiceFactory(code="kyc_check"), ServiceFactory(code="aml_screen")
    for customer in (acme, globex):
        for service in (kyc, aml):
            PriceAgreementFactory(customer=customer, service=service)
    import_rows(
        [
            "kyc_check,ACME-1,1,2026-10-05T10:00:00Z",
            "aml_screen,ACME-1,2,2026-11-05T10:00:00Z",
            "kyc_check,GLOBEX-1,4,2026-10-06T10:00:00Z",
        ]
    )
    return {"csm": csm, "acme": acme, "globex": globex, "kyc": kyc, "aml": aml}


def record_ids(response) -> set[int]:
    return {record.pk for record in response.context["cl"].result_list}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE])
def test_finance_and_admin_open_every_usage_list(client, make_user, role, catalog):
    client.force_login(make_user(role))
    for url in CHANGELISTS.values():
        assert client.get(url).status_code == 200, url
    assert len(record_ids(client.get(CHANGELISTS["usagerecord"]))) == 3


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES])
def test_cs_and_sales_read_records_and_summaries_but_not_uploads_or_closed_periods(client, make_user, role):
    client.force_login(make_user(role))
    assert client.get(CHANGELISTS["usagerecord"]).status_code == 200
    assert client.get(CHANGELISTS["monthlysummary"]).status_code == 200
    assert client.get(CHANGELISTS["upload"]).status_code == 403
    assert client.get(CHANGELISTS["closedperiod"]).status_code == 403


def test_operations_see_no_usage(client, make_user):
    client.force_login(make_user(Role.OPERATIONS))
    for url in CHANGELISTS.values():
        assert client.get(url).status_code == 403, url


def test_portal_users_are_sent_to_the_admin_login(client, portal_user):
    client.force_login(portal_user)
    for url in CHANGELISTS.values():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")


def test_a_csm_reads_only_their_customers_records_and_summaries(client, catalog):
    client.force_login(catalog["csm"])
    acme_records = set(UsageRecord.objects.filter(customer=catalog["acme"]).values_list("pk", flat=True))

    assert record_ids(client.get(CHANGELISTS["usagerecord"])) == acme_records
    summaries = client.get(CHANGELISTS["monthlysummary"]).context["cl"].result_list
    assert {summary.customer_id for summary in summaries} == {catalog["acme"].pk}
    globex_record = UsageRecord.objects.filter(customer=catalog["globex"]).first()
    response = client.get(reverse("admin:usage_usagerecord_change", args=[globex_record.pk]))
    assert response.status_code == 302  # the admin's answer to an object outside the queryset: back to the list
    assert UsageRecord.objects.count() == 3


def test_a_csm_filtering_by_another_customer_sees_neither_its_records_nor_its_name(client, catalog):
    client.force_login(catalog["csm"])
    response = client.get(CHANGELISTS["usagerecord"], {"customer__id__exact": catalog["globex"].pk})
    assert record_ids(response) == set()
    assert "Globex" not in response.content.decode()


def test_sales_read_every_customers_records(client, make_user, catalog):
    client.force_login(make_user(Role.SALES))
    assert len(record_ids(client.get(CHANGELISTS["usagerecord"]))) == 3


def test_records_filter_by_customer_service_and_month(client, finance_user, catalog):
    client.force_login(finance_user)
    url = CHANGELISTS["usagerecord"]
    by_customer = client.get(url, {"customer__id__exact": catalog["acme"].pk})
    assert {r.customer_id for r in by_customer.context["cl"].result_list} == {catalog["acme"].pk}
    assert len(record_ids(by_customer)) == 2
    by_service = client.get(url, {"service__id__exact": catalog["kyc"].pk})
    assert len(record_ids(by_service)) == 2
    by_month = client.get(url, {"month": "2026-11"})
    assert [(r.customer_id, f"{r.period:%Y-%m}") for r in by_month.context["cl"].result_list] == [
        (catalog["acme"].pk, "2026-11")
    ]
    assert "2026-10" in by_month.content.decode()  # offered as a month to pick
    assert client.get(url, {"month": "October"}).status_code == 302  # a bad value: the admin's ?e=1 redirect


@pytest.mark.parametrize("model", ["upload", "usagerecord", "monthlysummary", "closedperiod"])
def test_usage_lists_are_read_only_even_for_admins(client, admin_user, catalog, model):
    client.force_login(admin_user)
    assert client.get(f"/admin/usage/{model}/add/").status_code == 403
    changelist = client.get(CHANGELISTS[model])
    assert changelist.context["has_add_permission"] is False
    assert changelist.context["action_form"] is None  # no actions, so no bulk delete


def test_a_record_cannot_be_changed_or_deleted_through_the_admin(client, admin_user, catalog):
    client.force_login(admin_user)
    record = UsageRecord.objects.first()
    change_url = reverse("admin:usage_usagerecord_change", args=[record.pk])
    assert client.get(change_url).status_code == 200  # viewed, read-only
    client.post(change_url, {"quantity": "99"})
    assert client.post(reverse("admin:usage_usagerecord_delete", args=[record.pk])).status_code == 403
    record.refresh_from_db()
    assert record.quantity == 1


def test_upload_history_shows_who_what_and_the_error_report_link(client, finance_user, catalog):
    failed = usage_import_file(
        actor=finance_user,
        stream=io.BytesIO(b"serviceName,clientId,quantity,serviceTime\nnope,ACME-1,1,2026-10-05T10:00:00Z\n"),
        name="broken.csv",
        keep_file=False,
        received_at=RECEIVED_AT,
    )
    client.force_login(finance_user)
    page = client.get(CHANGELISTS["upload"]).content.decode()
    assert "broken.csv" in page
    assert "usage.csv" in page
    assert reverse("admin:usage_upload_errors", args=[failed.pk]) in page
    assert reverse("admin:usage_upload_new") in page  # the "Upload usage" button


def test_closed_periods_are_listed_for_finance(client, finance_user, catalog):
    ClosedPeriod.objects.create(customer=catalog["globex"], period=datetime(2026, 9, 1).date())
    client.force_login(finance_user)
    page = client.get(CHANGELISTS["closedperiod"]).content.decode()
    assert "September 2026" in page
    assert "Globex Screening" in page


def test_the_record_list_issues_the_same_queries_for_3_and_30_records(client, finance_user, catalog):
    client.force_login(finance_user)
    url = CHANGELISTS["usagerecord"]
    client.get(url)  # warm up what is cached per process (content types, site)

    with CaptureQueriesContext(connection) as few:
        assert len(record_ids(client.get(url))) == 3
    import_rows([f"kyc_check,GLOBEX-1,1,2026-10-{day:02d}T10:00:00Z" for day in range(1, 28)], name="more.csv")
    with CaptureQueriesContext(connection) as many:
        assert len(record_ids(client.get(url))) == 30

    assert len(many) == len(few), [query["sql"] for query in many]


@pytest.mark.parametrize("records", [3, 30])
def test_the_record_list_query_count_is_pinned(client, finance_user, catalog, django_assert_max_num_queries, records):
    if records > 3:
        import_rows([f"kyc_check,GLOBEX-1,1,2026-10-{day:02d}T10:00:00Z" for day in range(1, 28)], name="more.csv")
    client.force_login(finance_user)
    with django_assert_max_num_queries(LIST_QUERIES + (connection.vendor == "postgresql")):
        response = client.get(CHANGELISTS["usagerecord"])
    assert len(record_ids(response)) == records


@pytest.mark.parametrize("records", [3, 30])
def test_the_summary_list_query_count_is_pinned(client, finance_user, catalog, django_assert_max_num_queries, records):
    if records > 3:
        import_rows([f"kyc_check,ACME-1,1,2026-{month:02d}-05T10:00:00Z" for month in range(2, 10)], name="more.csv")
    client.force_login(finance_user)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(CHANGELISTS["monthlysummary"])
    assert len(response.context["cl"].result_list) == MonthlySummary.objects.count()


def test_the_paginator_takes_the_estimate_for_a_big_unfiltered_table_and_counts_a_filtered_one(monkeypatch, catalog):
    monkeypatch.setattr(usage_admin, "estimated_row_count", lambda model: 5_000_000)
    assert EstimatedCountPaginator(UsageRecord.objects.order_by("pk"), 100).count == 5_000_000
    filtered = UsageRecord.objects.filter(customer=catalog["acme"]).order_by("pk")
    assert EstimatedCountPaginator(filtered, 100).count == 2


def test_the_paginator_counts_exactly_when_the_estimate_is_small_or_missing(monkeypatch, catalog):
    for estimate in (None, 10):
        monkeypatch.setattr(usage_admin, "estimated_row_count", lambda model, estimate=estimate: estimate)
        assert EstimatedCountPaginator(UsageRecord.objects.order_by("pk"), 100).count == 3


def test_the_row_estimate_reads_postgresql_statistics(catalog):
    if connection.vendor != "postgresql":
        assert estimated_row_count(UsageRecord) is None
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {UsageRecord._meta.db_table}")
    assert estimated_row_count(UsageRecord) == 3


@pytest.mark.parametrize(
    ("query", "day"),
    [
        ("created_at__year=9999&created_at__month=12&created_at__day=31", "9999-12-31"),
        ("created_at__year=9999", "9999-01-01"),
        ("created_at__year=1&created_at__month=1", "0001-01-01"),
    ],
)
def test_an_upload_history_date_out_of_range_shows_the_whole_list_with_a_message(client, finance_user, query, day):
    client.force_login(finance_user)

    response = client.get(f"{CHANGELISTS['upload']}?{query}", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith("?e=1")
    page = response.content.decode()
    assert f"Date filter {day}: Enter a day from 1900-01-01 to 2100-12-31." in page
    assert page.count("Enter a day from") == 1  # said once, though the first and last day are both out of range


def test_an_upload_history_date_in_range_filters_by_it(client, finance_user):
    Upload.objects.create(source=Upload.Source.UPLOAD, original_name="november.csv", status=Upload.Status.IMPORTED)
    client.force_login(finance_user)
    today = Upload.objects.get().created_at

    shown = client.get(CHANGELISTS["upload"], {"created_at__year": today.year, "created_at__month": today.month})
    hidden = client.get(CHANGELISTS["upload"], {"created_at__year": 2100, "created_at__month": 12})

    assert list(shown.context["cl"].result_list) == list(Upload.objects.all())
    assert list(hidden.context["cl"].result_list) == []
