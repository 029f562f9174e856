"""What the orders app hears from the ledger, which may not import it (DESIGN.md, "Layout")."""

from ledger.models import Invoice
from orders.models import Order
from orders.services.settlements import order_settle

MONEY_FIELDS = {"amount_paid", "amount_credited", "status"}


def settle_after_invoice_change(sender, instance: Invoice, update_fields=None, **kwargs) -> None:
    """A receipt or credit note on an ended order's invoice calculates its settlement again, in the same database
    transaction (orders.services.settlements: nothing is written when the share did not change)."""
    if instance.kind != Invoice.Kind.ORDER or (update_fields is not None and not MONEY_FIELDS & set(update_fields)):
        return
    order = Order.objects.filter(invoice_id=instance.pk, status__in=[Order.Status.COMPLETED, Order.Status.FAILED])
    order = order.exclude(partner=None).first()
    if order is None:
        return
    order_settle(
        actor=getattr(instance, "_history_user", None),
        order=order,
        reason=f"Invoice {instance.number or instance.pk} changed: a receipt or a credit note.",
    )
