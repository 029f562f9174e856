"""The settlements API: the list with its filters, one settlement with its calculation and approval, approving and
rejecting through approvals (maker-checker), calculating an order again, the orders' settlement status, and the
roles that see none of it."""

from datetime import date
from decimal import Decimal as D

import pytest

from accounts.roles import Role
from catalog.tests.factories import PartnerFactory
from ledger.models import Transaction
from orders.models import Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.tests.settlement_world import example_order, settlement_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def maker(make_user):
    return make_user(Role.FINANCE, email="maker@x.example")


@pytest.fixture
def checker(make_user):
    return make_user(Role.FINANCE, email="checker@x.example")


@pytest.fixture
def order(maker):
    return example_order(maker)


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["order"] for row in response.json()["results"]}


def test_the_list_filters_by_partner_status_currency_and_order(client_for, checker, maker, order):
    other = example_order(maker, percentage="10", currency="GBP")
    client = client_for(checker)
    assert client.post(f"/api/settlements/{settlement_of(other).pk}/approve", {}, format="json").status_code == 200

    assert ids(client.get("/api/settlements")) == {order.pk, other.pk}
    assert ids(client.get("/api/settlements", {"partner": order.partner_id})) == {order.pk}
    assert ids(client.get("/api/settlements", {"status": "approved"})) == {other.pk}
    assert ids(client.get("/api/settlements", {"status": ["approved", "calculated"]})) == {order.pk, other.pk}
    assert ids(client.get("/api/settlements", {"currency": "GBP"})) == {other.pk}
    assert ids(client.get("/api/settlements", {"order": order.pk})) == {order.pk}
    assert ids(client.get("/api/settlements", {"from": "2020-01-01", "to": "2020-12-31"})) == set()
    bad = client.get("/api/settlements", {"status": "settled"})
    assert bad.status_code == 400 and bad.json()["error"]["fields"].keys() == {"status"}


def test_a_row_and_the_detail_with_its_calculation(client_for, checker, order):
    settlement = settlement_of(order)
    client = client_for(checker)
    (row,) = client.get("/api/settlements").json()["results"]
    assert row | {"calculated_at": None} == row | {
        "id": settlement.pk,
        "order_number": order.number,
        "partner_name": order.partner.name,
        "kind": "settlement",
        "sequence": 1,
        "status": "calculated",
        "currency": "EUR",
        "net": "970.00",
        "percentage": "30.00",
        "share": "291.00",
        "amount": "291.00",
        "calculated_at": None,
    }

    detail = client.get(f"/api/settlements/{settlement.pk}").json()
    assert detail["calculation"]["fee_received"] == "1000.00"
    assert detail["calculation"]["expenses"] == "150.00"
    assert detail["calculation"]["agreement"]["percentage"] == "30.00"
    assert detail["approval"]["status"] == "pending"
    assert detail["approval_allowed"]["approve"] is True
    assert [action["action"] for action in detail["approval_history"]] == ["submitted"]


