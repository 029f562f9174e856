"""Paging the usage record lists (issue 13): every record exactly once, forward and back, through the API's cursor
and the admin's Older/Newer links, also while records are being imported; and a number of queries per list and
role that does not grow with the records."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from usage.admin import UsageRecordAdmin
from usage.models import Upload, UsageRecord
from usage.services import usage_import_events

RECEIVED_AT = datetime(2026, 12, 31, tzinfo=UTC)
ADMIN_LIST = "/admin/usage/usagerecord/"


def events(client_id: str, times: list[str], service: str = "kyc_check") -> list[dict]:
    return [{"serviceName": service, "clientId": client_id, "quantity": "1", "serviceTime": time} for time in times]


def load(*batches: list[dict]) -> None:
    for batch in batches:
        upload = usage_import_events(actor=None, events=batch, received_at=RECEIVED_AT)
        assert upload.status == Upload.Status.IMPORTED, upload.errors


def times(count: int, *, day: int = 10, ties: int = 4) -> list[str]:
    """`count` service times in March 2026, `ties` records sharing each second (ties are what a cursor on the time
    alone gets wrong)."""
    start = datetime(2026, 3, day, 8, tzinfo=UTC)
    return [(start + timedelta(seconds=n // ties)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(count)]


@pytest.fixture
def world(make_user):
    """ACME, looked after by a CSM and with a portal user, and OTHER; one service priced for both in 2026."""
    csm = make_user(Role.CUSTOMER_SUCCESS)
    acme, other = CustomerFactory(client_id="ACME", csm=csm), CustomerFactory(client_id="OTHER")
    service = ServiceFactory(code="kyc_check")
    for customer in (acme, other):
        PriceAgreementFactory(
            customer=customer, service=service, unit_price=Decimal("0.05"), valid_from=date(2026, 1, 1)
        )
    return SimpleNamespace(
        acme=acme,
        other=other,
        service=service,
        users={
            "finance": make_user(Role.FINANCE),
            "customer_success": csm,
            "portal": PortalMembershipFactory(customer=acme).user,
        },
    )


def visible(world, role: str) -> set[int]:
    records = UsageRecord.objects.all()
    if role != "finance":
        records = records.filter(customer=world.acme)
    return set(records.values_list("pk", flat=True))


def newest_first(ids) -> list[int]:
    order = {r.pk: (r.service_time, r.pk) for r in UsageRecord.objects.filter(pk__in=ids)}
    return sorted(ids, key=lambda pk: order[pk], reverse=True)


# --- The API's cursor --------------------------------------------------------------------------------------------


def api_pages(client, url: str, link: str = "next", during=None) -> tuple[list[int], str | None]:
    """Follow `link` from `url` to the end; the ids in the order listed, and the last page's other link."""
    seen, page = [], client.get(url).json()
    while True:
        ids = [row["id"] for row in page["results"]]
        seen += ids if link == "next" else list(reversed(ids))
        if during is not None:
            during()
        if page[link] is None:
            return seen, page["previous" if link == "next" else "next"]
        response = client.get(page[link])
        assert response.status_code == 200, response.content
        page = response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance", "customer_success", "portal"])
def test_the_api_lists_every_record_once_forward_and_back_in_the_lists_order(role, world, client_for):
    load(events("ACME", times(23)), events("OTHER", times(9, ties=3)), events("ACME", times(6, day=20, ties=6)))
    client = client_for(world.users[role])

    forward, back_link = api_pages(client, "/api/usage?page_size=5")
    backward, _ = api_pages(client, back_link, link="previous")

    expected = newest_first(visible(world, role))
    assert forward == expected
    # Back from the last page: every record before it once, in the same order.
    last_page = len(expected) % 5 or 5
    assert backward == list(reversed(expected[:-last_page]))


