from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from approvals.registry import register
        from ledger.models import Invoice
        from orders.approval import SettlementApprovalHandler
        from orders.models import Settlement
        from orders.signals import settle_after_invoice_change

        register(Settlement, SettlementApprovalHandler())
        post_save.connect(settle_after_invoice_change, sender=Invoice, dispatch_uid="orders_settle_after_invoice")