def test_the_maker_is_refused_403_and_another_finance_user_approves(client_for, api_client, maker, checker, order):
    settlement = settlement_of(order)
    url = f"/api/settlements/{settlement.pk}/approve"

    refused = client_for(maker).post(url, {"comment": "Mine"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "own_submission"
    assert "someone else must decide it (maker-checker)" in refused.json()["error"]["message"]
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED

    api_client.logout()
    approved = client_for(checker).post(url, {"comment": "Checked"}, format="json")
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == checker.email
    assert Transaction.objects.filter(kind=Transaction.Kind.SETTLEMENT, reference=order.number).count() == 1

    again = client_for(checker).post(url, {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


def test_rejecting_needs_a_comment_then_voids_and_a_void_one_cannot_be_approved(client_for, checker, order):
    settlement = settlement_of(order)
    client = client_for(checker)
    url = f"/api/settlements/{settlement.pk}"

    blank = client.post(f"{url}/reject", {}, format="json")
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "comment_required"

    rejected = client.post(f"{url}/reject", {"comment": "Wrong agreement"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "void"

    late = client.post(f"{url}/approve", {}, format="json")
    assert late.status_code == 409
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.VOID


def test_settle_says_nothing_changed_and_returns_the_new_settlement_when_something_did(client_for, checker, order):
    client = client_for(checker)

    unchanged = client.post(f"/api/orders/{order.pk}/settle")
    assert unchanged.status_code == 200
    assert unchanged.json() == {
        "changed": False,
        "message": "Nothing changed: its settlements match its money.",
        "settlement_status": "calculated",
        "settlement": None,
    }

    client.post(f"/api/settlements/{settlement_of(order).pk}/reject", {"comment": "Redo"}, format="json")
    created = client.post(f"/api/orders/{order.pk}/settle")
    body = created.json()
    assert created.status_code == 200 and body["changed"] is True
    assert body["settlement"]["id"] == settlement_of(order).pk
    assert body["settlement"]["amount"] == "291.00"
    assert body["settlement"]["calculated_by"] == checker.email
    assert body["settlement_status"] == "calculated"


def test_settle_explains_why_no_settlement_is_due(client_for, checker, maker):
    order = example_order(maker, partner=PartnerFactory(name="No Deal LLP"))
    body = client_for(checker).post(f"/api/orders/{order.pk}/settle").json()
    assert body["changed"] is False and body["settlement_status"] == "none"
    assert body["message"].startswith("No Deal LLP has no revenue-share agreement for UK company formation")

    revenue_share_agreement_create(actor=None, partner=order.partner, percentage=D("10"), valid_from=date(2026, 1, 1))
    body = client_for(checker).post(f"/api/orders/{order.pk}/settle").json()
    assert body["changed"] is True and body["settlement"]["share"] == "97.00"


def test_orders_show_their_settlement_status_to_finance_only(client_for, api_client, make_user, checker, order):
    finance = client_for(checker)
    assert finance.get(f"/api/orders/{order.pk}").json()["settlement_status"] == "calculated"
    (row,) = [row for row in finance.get("/api/orders").json()["results"] if row["id"] == order.pk]
    assert row["settlement_status"] == "calculated"
    finance.post(f"/api/settlements/{settlement_of(order).pk}/approve", {}, format="json")
    assert finance.get(f"/api/orders/{order.pk}").json()["settlement_status"] == "approved"

    for role in (Role.SALES, Role.OPERATIONS):
        api_client.logout()
        client = client_for(make_user(role))
        assert client.get(f"/api/orders/{order.pk}").json()["settlement_status"] is None
        rows = client.get("/api/orders").json()["results"]
        assert {row["settlement_status"] for row in rows} == {None}


def test_the_order_list_reads_settlement_statuses_in_a_fixed_number_of_queries(
    client_for, checker, maker, order, django_assert_max_num_queries
):
    client = client_for(checker)
    client.get("/api/orders")
    with django_assert_max_num_queries(12) as few:
        client.get("/api/orders")
    for _ in range(3):
        example_order(maker)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get("/api/orders").json()["results"]) == 4


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.CUSTOMER_SUCCESS])
def test_operations_sales_and_cs_get_403_and_change_nothing(client_for, make_user, order, role):
    settlement = settlement_of(order)
    client = client_for(make_user(role))

    for response in (
        client.get("/api/settlements"),
        client.get(f"/api/settlements/{settlement.pk}"),
        client.post(f"/api/settlements/{settlement.pk}/approve", {}, format="json"),
        client.post(f"/api/orders/{order.pk}/settle"),
    ):
        assert response.status_code == 403, response.request["PATH_INFO"]
        assert response.json()["error"]["code"] == "permission_denied"
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED


def test_the_portal_sees_no_settlement(client_for, portal_user, order):
    client = client_for(portal_user)
    assert client.get("/api/settlements").status_code == 403
    assert client.get(f"/api/settlements/{settlement_of(order).pk}").status_code == 403


def test_an_unknown_settlement_is_404(client_for, checker):
    response = client_for(checker).get("/api/settlements/999999")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
