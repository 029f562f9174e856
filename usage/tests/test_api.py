from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import IdempotencyRecord
from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from usage.models import MonthlySummary, Upload, UsageRecord
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/usage/events"


def event(world, **changes) -> dict:
    body = {
        "serviceName": world.service.code,
        "clientId": world.customer.client_id,
        "quantity": "10",
        "serviceTime": "2026-03-10T12:00:00Z",
    }
    return {**body, **changes}


@pytest.fixture
def world(db):
    """A customer priced for one service for the whole of 2026; a second customer and service."""
    customer, other = CustomerFactory(client_id="ACME"), CustomerFactory(client_id="OTHER")
    service, other_service = ServiceFactory(code="kyc_check"), ServiceFactory(code="aml_screen")
    for who in (customer, other):
        for what in (service, other_service):
            PriceAgreementFactory(customer=who, service=what, unit_price=Decimal("0.05"), valid_from=date(2026, 1, 1))
    return SimpleNamespace(customer=customer, other=other, service=service, other_service=other_service)


def make_caller(kind: str, make_user, world):
    roles = {
        "admin": Role.ADMIN,
        "finance": Role.FINANCE,
        "customer_success": Role.CUSTOMER_SUCCESS,
        "sales": Role.SALES,
        "operations": Role.OPERATIONS,
    }
    if kind in roles:
        user = make_user(roles[kind])
        if kind == "customer_success":
            world.customer.csm = user
            world.customer.save()
        return user
    if kind == "portal":
        return PortalMembershipFactory(customer=world.customer).user
    if kind == "no_role":
        return make_user()
    return None


# --- Permissions per role ----------------------------------------------------------------------------------------

CALLERS = ["admin", "finance", "customer_success", "sales", "operations", "portal", "no_role", "anonymous"]
POST_STATUS = [201, 201, 403, 403, 403, 403, 403, 401]
GET_STATUS = [200, 200, 200, 200, 403, 200, 403, 401]


@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, POST_STATUS, strict=True)))
def test_only_finance_and_admin_post_events(caller, expected, make_user, world, client_for):
    client = client_for(make_caller(caller, make_user, world))

    response = client.post(EVENTS_URL, {"events": [event(world)]}, format="json")

    assert response.status_code == expected, response.content
    assert UsageRecord.objects.count() == (1 if expected == 201 else 0)
    if expected >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, GET_STATUS, strict=True)))
def test_who_may_read_usage(caller, expected, make_user, world, client_for):
    client = client_for(make_caller(caller, make_user, world))

    response = client.get("/api/usage")

    assert response.status_code == expected, response.content


# --- POST /api/usage/events --------------------------------------------------------------------------------------


def test_a_good_batch_is_imported_with_snapshot_prices_and_summaries(finance_user, world, client_for):
    events = [event(world, eventId="e-1"), event(world, quantity="2.5", eventId="e-2")]

    response = client_for(finance_user).post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 201, response.content
    upload = Upload.objects.get()
    assert response.json() == {"upload": upload.pk, "status": "imported", "row_count": 2, "imported": 2}
    assert (upload.source, upload.created_by) == (Upload.Source.API, finance_user)
    assert sorted(UsageRecord.objects.values_list("event_id", "quantity", "unit_price")) == [
        ("e-1", Decimal("10"), Decimal("0.05")),
        ("e-2", Decimal("2.5"), Decimal("0.05")),
    ]
    summary = MonthlySummary.objects.get()
    assert (summary.period, summary.quantity, summary.record_count) == (date(2026, 3, 1), Decimal("12.5"), 2)


def test_a_bad_batch_imports_nothing_and_lists_every_bad_event(finance_user, world, client_for):
    events = [
        event(world),
        event(world, quantity="0"),
        event(world, clientId="NOBODY"),
        event(world, serviceTime="yesterday", quantity="x"),
    ]

    response = client_for(finance_user).post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "usage_rejected"
    assert {(row["row"], row["column"]) for row in error["rows"]} == {
        (2, "quantity"),
        (3, "clientId"),
        (4, "quantity"),
        (4, "serviceTime"),
    }
    assert {row["value"] for row in error["rows"]} == {"0", "NOBODY", "x", "yesterday"}
    assert all(row["reason"] for row in error["rows"])
    assert set(error["fields"]) == {
        "events[2].quantity",
        "events[3].clientId",
        "events[4].quantity",
        "events[4].serviceTime",
    }
    assert (error["row_count"], error["error_count"]) == (4, 4)
    assert Upload.objects.get(pk=error["upload"]).status == Upload.Status.FAILED
    assert UsageRecord.objects.count() == 0
    assert MonthlySummary.objects.count() == 0


