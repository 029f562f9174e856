"""The object-level access matrix of the order desk: who reaches which order, on every surface that shows one.

Two customers, A and B, each with one order holding an uploaded document file. Every caller is asked for each
order on the admin (list, page, history, file download), the API (list, detail, file download) and the portal
(order page, file download). An order the caller may see answers 200 everywhere it is offered to them; any other
order answers 404 everywhere, the same as an order that does not exist (orders.selectors.order_list_for).

Staff users are sent from the portal's pages to the admin, and portal users from the admin to its login page,
whatever the order.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from billing_project.billing_time import billing_today
from catalog.services import customer_deputy_add, customer_deputy_remove
from catalog.tests.factories import CustomerFactory, PartnerFactory, PortalMembershipFactory
from orders.models import Order
from orders.services.documents import document_upload
from orders.services.orders import order_create
from orders.services.payouts import payout_batch_create
from orders.services.sharing import order_share, order_unshare
from orders.tests.factories import PartnerOrderFactory, SettlementFactory

pytestmark = pytest.mark.django_db

# Why each caller may see the order of customer A and the order of customer B; "none": it answers 404.
#   role   - their role sees every order          csm    - they are the customer's CSM
#   deputy - a deputy CSM grant on the customer   shared - the order is shared with them (django-guardian)
#   own    - the portal user's own customer
# fmt: off
ACCESS = {
    # caller                order of A   order of B
    "admin":                ("role",      "role"),
    "finance":              ("role",      "role"),
    "sales":                ("role",      "role"),
    "operations":           ("role",      "role"),
    "cs_csm_of_a":          ("csm",       "none"),
    "cs_deputy_of_a":       ("deputy",    "none"),
    "cs_csm_of_b":          ("none",      "csm"),
    "cs_unrelated":         ("none",      "none"),
    "outside_shared_a":     ("shared",    "none"),
    "outside_not_shared":   ("none",      "none"),
    "portal_of_a":          ("own",       "none"),
    "portal_of_b":          ("none",      "own"),
}
# fmt: on
ORDERS = ("a", "b")
PORTAL_CALLERS = {"portal_of_a", "portal_of_b"}

NO_SUCH_ORDER = {"error": {"code": "not_found", "message": "No order matches the given query.", "fields": {}}}
NO_SUCH_FILE = {"error": {"code": "not_found", "message": "No file matches the given query.", "fields": {}}}
MISSING_PK = 999_999


@pytest.fixture
def world(formation, make_user, operations_user, pdf_upload):
    """Customers A (CSM, deputy CSM, portal user) and B (another CSM, portal user), an order of each with an
    uploaded passport, the order of A shared with one outside account, and every caller of ACCESS."""
    csm_of_a = make_user(Role.CUSTOMER_SUCCESS, email="csm-a@x.example")
    csm_of_b = make_user(Role.CUSTOMER_SUCCESS, email="csm-b@x.example")
    customer_b = CustomerFactory(client_id="BETA-001", name="Beta GmbH", currency="EUR", csm=csm_of_b)
    customer_a = formation["customer"]
    customer_a.csm = csm_of_a
    customer_a.save()
    # B's order first, so that no order's id matches its customer's by chance.
    orders = {
        "b": order_create(actor=operations_user, customer=customer_b, order_type=formation["order_type"]),
        "a": order_create(actor=operations_user, customer=customer_a, order_type=formation["order_type"]),
    }
    files = {}
    for key, order in orders.items():
        document = order.documents.get(document_type=formation["passport"])
        files[key] = document_upload(actor=operations_user, document=document, upload=pdf_upload()).current_file

    deputy = make_user(Role.CUSTOMER_SUCCESS, email="deputy-a@x.example")
    customer_deputy_add(actor=None, customer=customer_a, user=deputy)
    outside = make_user(Role.OPERATIONS, email="agent@x.example", shared_only=True)
    order_share(actor=None, order=orders["a"], user=outside)
    callers = {
        "admin": make_user(Role.ADMIN),
        "finance": make_user(Role.FINANCE),
        "sales": make_user(Role.SALES),
        "operations": operations_user,
        "cs_csm_of_a": csm_of_a,
        "cs_deputy_of_a": deputy,
        "cs_csm_of_b": csm_of_b,
        "cs_unrelated": make_user(Role.CUSTOMER_SUCCESS),
        "outside_shared_a": outside,
        "outside_not_shared": make_user(Role.OPERATIONS, shared_only=True),
        "portal_of_a": PortalMembershipFactory(customer=customer_a).user,
        "portal_of_b": PortalMembershipFactory(customer=customer_b).user,
    }
    assert callers.keys() == ACCESS.keys()
    return SimpleNamespace(orders=orders, files=files, callers=callers, customer_a=customer_a)


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def downloaded(response) -> int:
    """A download's status; a 200 must carry the uploaded PDF itself."""
    if response.status_code == 200:
        body = b"".join(response.streaming_content)  # reading it to the end closes the file
        assert body.startswith(b"%PDF-"), body[:20]
    return response.status_code