@pytest.mark.django_db
def test_records_imported_between_pages_are_neither_skipped_nor_repeated(world, client_for):
    """Records arrive while a client pages: some newer than any listed, some older, some at the very second the
    cursor stands on. Every record there at the start is listed once; no record is listed twice."""
    load(events("ACME", times(40, ties=8)))
    before = newest_first(visible(world, "finance"))
    client = client_for(world.users["finance"])
    batches = iter(
        [
            events("ACME", ["2026-03-10T08:00:03Z"] * 3),  # the second of the first page's last rows
            events("ACME", ["2026-04-01T00:00:00Z"] * 2),  # newer than everything listed
            events("OTHER", ["2026-03-10T08:00:02Z", "2026-03-10T08:00:01Z"]),  # older: still to come
            events("ACME", ["2026-02-01T00:00:00Z"]),  # older than everything
        ]
    )

    def import_a_batch():
        batch = next(batches, None)
        if batch:
            load(batch)

    seen, _ = api_pages(client, "/api/usage?page_size=7", during=import_a_batch)

    assert len(seen) == len(set(seen)), "a record was listed twice"
    assert set(before) <= set(seen), "a record there from the start was skipped"
    assert seen == sorted(seen, key=newest_first(seen).index), "not in the list's order"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent imports need PostgreSQL")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_paging_while_another_connection_imports_lists_every_record_once(world, client_for):
    """Another thread (its own connection) imports batches while this one pages through the API and the admin."""
    load(events("ACME", times(60, ties=6)), events("OTHER", times(30, ties=3)))
    before = visible(world, "finance")
    stop = threading.Event()
    failures = []

    def importer():
        try:
            second = 0
            while not stop.is_set():
                moment = datetime(2026, 3, 10, 8, tzinfo=UTC) + timedelta(seconds=second % 20)
                load(events("ACME", [moment.strftime("%Y-%m-%dT%H:%M:%SZ")] * 2))
                second += 3
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=importer)
    thread.start()
    try:
        client = client_for(world.users["finance"])
        api_seen, _ = api_pages(client, "/api/usage?page_size=4")
        admin_seen = admin_pages(client, ADMIN_LIST, per_page=4)
    finally:
        stop.set()
        thread.join()

    assert not failures, failures
    for seen in (api_seen, admin_seen):
        assert len(seen) == len(set(seen)), "a record was listed twice"
        assert before <= set(seen), "a record there from the start was skipped"
    assert UsageRecord.objects.count() > len(before), "nothing was imported meanwhile"


@pytest.mark.django_db
def test_a_cursor_that_is_not_one_answers_404(world, client_for):
    client = client_for(world.users["finance"])
    for cursor in ("bm9wZQ==", "cD0yMDI2LTAzLTEw", "cD1ub3QtYS10aW1lfDE="):  # "nope", "p=2026-03-10", "p=not-a-time|1"
        response = client.get(f"/api/usage?cursor={cursor}")
        assert response.status_code == 404, (cursor, response.content)


# --- The admin's Older and Newer links ---------------------------------------------------------------------------


def admin_pages(client, url: str, *, per_page: int, link: str = "older_url") -> list[int]:
    """Follow the admin list's `link` from `url` to the end; the ids in the order listed."""
    original = UsageRecordAdmin.list_per_page
    UsageRecordAdmin.list_per_page = per_page
    try:
        seen, response = [], client.get(url)
        while True:
            assert response.status_code == 200
            changelist = response.context["cl"]
            ids = [record.pk for record in changelist.result_list]
            seen += ids if link == "older_url" else list(reversed(ids))
            following = getattr(changelist, link)
            if following is None:
                return seen
            response = client.get(ADMIN_LIST + following)
    finally:
        UsageRecordAdmin.list_per_page = original


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["finance", "customer_success"])
def test_the_admin_lists_every_record_once_through_older_and_newer(role, world, client):
    load(events("ACME", times(23)), events("OTHER", times(9, ties=3)), events("ACME", times(6, day=20, ties=6)))
    client.force_login(world.users[role])
    expected = newest_first(visible(world, role))

    older = admin_pages(client, ADMIN_LIST, per_page=5)
    UsageRecordAdmin.list_per_page = 5
    try:
        last = client.get(ADMIN_LIST)
        while last.context["cl"].older_url:
            last = client.get(ADMIN_LIST + last.context["cl"].older_url)
        newer_start = ADMIN_LIST + last.context["cl"].newer_url
    finally:
        UsageRecordAdmin.list_per_page = 100
    newer = admin_pages(client, newer_start, per_page=5, link="newer_url")

    assert older == expected
    last_page = len(expected) % 5 or 5
    assert newer == list(reversed(expected[:-last_page]))


