"""Billing configurations and document numbers."""

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import User
from billing_project.billing_time import billing_today
from catalog.models import Customer
from ledger.locks import lock_billing_config, lock_document_sequence
from ledger.models import BillingConfig

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
CONFIG_FIELDS = {
    "cycle",
    "payment_terms_days",
    "tax_rate",
    "tax_id",
    "tax_exempt",
    "tax_exempt_reason",
    "tax_exemption_code",
    "vat_category",
    "invoice_email",
    "auto_issue",
    "reminder_interval_days",
    "send_zero_invoices",
    "approval_rule",
    "sales_approval_above",
}


def billing_config_needs_csm(customer: Customer) -> str | None:
    """Registered with catalog (catalog.dependents): the CSM of a customer whose rule is the CSM's stays."""
    if BillingConfig.objects.filter(customer_id=customer.pk, approval_rule=BillingConfig.ApprovalRule.CSM).exists():
        return (
            "its bills are approved by its CSM (the approval rule of its billing configuration): choose another "
            "CSM, or change that rule first."
        )
    return None


def billing_config_for(customer: Customer) -> BillingConfig:
    """The customer's configuration, made with the defaults the first time it is needed."""
    config = BillingConfig.objects.filter(customer=customer).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            return BillingConfig.objects.create(customer=customer, invoice_email=customer.billing_email)
    except IntegrityError:
        return BillingConfig.objects.get(customer=customer)


def billing_configs_for(customers: Iterable[Customer]) -> dict[int, BillingConfig]:
    """The configurations of these customers by customer id, read together (`billing_config_for`)."""
    customers = {customer.pk: customer for customer in customers}
    configs = {config.customer_id: config for config in BillingConfig.objects.filter(customer_id__in=customers)}
    for pk, customer in customers.items():
        if pk in configs:
            configs[pk].customer = customer
        else:
            configs[pk] = billing_config_for(customer)
    return configs


@transaction.atomic
def billing_config_update(*, actor: User | None, customer: Customer, **changes: Any) -> BillingConfig:
    config = lock_billing_config(billing_config_for(customer))
    unknown = set(changes) - CONFIG_FIELDS
    if unknown:
        raise TypeError(f"Not a billing configuration field: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(config, name, value)
    config.full_clean()
    config._history_user = actor
    config.save()
    return config


def next_document_number(series: str) -> str:
    """Take the next number of a series in this year, under a lock held until commit: numbers are gapless."""
    return next_document_numbers(series, 1)[0]


def next_document_numbers(series: str, count: int) -> list[str]:
    """Take the next `count` numbers of a series in this year, in order (`next_document_number`)."""
    year = billing_today().year
    sequence = lock_document_sequence(series, year)
    first = sequence.last_number + 1
    sequence.last_number += count
    sequence.save(update_fields=["last_number"])
    return [_document_number(series, year, number) for number in range(first, sequence.last_number + 1)]


def provisional_document_number(series: str) -> str:
    """A number of the series' form that no document takes (0): for checking a document before its number is
    taken."""
    return _document_number(series, billing_today().year, 0)


def _document_number(series: str, year: int, number: int) -> str:
    return f"{series}-{year}-{number:06d}"