def api_download_url(file) -> str:
    return f"/api/orders/{file.document.order_id}/documents/{file.document_id}/files/{file.pk}/download"


def answers(client: Client, order: Order, file) -> dict[str, object]:
    """What every surface answers the client about the order and its uploaded file."""
    admin_list = client.get(reverse("admin:orders_order_changelist"))
    api_list = client.get("/api/orders")
    portal_list = client.get(reverse("portal:orders"))
    return {
        "admin list": order.number in admin_list.content.decode() if admin_list.status_code == 200 else admin_list,
        "admin page": client.get(reverse("admin:orders_order_change", args=[order.pk])).status_code,
        "admin history": client.get(reverse("admin:orders_order_history", args=[order.pk])).status_code,
        "admin download": downloaded(client.get(reverse("admin:orders_document_download", args=[file.pk]))),
        "api list": order.pk in {row["id"] for row in api_list.json()["results"]},
        "api detail": client.get(f"/api/orders/{order.pk}").status_code,
        "api download": downloaded(client.get(api_download_url(file))),
        "portal list": order.number in portal_list.content.decode() if portal_list.status_code == 200 else portal_list,
        "portal page": client.get(reverse("portal:order", args=[order.pk])),
        "portal download": downloaded(client.get(reverse("portal:order_document", args=[file.pk]))),
    }


def redirect_to(response, url: str) -> bool:
    return response.status_code == 302 and response["Location"] == url


def expected_answers(caller: str, sees: bool) -> dict[str, object]:
    status = 200 if sees else 404
    if caller in PORTAL_CALLERS:
        # Never the admin: every admin address sends a portal user to the admin's login page.
        return {
            "admin list": "login",
            "admin page": 302,
            "admin history": 302,
            "admin download": 302,
            "api list": sees,
            "api detail": status,
            "api download": status,
            "portal list": sees,
            "portal page": status,
            "portal download": status,
        }
    # Staff: the portal's pages send them to the admin; its downloads are the portal user's only.
    return {
        "admin list": sees,
        "admin page": status,
        "admin history": status,
        "admin download": status,
        "api list": sees,
        "api detail": status,
        "api download": status,
        "portal list": "admin",
        "portal page": "admin",
        "portal download": 404,
    }


def normalised(caller: str, observed: dict[str, object]) -> dict[str, object]:
    """Redirects named by where they go, so the comparison with expected_answers reads plainly."""
    admin_login = reverse("admin:login")
    for surface, value in list(observed.items()):
        if surface == "admin list" and caller in PORTAL_CALLERS:
            observed[surface] = "login" if redirect_to(value, f"{admin_login}?next=/admin/orders/order/") else value
        elif surface in ("portal list", "portal page") and caller not in PORTAL_CALLERS:
            observed[surface] = "admin" if redirect_to(value, reverse("admin:index")) else value
        elif surface == "portal page":
            observed[surface] = value.status_code
    return observed


@pytest.mark.parametrize("which", ORDERS, ids=lambda which: f"order_of_{which}")
@pytest.mark.parametrize("caller", ACCESS)
def test_each_caller_reaches_an_order_on_every_surface_exactly_when_it_may(caller, which, world):
    sees = ACCESS[caller][ORDERS.index(which)] != "none"
    observed = answers(client_as(world.callers[caller]), world.orders[which], world.files[which])
    assert normalised(caller, observed) == expected_answers(caller, sees)


