"""Who may see which customers, agreements and services (DESIGN.md, "Roles")."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from accounts.roles import Role
from catalog.models import (
    Customer,
    CustomerUserObjectPermission,
    MinimumCommitment,
    Partner,
    PriceAgreement,
    Service,
)

ROLES_SEEING_ALL_CUSTOMERS = {Role.ADMIN, Role.FINANCE, Role.SALES, Role.OPERATIONS}


def portal_customer_id(user: User) -> int | None:
    membership = getattr(user, "portal_membership", None)
    return membership.customer_id if membership is not None else None


def customer_list_for(user: User) -> QuerySet[Customer]:
    """Customers `user` may see: all for most staff, their own for a CSM, one for a portal user."""
    customers = Customer.objects.all()
    if not user.is_authenticated or not user.is_active:
        return customers.none()
    # Portal membership first: it binds a user to one customer whatever flags the account carries.
    customer_id = portal_customer_id(user)
    if customer_id is not None:
        return customers.filter(pk=customer_id)
    if user.is_superuser:
        return customers
    if not user.is_staff:
        return customers.none()
    if user.shared_only:
        return customers.none()
    roles = set(user.groups.values_list("name", flat=True))
    if roles & ROLES_SEEING_ALL_CUSTOMERS:
        return customers
    if Role.CUSTOMER_SUCCESS in roles:
        return customers.filter(Q(csm=user) | Q(Exists(deputy_grants(user))))
    return customers.none()


def sees_every_customer(user: User) -> bool:
    """Whether `user` may see every customer (no filter on customer_list_for)."""
    return not customer_list_for(user).query.where


def deputy_grants(user: User, customer_ref: str = "pk") -> QuerySet[CustomerUserObjectPermission]:
    """The grants that make `user` a deputy CSM, correlated to the outer query's customer (its field
    `customer_ref`: `pk` on customers, `customer_id` on what a customer owns)."""
    return CustomerUserObjectPermission.objects.filter(
        content_object=OuterRef(customer_ref), user=user, permission__codename="deputy_csm"
    )


def customer_deputies(customer: Customer) -> QuerySet[User]:
    """The active Customer Success users who stand in for the customer's CSM (django-guardian grants)."""
    return User.objects.filter(
        is_active=True,
        groups__name=Role.CUSTOMER_SUCCESS,
        customeruserobjectpermission__content_object=customer,
        customeruserobjectpermission__permission__codename="deputy_csm",
    ).distinct()


def customer_deputy_ids(customer_ids) -> dict[int, set[int]]:
    """Deputy CSMs of several customers at once: {customer id: {user ids}}."""
    deputies: dict[int, set[int]] = {}
    grants = CustomerUserObjectPermission.objects.filter(
        content_object_id__in=set(customer_ids),
        permission__codename="deputy_csm",
        user__is_active=True,
        user__groups__name=Role.CUSTOMER_SUCCESS,
    ).values_list("content_object_id", "user_id")
    for customer_id, user_id in grants:
        deputies.setdefault(customer_id, set()).add(user_id)
    return deputies


def price_agreement_list_for(user: User) -> QuerySet[PriceAgreement]:
    return PriceAgreement.objects.filter(customer__in=customer_list_for(user)).select_related("customer", "service")


def minimum_commitment_list_for(user: User) -> QuerySet[MinimumCommitment]:
    return MinimumCommitment.objects.filter(customer__in=customer_list_for(user)).select_related("customer")


def service_list_for(user: User) -> QuerySet[Service]:
    """Staff see the whole catalog; a portal user sees the services their customer is priced for."""
    customer_id = portal_customer_id(user)
    if customer_id is None:
        return Service.objects.all() if user.is_staff or user.is_superuser else Service.objects.none()
    priced = PriceAgreement.objects.filter(service=OuterRef("pk"), customer_id=customer_id)
    return Service.objects.filter(Exists(priced))


def partner_list_for(user: User) -> QuerySet[Partner]:
    """Partners, for staff whose role sees them; none for portal users and outside accounts."""
    if user.is_superuser:
        return Partner.objects.all()
    if not (user.is_active and user.is_staff) or user.shared_only or portal_customer_id(user) is not None:
        return Partner.objects.none()
    return Partner.objects.all() if user.has_perm("catalog.view_partner") else Partner.objects.none()


def may_see_bank_details(user: User) -> bool:
    return user.has_perm("catalog.view_partner_bank_details")