@pytest.mark.django_db
def test_the_admin_counts_up_to_the_cap_and_says_more_than(world, client, monkeypatch):
    monkeypatch.setattr("usage.admin.COUNT_CAP", 10)
    load(events("ACME", times(12)))
    client.force_login(world.users["finance"])

    searched = client.get(ADMIN_LIST, {"q": "ACME"})
    few = client.get(ADMIN_LIST, {"customer__id__exact": world.other.pk})

    assert "more than 10 usage records" in " ".join(searched.content.decode().split())
    assert searched.context["cl"].paginator.count == 11  # counted up to the cap and one more, no further
    assert few.context["cl"].paginator.count_label == "0"


def test_one_customers_list_is_counted_exactly_from_the_daily_usage_past_the_cap(world, client, monkeypatch):
    monkeypatch.setattr("usage.admin.COUNT_CAP", 10)
    load(events("ACME", times(12)))
    client.force_login(world.users["customer_success"])
    filters = {"customer__id__exact": world.acme.pk, "service__id__exact": world.service.pk, "month": "2026-03"}

    with CaptureQueriesContext(connection) as queries:
        listed = client.get(ADMIN_LIST, filters)

    paginator = listed.context["cl"].paginator
    assert (paginator.count, paginator.count_label) == (12, "12")
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"] and "usage_usagerecord" in q["sql"]]
    assert client.get(ADMIN_LIST, {**filters, "month": "2026-02"}).context["cl"].paginator.count == 0


def test_past_the_numbered_pages_an_exact_count_still_offers_older_rows(world, client, monkeypatch):
    monkeypatch.setattr("usage.admin.COUNT_CAP", 10)
    monkeypatch.setattr(UsageRecordAdmin, "list_per_page", 5)
    monkeypatch.setattr("usage.admin.CappedCountPaginator.max_pages", 2)
    load(events("ACME", times(12)))
    client.force_login(world.users["finance"])

    last_numbered = client.get(ADMIN_LIST, {"customer__id__exact": world.acme.pk, "p": 2}).context["cl"]

    assert last_numbered.paginator.count == 12 and last_numbered.paginator.num_pages == 2
    older = client.get(ADMIN_LIST + last_numbered.older_url).context["cl"]
    assert len(older.result_list) == 2


@pytest.mark.django_db
def test_a_before_that_is_not_a_key_is_refused_with_the_admins_redirect(world, client):
    client.force_login(world.users["finance"])
    assert client.get(ADMIN_LIST, {"before": "yesterday"}).status_code == 302


@pytest.mark.django_db
def test_the_month_filter_lists_the_months_records_by_service_time(world, client):
    load(
        events("ACME", ["2026-02-28T23:59:59Z", "2026-03-01T00:00:00Z", "2026-03-31T23:59:59Z", "2026-04-01T00:00:00Z"])
    )
    client.force_login(world.users["finance"])
    listed = client.get(ADMIN_LIST, {"month": "2026-03"}).context["cl"].result_list
    assert [f"{r.service_time:%Y-%m-%d %H:%M:%S}" for r in listed] == ["2026-03-31 23:59:59", "2026-03-01 00:00:00"]
    assert {f"{r.period:%Y-%m}" for r in listed} == {"2026-03"}


# --- Queries per list and role -----------------------------------------------------------------------------------

# Session, user, portal membership, permissions, roles (staff), the customers a CSM sees, [the customer check,
# the service's id], the page. No count: the API's record list pages by cursor.
API_QUERIES = {
    ("finance", ""): 7,
    ("finance", "customer"): 8,
    ("finance", "service"): 8,
    ("customer_success", ""): 8,
    ("customer_success", "customer"): 8,
    ("customer_success", "service"): 9,
    ("portal", ""): 4,
    ("portal", "customer"): 5,
    ("portal", "service"): 5,
}
# Grouped: the page and the count of its groups, from the daily usage or the monthly summaries.
API_QUERIES_GROUPED = {"finance": 8, "customer_success": 9, "portal": 5}


