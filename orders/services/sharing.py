"""Sharing an order with a staff user (django-guardian's `view_order` on that one order), and taking it back.

Grants are rows of `OrderUserObjectPermission`, which keeps history: every grant and revoke is in the audit
trail with who did it.
"""

from django.contrib.auth.models import Permission
from django.db import transaction

from accounts.models import User
from billing_project.errors import DomainError, NotAllowed
from orders.locks import lock_order
from orders.models import Order, OrderUserObjectPermission

SHARED_PERMISSION = "view_order"


def _permission() -> Permission:
    return Permission.objects.get(content_type__app_label="orders", codename=SHARED_PERMISSION)


def _check(actor: User | None, user: User) -> None:
    if actor is not None and not actor.has_perm("orders.share_order"):
        raise NotAllowed("Only an Admin can share orders.")
    if not (user.is_staff and user.is_active) or user.is_portal_user:
        message = f"{user} is not an active staff user; orders are shared with staff only."
        raise DomainError(message, fields={"user": [message]})


@transaction.atomic
def order_share(*, actor: User | None, order: Order, user: User) -> OrderUserObjectPermission:
    """Let `user` see and work on `order`; sharing it again changes nothing."""
    order = lock_order(order)
    _check(actor, user)
    permission = _permission()
    grant = OrderUserObjectPermission.objects.filter(content_object=order, user=user, permission=permission).first()
    if grant is not None:
        return grant
    grant = OrderUserObjectPermission(content_object=order, user=user, permission=permission)
    grant._history_user = actor
    grant.save()
    return grant


@transaction.atomic
def order_unshare(*, actor: User | None, order: Order, user: User) -> bool:
    """Take the order back from `user`; False when it was not shared with them."""
    order = lock_order(order)
    if actor is not None and not actor.has_perm("orders.share_order"):
        raise NotAllowed("Only an Admin can share orders.")
    grant = OrderUserObjectPermission.objects.filter(content_object=order, user=user, permission=_permission()).first()
    if grant is None:
        return False
    grant._history_user = actor
    grant.delete()
    return True
