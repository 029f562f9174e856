"""Row locks on customers and what the catalog keeps for them, first in the project's one lock order.

The whole order is in ledger/locks.py (and the README, "Lock order"): a customer's lock is taken before any row
the customer owns (its price agreements here; its invoices, credit notes, payments and billing configuration in
the ledger), and several customers are locked by primary key. `usage` and `ledger` lock customers through these
functions, so that every path through the product waits for a customer in the same way.
"""

from collections.abc import Iterable

from catalog.models import Customer, Partner, PriceAgreement


def lock_customer(customer: Customer) -> Customer:
    """The customer re-read under its row lock."""
    return Customer.objects.select_for_update().get(pk=customer.pk)


def lock_customers(customer_ids: Iterable[int] | None) -> list[int]:
    """Lock customers in primary-key order (every customer when `customer_ids` is None); the ids of those that
    exist, in that order."""
    customers = Customer.objects.select_for_update().order_by("pk")
    if customer_ids is not None:
        customers = customers.filter(pk__in=set(customer_ids))
    return list(customers.values_list("pk", flat=True))


def lock_price_agreement(agreement: PriceAgreement) -> PriceAgreement:
    """The agreement re-read under its row lock, after its customer's (a usage import holds the customer and
    then its agreements)."""
    lock_customers([agreement.customer_id])
    return PriceAgreement.objects.select_for_update().get(pk=agreement.pk)


def lock_partner(partner: Partner) -> Partner:
    """The partner re-read under its row lock: writes to a partner's revenue-share agreements take it first, so
    two overlapping agreements cannot both pass the check."""
    return Partner.objects.select_for_update().get(pk=partner.pk)
