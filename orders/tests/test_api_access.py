"""Who reaches which order through the API: role, CSM, deputy CSM, sharing and the portal. Someone else's order
answers 404 with the same body as an order that does not exist."""

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from catalog.services import customer_deputy_add
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from orders.models import Order
from orders.services.comments import comment_add
from orders.services.documents import document_upload
from orders.services.orders import order_create
from orders.services.sharing import order_share
from orders.services.tasks import task_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(formation, make_user, operations_user, pdf_upload):
    """An order of Acme (CSM: `csm`), with a document file, a task and a comment, and every kind of caller."""
    csm = make_user(Role.CUSTOMER_SUCCESS, email="csm@x.example")
    # An order of another customer first: the order's id then differs from its customer's on every database.
    order_create(actor=None, customer=CustomerFactory(), order_type=formation["order_type"])
    customer = formation["customer"]
    customer.csm = csm
    customer.save()
    order = order_create(actor=operations_user, customer=customer, order_type=formation["order_type"])
    document = order.documents.order_by("pk").first()
    document = document_upload(actor=operations_user, document=document, upload=pdf_upload())
    task_create(actor=operations_user, order=order, title="Call the client")
    comment_add(actor=operations_user, order=order, body="Waiting for the scans")
    deputy = make_user(Role.CUSTOMER_SUCCESS, email="deputy@x.example")
    customer_deputy_add(actor=None, customer=customer, user=deputy)
    agent = make_user(Role.OPERATIONS, email="agent@x.example", shared_only=True)
    order_share(actor=None, order=order, user=agent)
    callers = {
        "admin": make_user(Role.ADMIN),
        "finance": make_user(Role.FINANCE),
        "sales": make_user(Role.SALES),
        "operations": operations_user,
        "csm": csm,
        "cs_other": make_user(Role.CUSTOMER_SUCCESS),
        "cs_deputy": deputy,
        "agent_shared": agent,
        "agent_not_shared": make_user(Role.OPERATIONS, shared_only=True),
        "portal_own": PortalMembershipFactory(customer=customer).user,
        "portal_other": PortalMembershipFactory(customer=CustomerFactory()).user,
        "no_role": make_user(),
        "anonymous": None,
    }
    file = document.current_file
    return SimpleNamespace(
        order=order,
        callers=callers,
        download=f"/api/orders/{order.pk}/documents/{document.pk}/files/{file.pk}/download",
    )


def client_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


CALLERS = [
    "admin",
    "finance",
    "sales",
    "operations",
    "csm",
    "cs_other",
    "cs_deputy",
    "agent_shared",
    "agent_not_shared",
    "portal_own",
    "portal_other",
    "no_role",
    "anonymous",
]
READS = {
    #          admin fin sales ops csm cs_other deputy shared not_shared portal_own portal_other no_role anon
    "detail": (200, 200, 200, 200, 200, 404, 200, 200, 404, 200, 404, 403, 401),
    "documents": (200, 200, 200, 200, 200, 404, 200, 200, 404, 200, 404, 403, 401),
    "download": (200, 200, 200, 200, 200, 404, 200, 200, 404, 200, 404, 403, 401),
    "tasks": (200, 200, 200, 200, 200, 404, 200, 200, 404, 403, 403, 403, 401),
    "comments": (200, 200, 200, 200, 200, 404, 200, 200, 404, 403, 403, 403, 401),
}


def read(what: str, client: APIClient, world):
    order = world.order.pk
    return client.get(
        {
            "detail": f"/api/orders/{order}",
            "documents": f"/api/orders/{order}/documents",
            "download": world.download,
            "tasks": f"/api/orders/{order}/tasks",
            "comments": f"/api/orders/{order}/comments",
        }[what]
    )


@pytest.mark.parametrize("what", READS)
def test_who_reads_what_of_an_order(what, world):
    answers = {caller: read(what, client_as(world.callers[caller]), world).status_code for caller in CALLERS}
    assert answers == dict(zip(CALLERS, READS[what], strict=True))


def test_someone_elses_order_answers_like_one_that_does_not_exist(world):
    client = client_as(world.callers["cs_other"])
    hidden = client.get(f"/api/orders/{world.order.pk}")
    missing = client.get("/api/orders/999999")
    assert hidden.status_code == missing.status_code == 404
    assert (
        hidden.json()
        == missing.json()
        == {"error": {"code": "not_found", "message": "No order matches the given query.", "fields": {}}}
    )


