"""Reads of the ledger that the admin, the API and the portal share, scoped to what a user may see."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from accounts.models import User
from catalog.models import Customer
from catalog.selectors import customer_list_for, portal_customer_id
from ledger.models import Account, CreditNote, Invoice, Leg, Payment, Transaction


def _scoped(queryset: QuerySet, user: User) -> QuerySet:
    customers = customer_list_for(user)
    if not customers.query.where:
        return queryset
    return queryset.filter(customer__in=customers)


def invoice_list_for(user: User) -> QuerySet[Invoice]:
    """Staff see their customers' invoices in every state; a portal user only those issued (numbered)."""
    invoices = _scoped(Invoice.objects.select_related("customer"), user)
    if portal_customer_id(user) is not None:
        invoices = invoices.filter(number__isnull=False)
    return invoices


def credit_note_list_for(user: User) -> QuerySet[CreditNote]:
    return _scoped(CreditNote.objects.select_related("customer", "invoice"), user)


def payment_list_for(user: User) -> QuerySet[Payment]:
    return _scoped(Payment.objects.select_related("customer"), user)


def transaction_list_for(user: User) -> QuerySet[Transaction]:
    """Customers' transactions for whoever may see the customer; the rest (payouts…) for those who see all."""
    customers = customer_list_for(user)
    if not customers.query.where and (user.is_superuser or user.has_perm("ledger.view_account")):
        return Transaction.objects.all()
    return Transaction.objects.filter(customer__in=customers)


def receivable_accounts_for(user: User) -> QuerySet[Account]:
    """The customers' receivable accounts, i.e. their balances (positive: owes; negative: holds credit)."""
    return _scoped(Account.objects.filter(kind=Account.Kind.RECEIVABLE).select_related("customer"), user)


@dataclass(frozen=True, slots=True)
class StatementLine:
    date: datetime
    kind: str
    kind_label: str
    reference: str
    description: str
    amount: Decimal  # positive: the customer owes more
    balance_after: Decimal


def customer_statement(customer: Customer) -> list[StatementLine]:
    """The legs on the customer's receivable account, oldest first (DESIGN.md, "The ledger")."""
    legs = (
        Leg.objects.filter(account__customer=customer, account__kind=Account.Kind.RECEIVABLE)
        .select_related("transaction")
        .order_by("id")
    )
    kinds = dict(Transaction.Kind.choices)
    return [
        StatementLine(
            date=leg.transaction.created_at,
            kind=leg.transaction.kind,
            kind_label=kinds[leg.transaction.kind],
            reference=leg.transaction.reference,
            description=leg.transaction.description,
            amount=leg.debit - leg.credit,
            balance_after=leg.balance_after,
        )
        for leg in legs
    ]


def customer_balance(customer: Customer) -> Decimal:
    account = Account.objects.filter(customer=customer, kind=Account.Kind.RECEIVABLE).first()
    return account.balance if account else Decimal("0.00")
