"""orders.selectors.order_list_for, the one answer to "which orders may this user see", as a matrix of who asks
against which order; and sharing an order (orders.services.sharing), which takes effect at once, refuses what it
must and leaves a row in the audit trail for every grant and revoke."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.roles import Role
from billing_project.errors import DomainError, NotAllowed
from catalog.services import customer_deputy_add, customer_deputy_remove
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from orders.models import OrderUserObjectPermission
from orders.selectors import order_list_for, order_list_parts_for
from orders.services.orders import order_create
from orders.services.sharing import order_share, order_unshare
from orders.tests.factories import OrderTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, admin_user):
    """Acme (CSM `csm`, deputy CSM `deputy`) has two orders; Globex (CSM `globex_csm`) has two, one of which, "shared",
    is shared with the outside account `agent` and with `unrelated_cs_shared`. Everyone else is who they say."""
    csm, deputy, globex_csm = (make_user(Role.CUSTOMER_SUCCESS) for _ in range(3))
    acme = CustomerFactory(client_id="ACME-001", csm=csm)
    globex = CustomerFactory(client_id="GLOBEX-001", csm=globex_csm)
    CustomerFactory(client_id="INITECH-001", csm=make_user(Role.CUSTOMER_SUCCESS))  # no orders
    customer_deputy_add(actor=admin_user, customer=acme, user=deputy)
    order_type = OrderTypeFactory()
    # Two orders of Acme: at most one can have Acme's id, so a rule that mixed up order and customer ids shows.
    orders = {
        "acme": order_create(actor=None, customer=acme, order_type=order_type),
        "acme_2": order_create(actor=None, customer=acme, order_type=order_type),
        "globex": order_create(actor=None, customer=globex, order_type=order_type),
        "shared": order_create(actor=None, customer=globex, order_type=order_type),
    }
    people = {
        "admin": admin_user,
        "superuser": make_user(is_superuser=True),
        "finance": make_user(Role.FINANCE),
        "sales": make_user(Role.SALES),
        "operations": make_user(Role.OPERATIONS),
        "csm": csm,
        "deputy": deputy,
        "unrelated_cs": make_user(Role.CUSTOMER_SUCCESS),
        "unrelated_cs_shared": make_user(Role.CUSTOMER_SUCCESS),
        "agent": make_user(Role.OPERATIONS, shared_only=True),
        "agent_without_grant": make_user(Role.OPERATIONS, shared_only=True),
        "staff_without_role": make_user(),
        "portal_acme": PortalMembershipFactory(customer=acme).user,
        "portal_globex": PortalMembershipFactory(customer=globex).user,
        "inactive_admin": make_user(Role.ADMIN, is_active=False),
        "inactive_deputy": make_user(Role.CUSTOMER_SUCCESS),  # Acme's deputy, deactivated since
        "anonymous": AnonymousUser(),
    }
    customer_deputy_add(actor=admin_user, customer=acme, user=people["inactive_deputy"])
    people["inactive_deputy"].is_active = False
    people["inactive_deputy"].save()
    order_share(actor=admin_user, order=orders["shared"], user=people["agent"])
    order_share(actor=admin_user, order=orders["shared"], user=people["unrelated_cs_shared"])
    return {"orders": orders, "people": people}


SEES = {
    "admin": {"acme", "acme_2", "globex", "shared"},
    "superuser": {"acme", "acme_2", "globex", "shared"},
    "finance": {"acme", "acme_2", "globex", "shared"},
    "sales": {"acme", "acme_2", "globex", "shared"},
    "operations": {"acme", "acme_2", "globex", "shared"},
    "csm": {"acme", "acme_2"},
    "deputy": {"acme", "acme_2"},
    "unrelated_cs": set(),
    "unrelated_cs_shared": {"shared"},
    "agent": {"shared"},  # an outside account: its Operations role shows it nothing but what is shared with it
    "agent_without_grant": set(),
    "staff_without_role": set(),
    "portal_acme": {"acme", "acme_2"},
    "portal_globex": {"globex", "shared"},
    "inactive_admin": set(),
    "inactive_deputy": set(),
    "anonymous": set(),
}


def visible(world, who: str) -> set[str]:
    pks = set(order_list_for(world["people"][who]).values_list("pk", flat=True))
    return {name for name, order in world["orders"].items() if order.pk in pks}


@pytest.mark.parametrize("who", SEES)
def test_who_sees_which_order(world, who):
    assert visible(world, who) == SEES[who]
    for name, order in world["orders"].items():  # one by one too, as a page or a download asks
        assert order_list_for(world["people"][who]).filter(pk=order.pk).exists() == (name in SEES[who])


def parts(world, who: str) -> list[set[str]]:
    names = {order.pk: name for name, order in world["orders"].items()}
    found = order_list_parts_for(world["people"][who])
    return [{names[pk] for pk in orders.values_list("pk", flat=True)} for orders in found]


@pytest.mark.parametrize("who", SEES)
def test_the_parts_for_sums_are_the_same_orders_each_once(world, who):
    found = parts(world, who)
    assert set().union(*found) == SEES[who]
    assert sum(len(part) for part in found) == len(SEES[who])


def test_a_csms_parts_hold_their_customers_orders_and_those_shared_with_them(world, admin_user):
    order_share(actor=admin_user, order=world["orders"]["globex"], user=world["people"]["csm"])
    order_share(actor=admin_user, order=world["orders"]["acme"], user=world["people"]["csm"])  # theirs already

    assert parts(world, "csm") == [{"acme", "acme_2"}, {"globex"}]
    assert visible(world, "csm") == {"acme", "acme_2", "globex"}


def test_the_selector_reads_the_roles_once_and_the_orders_in_one_query(world, django_assert_max_num_queries):
    deputy = world["people"]["deputy"]
    deputy.refresh_from_db()

    with django_assert_max_num_queries(3):  # the portal membership, the roles, the orders
        assert len(list(order_list_for(deputy))) == 2


def test_a_deputy_and_a_csm_lose_the_orders_with_the_customer(world, admin_user):
    acme = world["orders"]["acme"].customer
    customer_deputy_remove(actor=admin_user, customer=acme, user=world["people"]["deputy"])
    acme.csm = world["people"]["unrelated_cs"]
    acme.save()

    assert visible(world, "deputy") == set()
    assert visible(world, "csm") == set()
    assert visible(world, "unrelated_cs") == {"acme", "acme_2"}


# Sharing an order.


def test_sharing_takes_effect_at_once_and_unsharing_takes_it_back(world, admin_user):
    agent, order = world["people"]["agent_without_grant"], world["orders"]["acme"]

    grant = order_share(actor=admin_user, order=order, user=agent)
    assert visible(world, "agent_without_grant") == {"acme"}  # that one order, not Acme's other
    assert order_share(actor=admin_user, order=order, user=agent).pk == grant.pk  # sharing again changes nothing

    assert order_unshare(actor=admin_user, order=order, user=agent) is True
    assert visible(world, "agent_without_grant") == set()
    assert order_unshare(actor=admin_user, order=order, user=agent) is False  # nothing left to take back


def test_every_grant_and_revoke_is_in_the_audit_trail_with_who_did_it(world, admin_user):
    agent, order = world["people"]["agent_without_grant"], world["orders"]["acme"]

    grant = order_share(actor=admin_user, order=order, user=agent)
    order_share(actor=admin_user, order=order, user=agent)
    order_unshare(actor=admin_user, order=order, user=agent)

    rows = OrderUserObjectPermission.history.filter(id=grant.pk).order_by("history_id")
    assert [(row.history_type, row.history_user, row.user_id, row.content_object_id) for row in rows] == [
        ("+", admin_user, agent.pk, order.pk),
        ("-", admin_user, agent.pk, order.pk),
    ]


@pytest.mark.parametrize("who", ["portal_acme", "inactive_admin", "not_staff"])
def test_an_order_is_shared_with_active_staff_only(world, admin_user, make_user, who):
    user = make_user(Role.OPERATIONS, is_staff=False) if who == "not_staff" else world["people"][who]
    order = world["orders"]["globex"]

    with pytest.raises(DomainError, match="orders are shared with staff only") as refusal:
        order_share(actor=admin_user, order=order, user=user)

    assert set(refusal.value.fields) == {"user"}
    assert not OrderUserObjectPermission.objects.filter(content_object=order, user=user).exists()
    assert not order_list_for(user).filter(pk=order.pk).exists()


@pytest.mark.parametrize("actor", ["finance", "sales", "operations", "csm", "agent"])
def test_only_an_admin_shares_or_unshares(world, actor):
    people, order = world["people"], world["orders"]["shared"]

    with pytest.raises(NotAllowed, match="Only an Admin can share orders"):
        order_share(actor=people[actor], order=world["orders"]["acme"], user=people["agent_without_grant"])
    with pytest.raises(NotAllowed, match="Only an Admin can share orders"):
        order_unshare(actor=people[actor], order=order, user=people["agent"])

    assert visible(world, "agent_without_grant") == set()
    assert visible(world, "agent") == {"shared"}