def test_the_list_holds_exactly_the_orders_each_caller_may_see(world, formation):
    other = Order.objects.exclude(pk=world.order.pk).get()
    expected = {
        "admin": {world.order.pk, other.pk},
        "operations": {world.order.pk, other.pk},
        "csm": {world.order.pk},
        "cs_other": set(),
        "cs_deputy": {world.order.pk},
        "agent_shared": {world.order.pk},
        "agent_not_shared": set(),
        "portal_own": {world.order.pk},
        "portal_other": set(),
    }
    for caller, ids in expected.items():
        response = client_as(world.callers[caller]).get("/api/orders")
        assert response.status_code == 200, caller
        assert {row["id"] for row in response.json()["results"]} == ids, caller


def test_the_portal_reads_its_orders_with_their_money_and_writes_nothing(world):
    client = client_as(world.callers["portal_own"])
    detail = client.get(f"/api/orders/{world.order.pk}").json()
    assert detail["base_charge"] == "120.00" and detail["timeline"]

    writes = [
        client.post(f"/api/orders/{world.order.pk}/transition", {"to_status": "cancelled", "reason": "x"}, "json"),
        client.patch(f"/api/orders/{world.order.pk}", {"description": "mine"}, "json"),
        client.post("/api/orders", {"customer": world.order.customer_id, "order_type": "uk_formation"}, "json"),
    ]
    for response in writes:
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "The portal reads its own orders; it changes nothing."
    world.order.refresh_from_db()
    assert world.order.status == "documents_pending" and world.order.description == ""


def test_customer_success_comments_on_its_customers_orders_but_does_not_run_them(world):
    client = client_as(world.callers["csm"])
    assert client.post(f"/api/orders/{world.order.pk}/comments", {"body": "Chased"}, "json").status_code == 201
    moved = client.post(f"/api/orders/{world.order.pk}/transition", {"to_status": "cancelled", "reason": "x"}, "json")
    assert moved.status_code == 403
    assert client.post(f"/api/orders/{world.order.pk}/tasks", {"title": "x"}, "json").status_code == 403
    other_cs = client_as(world.callers["cs_other"])
    assert other_cs.post(f"/api/orders/{world.order.pk}/comments", {"body": "x"}, "json").status_code == 404


def test_an_admin_shares_an_order_and_takes_it_back(world, make_user):
    outsider = make_user(Role.OPERATIONS, email="outsider@x.example", shared_only=True)
    admin = client_as(world.callers["admin"])
    url = f"/api/orders/{world.order.pk}/access"
    assert client_as(outsider).get(f"/api/orders/{world.order.pk}").status_code == 404

    shared = admin.post(url, {"user": outsider.pk}, format="json")

    assert shared.status_code == 201 and shared.json()["email"] == "outsider@x.example"
    assert client_as(outsider).get(f"/api/orders/{world.order.pk}").status_code == 200
    listed = {row["email"] for row in admin.get(url).json()["results"]}
    assert listed == {"agent@x.example", "outsider@x.example"}
    assert admin.delete(f"{url}/{outsider.pk}").status_code == 204
    assert admin.delete(f"{url}/{outsider.pk}").status_code == 404
    assert client_as(outsider).get(f"/api/orders/{world.order.pk}").status_code == 404
    portal_user = world.callers["portal_own"]
    refused = admin.post(url, {"user": portal_user.pk}, format="json")
    assert refused.status_code == 400 and set(refused.json()["error"]["fields"]) == {"user"}
    for caller in ("operations", "csm", "portal_own"):
        assert client_as(world.callers[caller]).post(url, {"user": outsider.pk}, format="json").status_code == 403


def test_an_admin_gives_a_customer_a_deputy_csm_who_then_sees_its_orders(world, make_user):
    stand_in = make_user(Role.CUSTOMER_SUCCESS, email="standin@x.example")
    admin = client_as(world.callers["admin"])
    url = f"/api/customers/{world.order.customer_id}/deputies"
    assert client_as(stand_in).get(f"/api/orders/{world.order.pk}").status_code == 404

    added = admin.post(url, {"user": stand_in.pk}, format="json")

    assert added.status_code == 201
    assert {row["email"] for row in admin.get(url).json()["results"]} == {"deputy@x.example", "standin@x.example"}
    assert client_as(stand_in).get(f"/api/orders/{world.order.pk}").status_code == 200
    assert admin.delete(f"{url}/{stand_in.pk}").status_code == 204
    assert admin.delete(f"{url}/{stand_in.pk}").status_code == 404
    assert client_as(stand_in).get(f"/api/orders/{world.order.pk}").status_code == 404
    not_cs = admin.post(url, {"user": world.callers["operations"].pk}, format="json")
    assert not_cs.status_code == 400 and set(not_cs.json()["error"]["fields"]) == {"user"}
    assert admin.get("/api/customers/999999/deputies").status_code == 404
    for caller in ("csm", "operations", "portal_own"):
        assert client_as(world.callers[caller]).post(url, {"user": stand_in.pk}, format="json").status_code == 403