def test_an_event_id_already_imported_is_refused(finance_user, world, client_for):
    client = client_for(finance_user)
    assert client.post(EVENTS_URL, {"events": [event(world, eventId="e-1")]}, format="json").status_code == 201

    response = client.post(EVENTS_URL, {"events": [event(world, eventId="e-1")]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["rows"][0]["column"] == "eventId"
    assert UsageRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "events"),
        ({"events": []}, "events"),
        ({"events": "not a list"}, "events"),
        ({"events": ["not an object"]}, "events"),
    ],
)
def test_a_malformed_body_is_refused_in_the_standard_format(body, field, finance_user, client_for):
    response = client_for(finance_user).post(EVENTS_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["fields"]
    assert Upload.objects.count() == 0


def test_a_batch_of_more_than_ten_thousand_events_is_refused_naming_the_limit(finance_user, world, client_for):
    events = [event(world)] * 10_001

    response = client_for(finance_user).post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 400
    assert "10,000" in response.json()["error"]["fields"]["events"][0]
    assert Upload.objects.count() == 0


def test_a_batch_of_ten_thousand_events_is_accepted(finance_user, world, client_for):
    events = [event(world, quantity="1", eventId=f"e-{n}") for n in range(10_000)]

    response = client_for(finance_user).post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 201, response.content[:500]
    assert response.json()["imported"] == 10_000
    assert MonthlySummary.objects.get().quantity == Decimal(10_000)


def test_a_replay_with_the_same_key_returns_the_first_response_and_imports_once(finance_user, world, client_for):
    client = client_for(finance_user)
    body = {"events": [event(world)]}

    first = client.post(EVENTS_URL, body, format="json", headers={"Idempotency-Key": "batch-1"})
    second = client.post(EVENTS_URL, body, format="json", headers={"Idempotency-Key": "batch-1"})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotency-Key-Replayed"] == "true"
    assert UsageRecord.objects.count() == 1
    assert Upload.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(finance_user, world, client_for):
    client = client_for(finance_user)
    client.post(EVENTS_URL, {"events": [event(world)]}, format="json", headers={"Idempotency-Key": "batch-1"})

    response = client.post(
        EVENTS_URL, {"events": [event(world, quantity="11")]}, format="json", headers={"Idempotency-Key": "batch-1"}
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert UsageRecord.objects.count() == 1


def test_a_rejected_batch_replays_its_rejection(finance_user, world, client_for):
    client = client_for(finance_user)
    body = {"events": [event(world, quantity="-1")]}

    first = client.post(EVENTS_URL, body, format="json", headers={"Idempotency-Key": "bad-1"})
    second = client.post(EVENTS_URL, body, format="json", headers={"Idempotency-Key": "bad-1"})

    assert first.status_code == second.status_code == 400
    assert second.json() == first.json()
    assert Upload.objects.count() == 1
    assert IdempotencyRecord.objects.get().status_code == 400


# --- GET /api/usage ----------------------------------------------------------------------------------------------

AFTER = datetime(2026, 12, 31, tzinfo=UTC)


def load(world, *events: dict) -> None:
    upload = usage_import_events(actor=None, events=list(events), received_at=AFTER)
    assert upload.status == Upload.Status.IMPORTED, upload.errors


@pytest.fixture
def usage(world):
    load(
        world,
        event(world, quantity="10", serviceTime="2026-03-10T08:00:00Z"),
        event(world, quantity="5", serviceTime="2026-03-10T20:00:00Z"),
        event(world, quantity="1", serviceTime="2026-03-31T23:30:00Z"),
        event(world, quantity="7", serviceTime="2026-04-01T00:30:00Z"),
        event(world, serviceName="aml_screen", quantity="3", serviceTime="2026-03-11T00:00:00Z"),
        event(world, clientId="OTHER", quantity="100", serviceTime="2026-03-10T09:00:00Z"),
    )
    return world


def test_records_are_listed_newest_first_with_their_snapshot(finance_user, usage, client_for):
    response = client_for(finance_user).get("/api/usage")

    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [row["quantity"] for row in rows] == [
        "7.000000",
        "1.000000",
        "3.000000",
        "5.000000",
        "100.000000",
        "10.000000",
    ]
    assert rows[0] | {"id": None, "upload": None} == {
        "id": None,
        "customer": usage.customer.pk,
        "client_id": "ACME",
        "service": "kyc_check",
        "quantity": "7.000000",
        "unit_price": "0.050000",
        "currency": "EUR",
        "service_time": "2026-04-01T00:30:00Z",
        "period": "2026-04-01",
        "event_id": None,
        "upload": None,
    }


def test_records_page_by_cursor(finance_user, usage, client_for):
    client = client_for(finance_user)

    first = client.get("/api/usage?page_size=4").json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 4
    assert len(second["results"]) == 2
    assert second["next"] is None
    assert {row["id"] for row in first["results"]}.isdisjoint(row["id"] for row in second["results"])


def test_page_numbers_and_cursors_are_refused_where_they_would_be_ignored(finance_user, usage, client_for):
    client = client_for(finance_user)
    cursor = parse_qs(urlsplit(client.get("/api/usage?page_size=4").json()["next"]).query)["cursor"][0]

    page_of_records = client.get("/api/usage?page=2")
    cursor_of_totals = client.get(f"/api/usage?group_by=day&cursor={cursor}")
    bad_page_size = client.get("/api/usage?group_by=day&page_size=1001")

    assert page_of_records.status_code == 400
    assert list(page_of_records.json()["error"]["fields"]) == ["page"]
    assert cursor_of_totals.status_code == 400
    assert list(cursor_of_totals.json()["error"]["fields"]) == ["cursor"]
    assert bad_page_size.json()["error"]["fields"] == {"page_size": ["Enter a whole number from 1 to 1000."]}
    assert client.get("/api/usage?group_by=day&page=1&cursor=").status_code == 200


def test_filters_by_customer_service_and_inclusive_days(finance_user, usage, client_for):
    client = client_for(finance_user)

    def quantities(query):
        response = client.get(f"/api/usage?{query}")
        assert response.status_code == 200, response.content
        return sorted(Decimal(row["quantity"]) for row in response.json()["results"])

    assert quantities(f"customer={usage.other.pk}") == [100]
    assert quantities("service=aml_screen") == [3]
    assert quantities("from=2026-03-10&to=2026-03-10") == [5, 10, 100]
    assert quantities("from=2026-03-31&to=2026-03-31") == [1]
    assert quantities("from=2026-04-01") == [7]
    assert quantities("to=2026-03-10") == [5, 10, 100]
    assert quantities("service=unknown") == []


def test_days_are_days_of_the_billing_time_zone(settings, finance_user, world, client_for):
    settings.BILLING_TIME_ZONE = "America/Sao_Paulo"  # UTC-3
    load(world, event(world, quantity="4", serviceTime="2026-04-01T02:00:00Z"))  # 31 March 23:00 local
    client = client_for(finance_user)

    in_march = client.get("/api/usage?from=2026-03-31&to=2026-03-31").json()["results"]
    by_day = client.get("/api/usage?group_by=day").json()["results"]
    by_month = client.get("/api/usage?group_by=month").json()["results"]

    assert [row["quantity"] for row in in_march] == ["4.000000"]
    assert [(row["day"], row["quantity"]) for row in by_day] == [("2026-03-31", "4.000000")]
    assert [(row["period"], row["quantity"]) for row in by_month] == [("2026-03-01", "4.000000")]


def test_group_by_day_totals_per_customer_service_and_day(finance_user, usage, client_for):
    response = client_for(finance_user).get(f"/api/usage?group_by=day&customer={usage.customer.pk}")

    assert response.status_code == 200, response.content
    rows = [
        (row["day"], row["service"], row["quantity"], row["record_count"], row["amount"])
        for row in response.json()["results"]
    ]
    assert rows == [
        ("2026-03-10", "kyc_check", "15.000000", 2, "0.750000"),
        ("2026-03-11", "aml_screen", "3.000000", 1, "0.150000"),
        ("2026-03-31", "kyc_check", "1.000000", 1, "0.050000"),
        ("2026-04-01", "kyc_check", "7.000000", 1, "0.350000"),
    ]


def test_group_by_month_totals_per_customer_service_and_billing_month(finance_user, usage, client_for):
    response = client_for(finance_user).get("/api/usage?group_by=month&from=2026-03-01&to=2026-03-31")

    rows = {(row["customer"], row["service"], row["period"]): row for row in response.json()["results"]}
    assert set(rows) == {
        (usage.customer.pk, "kyc_check", "2026-03-01"),
        (usage.customer.pk, "aml_screen", "2026-03-01"),
        (usage.other.pk, "kyc_check", "2026-03-01"),
    }
    march = rows[(usage.customer.pk, "kyc_check", "2026-03-01")]
    assert (march["quantity"], march["record_count"], march["amount"], march["currency"]) == (
        "16.000000",
        3,
        "0.800000",
        "EUR",
    )
    assert response.json()["count"] == 3


def test_bad_query_parameters_are_refused(finance_user, client_for):
    client = client_for(finance_user)

    for query, field in [
        ("group_by=week", "group_by"),
        ("from=yesterday", "from"),
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("customer=abc", "customer"),
    ]:
        response = client.get(f"/api/usage?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["error"]["fields"], query


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("from=0001-01-01&to=9999-12-31", {"from", "to"}),
        ("to=9999-12-31", {"to"}),
        ("from=0001-01-01", {"from"}),
        ("from=2101-01-01&group_by=day", {"from"}),
        ("from=2026-03-02&to=2026-03-01&group_by=month", {"to"}),
    ],
)
def test_days_out_of_range_or_reversed_answer_400_naming_the_parameter(finance_user, client_for, query, fields):
    response = client_for(finance_user).get(f"/api/usage?{query}")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == fields


def test_the_widest_range_a_filter_may_name_lists_everything(finance_user, usage, client_for):
    response = client_for(finance_user).get("/api/usage?from=1900-01-01&to=2100-12-31")

    assert response.status_code == 200
    assert len(response.json()["results"]) == UsageRecord.objects.count() > 0


# --- Scoping -----------------------------------------------------------------------------------------------------


def test_portal_user_sees_only_their_own_usage(usage, client_for):
    user = PortalMembershipFactory(customer=usage.customer).user
    client = client_for(user)

    listed = client.get("/api/usage").json()["results"]
    grouped = client.get("/api/usage?group_by=month").json()["results"]

    assert {row["customer"] for row in listed} == {usage.customer.pk}
    assert len(listed) == 5
    assert {row["customer"] for row in grouped} == {usage.customer.pk}


@pytest.mark.parametrize("group_by", ["", "day"])
def test_an_explicit_customer_the_caller_cannot_see_answers_404(group_by, usage, client_for, make_user):
    portal = PortalMembershipFactory(customer=usage.customer).user
    csm = make_user(Role.CUSTOMER_SUCCESS)
    CustomerFactory(csm=csm)

    for user in (portal, csm):
        client = client_for(user)
        for customer_id in (usage.other.pk, 999_999):
            response = client.get(f"/api/usage?customer={customer_id}&group_by={group_by}")
            assert response.status_code == 404, response.content
            assert response.json()["error"]["code"] == "not_found"


def test_customer_success_sees_only_their_customers_usage(usage, client_for, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    usage.other.csm = csm
    usage.other.save()

    response = client_for(csm).get("/api/usage")

    assert [row["client_id"] for row in response.json()["results"]] == ["OTHER"]


def test_sales_sees_every_customers_usage(usage, client_for, make_user):
    response = client_for(make_user(Role.SALES)).get("/api/usage")

    assert {row["client_id"] for row in response.json()["results"]} == {"ACME", "OTHER"}


# --- Query counts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "group_by=day", "group_by=month", "customer={customer}&from=2026-03-01"])
@pytest.mark.parametrize("caller", ["finance", "customer_success", "portal"])
def test_usage_reads_take_a_fixed_number_of_queries(
    query, caller, usage, client_for, make_user, django_assert_max_num_queries
):
    client = client_for(make_caller(caller, make_user, usage))
    url = "/api/usage?" + query.format(customer=usage.customer.pk)
    load(usage, *[event(usage, quantity="1", serviceTime=f"2026-03-{day:02d}T10:00:00Z") for day in range(1, 29)])

    # session, user, portal membership, permissions (2), roles, [a CSM's customers], then [customer check], page,
    # [count when grouped]
    with django_assert_max_num_queries(9):
        response = client.get(url)

    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) >= 3


def test_a_nul_byte_in_an_event_is_refused_and_echoed_escaped(finance_user, world, client_for):
    events = [event(world, clientId="ACME\u0000-001"), event(world, eventId="e\u0000-1")]

    response = client_for(finance_user).post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert [(row["row"], row["column"], row["value"]) for row in error["rows"]] == [
        (1, "clientId", "ACME\\x00-001"),
        (2, "eventId", "e\\x00-1"),
    ]
    assert error["fields"]["events[1].clientId"] == ["'ACME\\x00-001' is not a known client id"]
    assert Upload.objects.get(pk=error["upload"]).status == Upload.Status.FAILED
    assert UsageRecord.objects.count() == 0