@pytest.mark.parametrize("caller", [caller for caller, (_, of_b) in ACCESS.items() if of_b == "none"])
def test_a_hidden_order_answers_like_one_that_does_not_exist(caller, world):
    client = client_as(world.callers[caller])
    order, file = world.orders["b"], world.files["b"]

    hidden, missing = client.get(f"/api/orders/{order.pk}"), client.get(f"/api/orders/{MISSING_PK}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == NO_SUCH_ORDER
    hidden = client.get(api_download_url(file))
    missing = client.get(f"/api/orders/{order.pk}/documents/{file.document_id}/files/{MISSING_PK}/download")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == NO_SUCH_FILE

    if caller in PORTAL_CALLERS:
        pages = [("portal:order", order.pk), ("portal:order_document", file.pk)]
    else:
        pages = [
            ("admin:orders_order_change", order.pk),
            ("admin:orders_order_history", order.pk),
            ("admin:orders_document_download", file.pk),
        ]
    for name, pk in pages:
        hidden, missing = client.get(reverse(name, args=[pk])), client.get(reverse(name, args=[MISSING_PK]))
        assert hidden.status_code == missing.status_code == 404, name


def test_an_order_taken_back_from_an_outside_account_answers_404_everywhere(world):
    outside, order, file = world.callers["outside_shared_a"], world.orders["a"], world.files["a"]
    client = client_as(outside)
    assert normalised("outside_shared_a", answers(client, order, file)) == expected_answers("outside_shared_a", True)

    assert order_unshare(actor=world.callers["admin"], order=order, user=outside) is True

    assert normalised("outside_shared_a", answers(client, order, file)) == expected_answers("outside_shared_a", False)


def test_a_removed_deputy_csm_gets_404_everywhere_on_the_customers_order(world):
    deputy, order, file = world.callers["cs_deputy_of_a"], world.orders["a"], world.files["a"]
    client = client_as(deputy)
    assert normalised("cs_deputy_of_a", answers(client, order, file)) == expected_answers("cs_deputy_of_a", True)

    assert customer_deputy_remove(actor=world.callers["admin"], customer=world.customer_a, user=deputy) is True

    assert normalised("cs_deputy_of_a", answers(client, order, file)) == expected_answers("cs_deputy_of_a", False)


@pytest.mark.parametrize("button", ["start-work", "start-work-override", "complete", "fail", "cancel", "reopen"])
def test_the_order_pages_buttons_answer_404_for_an_order_not_shared(button, world):
    """An outside account holds Operations' permissions (Admin's for the override and reopening), so only the
    order's visibility stands between it and the order; the order stays where it was."""
    outside = world.callers["outside_not_shared"]
    if button in ("start-work-override", "reopen"):
        outside.groups.add(Group.objects.get(name=Role.ADMIN))
    order = world.orders["a"]
    client = client_as(outside)

    response = client.post(f"/admin/orders/order/{order.pk}/{button}/", {"_form_submitted": "on", "reason": "Go"})
    missing = client.post(f"/admin/orders/order/{MISSING_PK}/{button}/", {"_form_submitted": "on", "reason": "Go"})

    assert response.status_code == missing.status_code == 404
    assert Order.objects.get(pk=order.pk).status == order.status
    assert client.get(reverse("admin:orders_order_edit", args=[order.pk])).status_code == 404


# Payout batches are Finance's and Admin's only: every other caller is refused on the admin (403, or the login page
# for a portal user) and the API (403), whatever the batch.
PAYOUT_READERS = {"admin", "finance"}


@pytest.mark.parametrize("caller", ACCESS)
def test_only_finance_and_admin_reach_payout_batches(caller, world):
    partner = PartnerFactory(iban="DE02120300000000202051")
    SettlementFactory(order=PartnerOrderFactory(partner=partner, customer=world.customer_a))
    (batch,) = payout_batch_create(actor=world.callers["finance"], partners=[partner], cut_off=billing_today())
    client = client_as(world.callers[caller])

    admin_pages = [
        reverse("admin:orders_payoutbatch_changelist"),
        reverse("admin:orders_payoutbatch_change", args=[batch.pk]),
        f"/admin/orders/payoutbatch/{batch.pk}/statement/",
    ]
    api_pages = ["/api/payout-batches", f"/api/payout-batches/{batch.pk}", f"/api/payout-batches/{batch.pk}/statement"]
    admin = [client.get(url).status_code for url in admin_pages]
    api = [client.get(url).status_code for url in api_pages]

    if caller in PAYOUT_READERS:
        assert (admin, api) == ([200] * 3, [200] * 3)
    elif caller in PORTAL_CALLERS:
        assert (admin, api) == ([302] * 3, [403] * 3)
    else:
        assert (admin, api) == ([403] * 3, [403] * 3)


# Settlements are partners' money: only Finance and Admin (orders.view_settlement) see them, on every surface.
SEES_SETTLEMENTS = {"admin", "finance"}


@pytest.mark.parametrize("caller", ACCESS)
def test_only_finance_and_admin_reach_settlements(caller, world):
    client = client_as(world.callers[caller])
    admin_list = client.get(reverse("admin:orders_settlement_changelist"))
    api_list = client.get("/api/settlements")
    if caller in SEES_SETTLEMENTS:
        assert (admin_list.status_code, api_list.status_code) == (200, 200)
    elif caller in PORTAL_CALLERS:
        assert admin_list.status_code == 302 and api_list.status_code == 403
    else:
        assert (admin_list.status_code, api_list.status_code) == (403, 403)
    order = world.orders["a"]
    if caller not in PORTAL_CALLERS and ACCESS[caller][0] != "none":
        page = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
        assert ('data-testid="settlement"' in page) == (caller in SEES_SETTLEMENTS)
