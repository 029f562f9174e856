"""Deputy CSMs: who may give a customer one (an Admin), who may be one (an active Customer Success user other than
its CSM), adding and removing them again changing nothing, and every grant and removal in the audit trail."""

import pytest

from accounts.roles import Role
from billing_project.errors import DomainError, NotAllowed
from catalog.models import CustomerUserObjectPermission
from catalog.selectors import customer_deputies, customer_deputy_ids, customer_list_for
from catalog.services import customer_deputy_add, customer_deputy_remove
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(people, admin_user):
    return {**people, "admin": admin_user}


@pytest.fixture
def customer(people):
    return CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])


def grants(customer) -> list[int]:
    return list(CustomerUserObjectPermission.objects.filter(content_object=customer).values_list("user_id", flat=True))


def test_an_admin_makes_a_cs_user_a_deputy_and_the_grant_is_in_the_audit_trail(people, customer):
    deputy = people["other_cs"]

    grant = customer_deputy_add(actor=people["admin"], customer=customer, user=deputy)

    assert (grant.content_object, grant.user, grant.permission.codename) == (customer, deputy, "deputy_csm")
    assert list(customer_deputies(customer)) == [deputy]
    assert customer_deputy_ids([customer.pk]) == {customer.pk: {deputy.pk}}
    assert customer in customer_list_for(deputy)
    (row,) = grant.history.all()
    assert (row.history_type, row.history_user, row.user_id) == ("+", people["admin"], deputy.pk)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SALES, Role.CUSTOMER_SUCCESS, Role.OPERATIONS])
def test_only_an_admin_gives_or_takes_back_deputies(people, customer, make_user, role):
    actor = make_user(role)
    customer_deputy_add(actor=people["admin"], customer=customer, user=people["other_cs"])

    with pytest.raises(NotAllowed, match="Only an Admin can give a customer deputy CSMs"):
        customer_deputy_add(actor=actor, customer=customer, user=make_user(Role.CUSTOMER_SUCCESS))
    with pytest.raises(NotAllowed, match="Only an Admin"):
        customer_deputy_remove(actor=actor, customer=customer, user=people["other_cs"])

    assert grants(customer) == [people["other_cs"].pk]


@pytest.mark.parametrize(
    "who",
    ["sales", "finance", "inactive cs", "cs without staff access", "portal user", "no role"],
)
def test_only_an_active_customer_success_user_can_be_a_deputy(people, customer, make_user, who):
    user = {
        "sales": lambda: people["sales"],
        "finance": lambda: people["finance"],
        "inactive cs": lambda: make_user(Role.CUSTOMER_SUCCESS, is_active=False),
        "cs without staff access": lambda: make_user(Role.CUSTOMER_SUCCESS, is_staff=False),
        "portal user": lambda: PortalMembershipFactory(customer=customer).user,
        "no role": lambda: make_user(),
    }[who]()

    with pytest.raises(DomainError) as refusal:
        customer_deputy_add(actor=people["admin"], customer=customer, user=user)

    message = f"{user} is not an active Customer Success user; only they can be deputy CSMs."
    assert (refusal.value.message, refusal.value.fields) == (message, {"user": [message]})
    assert grants(customer) == []


def test_the_csm_is_not_their_own_deputy(people, customer):
    with pytest.raises(DomainError, match="is already SOYLENT-010's CSM") as refusal:
        customer_deputy_add(actor=people["admin"], customer=customer, user=people["csm"])

    assert set(refusal.value.fields) == {"user"}
    assert grants(customer) == []


def test_adding_a_deputy_again_changes_nothing(people, customer):
    first = customer_deputy_add(actor=people["admin"], customer=customer, user=people["other_cs"])
    again = customer_deputy_add(actor=people["admin"], customer=customer, user=people["other_cs"])

    assert again.pk == first.pk
    assert grants(customer) == [people["other_cs"].pk]
    assert CustomerUserObjectPermission.history.count() == 1


def test_removing_a_deputy_takes_their_view_back_and_is_in_the_audit_trail(people, customer):
    deputy = people["other_cs"]
    grant = customer_deputy_add(actor=people["admin"], customer=customer, user=deputy)

    assert customer_deputy_remove(actor=people["admin"], customer=customer, user=deputy) is True
    assert customer_deputy_remove(actor=people["admin"], customer=customer, user=deputy) is False  # nothing left

    assert grants(customer) == []
    assert customer not in customer_list_for(deputy)
    assert customer_deputy_ids([customer.pk]) == {}
    rows = CustomerUserObjectPermission.history.filter(id=grant.pk).order_by("history_id")
    assert [(row.history_type, row.history_user) for row in rows] == [("+", people["admin"]), ("-", people["admin"])]


def test_a_deputy_who_leaves_customer_success_or_is_deactivated_no_longer_counts(people, customer, make_user):
    moved, deactivated = make_user(Role.CUSTOMER_SUCCESS), make_user(Role.CUSTOMER_SUCCESS)
    for deputy in (people["other_cs"], moved, deactivated):
        customer_deputy_add(actor=people["admin"], customer=customer, user=deputy)
    moved.groups.set([])
    deactivated.is_active = False
    deactivated.save()

    assert list(customer_deputies(customer)) == [people["other_cs"]]
    assert customer_deputy_ids([customer.pk]) == {customer.pk: {people["other_cs"].pk}}
    assert customer not in customer_list_for(moved)


def test_a_deputy_of_one_customer_sees_only_that_one_besides_their_own(people, customer):
    own = CustomerFactory(csm=people["other_cs"])
    CustomerFactory(csm=people["csm"])  # the CSM's other customer

    customer_deputy_add(actor=people["admin"], customer=customer, user=people["other_cs"])

    assert set(customer_list_for(people["other_cs"])) == {own, customer}
