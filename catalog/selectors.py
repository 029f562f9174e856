"""Who may see which customers, agreements and services (DESIGN.md, "Roles")."""

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import User
from accounts.roles import Role
from catalog.models import Customer, PriceAgreement, Service

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
    roles = set(user.groups.values_list("name", flat=True))
    if roles & ROLES_SEEING_ALL_CUSTOMERS:
        return customers
    if Role.CUSTOMER_SUCCESS in roles:
        return customers.filter(csm=user)
    return customers.none()


def price_agreement_list_for(user: User) -> QuerySet[PriceAgreement]:
    return PriceAgreement.objects.filter(customer__in=customer_list_for(user)).select_related("customer", "service")


def service_list_for(user: User) -> QuerySet[Service]:
    """Staff see the whole catalog; a portal user sees the services their customer is priced for."""
    customer_id = portal_customer_id(user)
    if customer_id is None:
        return Service.objects.all() if user.is_staff or user.is_superuser else Service.objects.none()
    priced = PriceAgreement.objects.filter(service=OuterRef("pk"), customer_id=customer_id)
    return Service.objects.filter(Exists(priced))