def api_query(world, kind: str) -> str:
    return {"": "", "customer": f"customer={world.acme.pk}", "service": "service=kyc_check&from=2026-03-01"}[kind]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["", "customer", "service"])
@pytest.mark.parametrize("role", ["finance", "customer_success", "portal"])
def test_the_api_record_list_takes_the_same_queries_for_few_and_many_records(role, kind, world, client_for):
    client = client_for(world.users[role])
    load(events("ACME", times(3)), events("OTHER", times(3)))
    url = "/api/usage?page_size=2&" + api_query(world, kind)
    client.get(url)  # warm up what is cached per process

    with CaptureQueriesContext(connection) as few:
        first = client.get(url).json()
    with CaptureQueriesContext(connection) as few_next:
        client.get(first["next"])
    load(events("ACME", times(40, day=5)), events("OTHER", times(40, day=5)))
    with CaptureQueriesContext(connection) as many:
        first = client.get(url).json()
    with CaptureQueriesContext(connection) as many_next:
        client.get(first["next"])

    assert len(few) == len(many) == len(few_next) == len(many_next) == API_QUERIES[(role, kind)], [
        q["sql"] for q in many
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("group_by", ["day", "day&from=2026-03-01&to=2026-03-31", "month", "month&from=2026-03-05"])
@pytest.mark.parametrize("role", ["finance", "customer_success", "portal"])
def test_the_api_totals_take_the_same_queries_for_few_and_many_records(role, group_by, world, client_for):
    """Totals come from the daily usage (by day, by part of a month) or the monthly summaries (by whole months):
    a fixed number of queries, none of them on the records, however many there are."""
    client = client_for(world.users[role])
    load(events("ACME", times(3)), events("OTHER", times(3)))
    url = f"/api/usage?group_by={group_by}"
    client.get(url)

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    load(
        events("ACME", times(40, day=5)),
        events("ACME", [*(f"2026-03-{day:02d}T12:00:00Z" for day in range(1, 32)), "2026-05-02T00:00:00Z"]),
        events("OTHER", ["2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", *times(20, day=20, ties=1)]),
    )
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)

    assert response.status_code == 200
    assert response.json()["count"] > 1
    assert len(few) == len(many) == API_QUERIES_GROUPED[role], [q["sql"] for q in many]
    assert not [q["sql"] for q in few.captured_queries + many.captured_queries if "usage_usagerecord" in q["sql"]]


# Session, user, portal membership, permissions (2), roles (3: list scope, month filter, customer filter), the
# customers a CSM sees, services for their filter, months for theirs, the capped count, the page; [the newer link].
ADMIN_QUERIES = {"finance": 12, "customer_success": 14}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["", "customer", "service", "month", "older"],
)
@pytest.mark.parametrize("role", ["finance", "customer_success"])
def test_the_admin_record_list_takes_the_same_queries_for_few_and_many_records(role, query, world, client):
    client.force_login(world.users[role])
    load(events("ACME", times(3)), events("OTHER", times(3)))
    params = {
        "": {},
        "customer": {"customer__id__exact": world.acme.pk},
        "service": {"service__id__exact": world.service.pk},
        "month": {"month": "2026-03"},
        "older": {"before": "2026-03-10T08:00:01+00:00|999999"},
    }[query]
    client.get(ADMIN_LIST, params)

    with CaptureQueriesContext(connection) as few:
        assert client.get(ADMIN_LIST, params).status_code == 200
    load(events("ACME", times(40, day=5)), events("OTHER", times(40, day=5)))
    with CaptureQueriesContext(connection) as many:
        assert client.get(ADMIN_LIST, params).status_code == 200

    expected = ADMIN_QUERIES[role] + (query == "older")
    # One customer: its exact count from the daily usage (a CSM's scope read again for it) and the filter's choice.
    expected += (query == "customer") * (3 if role == "finance" else 4)
    # PostgreSQL: Finance's list of every customer also reads the table's row estimate (pg_class).
    expected += connection.vendor == "postgresql" and role == "finance" and query in {"", "service"}
    assert len(few) == len(many) == expected, [q["sql"] for q in many]
