"""The one writer of journal legs, and the chart of accounts it posts to (DESIGN.md, "The ledger")."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction

from accounts.models import User
from billing_project import money
from billing_project.errors import DomainError
from catalog.models import Customer, Partner, Service
from ledger.locks import lock_accounts
from ledger.models import Account, Leg, Transaction

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Entry:
    """One side of a posting: a positive debit or a positive credit on an account."""

    account: Account
    debit: Decimal = ZERO
    credit: Decimal = ZERO


class UnbalancedTransaction(DomainError):
    code = "unbalanced"


def _account(*, code: str, name: str, kind: str, currency: str, **fields) -> Account:
    account = Account.objects.filter(code=code).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(code=code, name=name, kind=kind, currency=currency, **fields)
    except IntegrityError:  # opened at the same moment by another transaction
        return Account.objects.get(code=code)


def receivable_account(customer: Customer) -> Account:
    return _account(
        code=f"receivable:{customer.pk}",
        name=f"Receivable — {customer.name}",
        kind=Account.Kind.RECEIVABLE,
        currency=customer.currency,
        customer=customer,
    )


def payable_account(partner: Partner, currency: str) -> Account:
    return _account(
        code=f"payable:{partner.pk}:{currency}",
        name=f"Payable — {partner.name}",
        kind=Account.Kind.PAYABLE,
        currency=currency,
        partner=partner,
    )


def revenue_account(category: str, currency: str) -> Account:
    label = Service.Category(category).label if category in Service.Category.values else category
    return _account(
        code=f"revenue:{category}:{currency}",
        name=f"Revenue — {label}",
        kind=Account.Kind.REVENUE,
        currency=currency,
        category=category,
    )


def tax_account(currency: str) -> Account:
    return _account(code=f"tax:{currency}", name="Tax payable", kind=Account.Kind.TAX, currency=currency)


def cash_account(currency: str) -> Account:
    return _account(code=f"cash:{currency}", name="Cash and bank", kind=Account.Kind.CASH, currency=currency)


def adjustments_account(currency: str) -> Account:
    return _account(
        code=f"adjustments:{currency}", name="Adjustments", kind=Account.Kind.ADJUSTMENTS, currency=currency
    )


def expense_account(category: str, currency: str, *, label: str) -> Account:
    """The expense account of one category of order costs (`label` names it: the ledger knows no order)."""
    return _account(
        code=f"expense:{category}:{currency}", name=f"Expenses — {label}", kind=Account.Kind.EXPENSE, currency=currency
    )


def supplier_payable_account(currency: str) -> Account:
    """What is owed to suppliers for costs recorded as not yet paid."""
    return _account(
        code=f"suppliers:{currency}",
        name="Payable — suppliers",
        kind=Account.Kind.SUPPLIER_PAYABLE,
        currency=currency,
    )


def open_customer_books(customer: Customer) -> None:
    """A new customer's receivable account and billing configuration."""
    from ledger.services.billing import billing_config_for

    receivable_account(customer)
    billing_config_for(customer)


def open_partner_books(partner: Partner) -> None:
    # Partners are paid in the currencies of the orders they share; the first is opened with them.
    payable_account(partner, "EUR")


def _check(entries: Sequence[Entry]) -> None:
    if len(entries) < 2:
        raise UnbalancedTransaction("A transaction has at least two legs.")
    currencies = {entry.account.currency for entry in entries}
    if len(currencies) != 1:
        raise UnbalancedTransaction(f"A transaction is in one currency; got {', '.join(sorted(currencies))}.")
    for entry in entries:
        sides = [side for side in (entry.debit, entry.credit) if side != 0]
        if len(sides) != 1 or sides[0] < 0:
            raise UnbalancedTransaction(f"A leg on {entry.account.code} must be one positive debit or credit.")
        if sides[0] != money.round_amount(sides[0]):
            raise UnbalancedTransaction(f"A leg on {entry.account.code} has more than two decimal places.")
    debits = sum((entry.debit for entry in entries), ZERO)
    credits = sum((entry.credit for entry in entries), ZERO)
    if debits != credits:
        raise UnbalancedTransaction(f"Debits ({debits}) and credits ({credits}) differ.")


@transaction.atomic
def transaction_post(
    *,
    kind: str,
    entries: Sequence[Entry],
    description: str,
    actor: User | None,
    reference: str = "",
    customer: Customer | None = None,
    source: models.Model | None = None,
    idempotency_key: str | None = None,
) -> Transaction:
    """Post a balanced transaction: the only code that writes legs or moves a stored balance.

    With an `idempotency_key` already used, the transaction posted with it is returned unchanged.
    """
    _check(entries)
    if idempotency_key is not None:
        existing = Transaction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    accounts = lock_accounts(entry.account.pk for entry in entries)
    posted = Transaction(
        kind=kind,
        description=description[:500],
        reference=reference,
        currency=entries[0].account.currency,
        customer=customer,
        source_type=ContentType.objects.get_for_model(source) if source is not None else None,
        source_id=source.pk if source is not None else None,
        idempotency_key=idempotency_key,
        created_by=actor,
    )
    try:
        with transaction.atomic():
            posted.save()
    except IntegrityError:
        if idempotency_key is None:
            raise
        return Transaction.objects.get(idempotency_key=idempotency_key)
    legs = []
    for entry in entries:
        account = accounts[entry.account.pk]
        account.balance = money.EXACT.add(account.balance, entry.debit - entry.credit)
        legs.append(
            Leg(
                transaction=posted,
                account=account,
                debit=entry.debit,
                credit=entry.credit,
                balance_after=account.balance,
            )
        )
    # No history here, on purpose: legs are the journal itself (append-only), and an account's balance moves
    # only with its legs, each of which keeps the balance after it.
    Leg.objects.bulk_create(legs)
    Account.objects.bulk_update(accounts.values(), ["balance"])
    return posted
