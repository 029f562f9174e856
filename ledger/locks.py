"""Row locks, taken in the project's one order, so that concurrent writes wait for each other instead of
deadlocking (STYLE.md, "Data"; the README's "Lock order"). Ledger services lock through these functions; only
credit allocation locks its batches itself (credit.py), under the allowance below.

A transaction takes its locks in this order and never goes back up it, except to re-read a row it already
holds (an approval that issues the invoice runs `invoice_issue`, which locks the customer and invoice again):

1. customers, several by primary key (catalog.locks);
2. a customer's invoices, several by primary key (or its price agreements, in the catalog);
3. the approval request of an invoice: `approvals` locks a target through its handler, which takes the
   customer and then the invoice, before it locks the target's request (approvals/services.py);
4. the customer's credit notes and payments;
5. the customer's billing configuration;
6. a billing run;
7. a document sequence (a transaction numbers in one series);
8. ledger accounts, by primary key: every posting locks them in `transaction_post`;
9. the customer's monthly totals, then its trailing revenue, after the posting (ledger.services.monthly_totals);
10. the monthly totals over every customer, shared between customers, in month order (the same module: a
    transaction adds to them once, after everything else of its customer's);
11. the revenue by month and service, shared between customers, in key order (ledger.services.revenue_totals).

Rows 2 to 5 and 9 belong to one customer and are locked only while its lock is held (but for an approval comment,
which locks its request alone and waits for nothing while it holds it), so the customer's lock is what makes
work on one customer wait its turn; rows 6 to 8, 10 and 11 are shared between customers and come after it.
That gives credit allocation (`credit.apply_customer_credit`) its one allowance: it runs after the posting,
holding the customer, and locks the customer's open invoices, credit notes and payments oldest first; no
other transaction can hold any of them, as none locks them without that customer's lock.
"""

from collections.abc import Iterable

from catalog.locks import lock_customer, lock_customers
from ledger.models import Account, BillingConfig, BillingRun, DocumentSequence, Invoice, Payment

__all__ = [
    "lock_accounts",
    "lock_billing_config",
    "lock_billing_run",
    "lock_customer",
    "lock_customers",
    "lock_document_sequence",
    "lock_invoice",
    "lock_invoices",
    "lock_payment",
]


def lock_invoice(invoice: Invoice) -> Invoice:
    """The invoice re-read under its lock, taken after its customer's; `.customer` is the customer as locked."""
    lock_customers([invoice.customer_id])
    return Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice.pk)


def lock_invoices(invoices: Iterable[Invoice]) -> list[Invoice]:
    """The invoices re-read under their locks, by primary key, after their customers' (by primary key); those
    that no longer exist are left out."""
    invoices = list(invoices)
    lock_customers({invoice.customer_id for invoice in invoices})
    ids = {invoice.pk for invoice in invoices}
    return list(
        Invoice.objects.select_for_update(of=("self",)).select_related("customer").filter(pk__in=ids).order_by("pk")
    )


def lock_payment(payment: Payment) -> Payment:
    """The payment re-read under its lock; the caller holds its customer's (and any invoices' it moves between)."""
    return Payment.objects.select_for_update().get(pk=payment.pk)


def lock_billing_config(config: BillingConfig) -> BillingConfig:
    """The configuration re-read under its lock, after its customer's."""
    lock_customers([config.customer_id])
    return BillingConfig.objects.select_for_update().get(pk=config.pk)


def lock_billing_run(run: BillingRun) -> BillingRun:
    return BillingRun.objects.select_for_update().get(pk=run.pk)


def lock_document_sequence(series: str, year: int) -> DocumentSequence:
    """The year's sequence of a series, made at its first use, under a lock held until commit."""
    DocumentSequence.objects.get_or_create(series=series, year=year)
    return DocumentSequence.objects.select_for_update().get(series=series, year=year)


def lock_accounts(account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock accounts in primary-key order, so concurrent postings wait for each other and never deadlock."""
    return {
        account.pk: account
        for account in Account.objects.select_for_update().filter(pk__in=set(account_ids)).order_by("pk")
    }
