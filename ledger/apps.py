from django.apps import AppConfig
from django.db.models.signals import post_save


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Ledger and invoicing"

    def ready(self) -> None:
        from catalog.models import Customer, Partner
        from ledger.services.journal import open_customer_books, open_partner_books

        # catalog may not import ledger (DESIGN.md's import direction), so the ledger listens for new
        # customers and partners; every posting also opens missing books, so a bulk insert loses nothing.
        post_save.connect(_on_customer_saved(open_customer_books), sender=Customer, weak=False)
        post_save.connect(_on_customer_saved(open_partner_books), sender=Partner, weak=False)

        from approvals.registry import register
        from ledger.approval import InvoiceApprovalHandler
        from ledger.models import Invoice

        register(Invoice, InvoiceApprovalHandler())

        from catalog.dependents import register_csm_requirement
        from ledger.services.billing import billing_config_needs_csm

        # A customer keeps its CSM while its approval rule names the CSM (catalog asks before taking it away).
        register_csm_requirement(billing_config_needs_csm)


def _on_customer_saved(open_books):
    def receiver(sender, instance, created, raw=False, **kwargs):
        if created and not raw:
            open_books(instance)

    return receiver
