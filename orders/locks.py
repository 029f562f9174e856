"""Order rows are locked after their customer's, in the project's one lock order (ledger/locks.py): an order is
one of its customer's own rows, like an invoice, and its documents, tasks and invoice come after it (the ledger's
services lock the invoice, re-reading the customer already held; orders.services.billing)."""

from collections.abc import Iterable

from catalog.locks import lock_customers
from orders.models import Order, OrderDocument, Settlement


def lock_order(order: Order) -> Order:
    """The order re-read under its lock, taken after its customer's."""
    lock_customers([order.customer_id])
    return Order.objects.select_for_update(of=("self",)).select_related("customer", "order_type").get(pk=order.pk)


def lock_orders(orders: Iterable[Order]) -> list[Order]:
    """The orders re-read under their locks, by primary key, after all their customers' (by primary key); those
    that no longer exist are left out."""
    orders = list(orders)
    lock_customers({order.customer_id for order in orders})
    return list(
        Order.objects.select_for_update(of=("self",))
        .select_related("customer", "order_type")
        .filter(pk__in={order.pk for order in orders})
        .order_by("pk")
    )


def lock_document(document: OrderDocument) -> OrderDocument:
    """The document re-read under its lock, after its order's (which comes after its customer's)."""
    order = lock_order(document.order)
    locked = (
        OrderDocument.objects.select_for_update(of=("self",))
        .select_related("document_type", "current_file")
        .get(pk=document.pk)
    )
    locked.order = order
    return locked


def lock_settlements(**filters) -> list[Settlement]:
    """The settlements `filters` select, re-read under their locks by primary key: after their orders' locks (an
    approval) or their partner's (a payout batch), whoever takes them."""
    settlements = Settlement.objects.select_for_update(of=("self",)).select_related("order", "partner")
    return list(settlements.filter(**filters).order_by("pk"))
