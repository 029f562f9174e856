"""The one writer of journal legs, and the chart of accounts it posts to (DESIGN.md, "The ledger")."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction

from accounts.models import User
from billing_project import money
from billing_project.bulk import update_rows
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


def receivable_code(customer_id: int) -> str:
    return f"receivable:{customer_id}"


def receivable_account(customer: Customer) -> Account:
    return _account(
        code=receivable_code(customer.pk),
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


class Chart:
    """The accounts a batch of postings goes to, each read once (`customers`' receivables together), and the
    revenue category of each service. One instance per transaction: accounts are made at their first use."""

    def __init__(self, customers: Iterable[Customer] = ()) -> None:
        customers = list(customers)
        codes = [receivable_code(customer.pk) for customer in customers]
        self._accounts = {account.code: account for account in Account.objects.filter(code__in=codes)} if codes else {}
        self._categories: dict[int, str] | None = None

    def _get(self, code: str, make) -> Account:
        if code not in self._accounts:
            self._accounts[code] = make()
        return self._accounts[code]

    def receivable(self, customer: Customer) -> Account:
        return self._get(receivable_code(customer.pk), lambda: receivable_account(customer))

    def revenue(self, category: str, currency: str) -> Account:
        return self._get(f"revenue:{category}:{currency}", lambda: revenue_account(category, currency))

    def tax(self, currency: str) -> Account:
        return self._get(f"tax:{currency}", lambda: tax_account(currency))

    def category_of(self, service_id: int | None) -> str:
        """The revenue category of a line's service; a line without one is other revenue."""
        if self._categories is None:
            self._categories = dict(Service.objects.values_list("pk", "category"))
        return self._categories.get(service_id, Service.Category.OTHER)


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


@dataclass(frozen=True, slots=True)
class Posting:
    """One balanced transaction to post (`transactions_post`)."""

    kind: str
    entries: Sequence[Entry]
    description: str
    reference: str = ""
    customer: Customer | None = None
    source: models.Model | None = None
    idempotency_key: str | None = None


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
    """Post a balanced transaction (`transactions_post`)."""
    posting = Posting(kind, entries, description, reference, customer, source, idempotency_key)
    return transactions_post([posting], actor=actor)[0]


@transaction.atomic
def transactions_post(postings: Sequence[Posting], *, actor: User | None) -> list[Transaction]:
    """Post balanced transactions, in order: the only code that writes legs or moves a stored balance. The
    accounts of all of them are locked once, in primary-key order; each leg keeps its account's balance after it.

    A posting whose `idempotency_key` was already used is not posted again: the transaction posted with it is
    returned in its place."""
    for posting in postings:
        _check(posting.entries)
    existing = _posted_with_keys(postings)
    todo = [posting for posting in postings if posting.idempotency_key not in existing]
    if not todo:
        return [existing[posting.idempotency_key] for posting in postings]
    accounts = lock_accounts(entry.account.pk for posting in todo for entry in posting.entries)
    posted = [
        Transaction(
            kind=posting.kind,
            description=posting.description[:500],
            reference=posting.reference,
            currency=posting.entries[0].account.currency,
            customer=posting.customer,
            source_type=ContentType.objects.get_for_model(posting.source) if posting.source is not None else None,
            source_id=posting.source.pk if posting.source is not None else None,
            idempotency_key=posting.idempotency_key,
            created_by=actor,
        )
        for posting in todo
    ]
    try:
        with transaction.atomic():
            Transaction.objects.bulk_create(posted)
    except IntegrityError:
        if any(posting.idempotency_key is None for posting in todo):
            raise
        # Posted at the same moment by another transaction: those keys now return what it posted.
        if not _posted_with_keys(todo):
            raise
        return transactions_post(postings, actor=actor)
    legs = []
    for posting, row in zip(todo, posted, strict=True):
        for entry in posting.entries:
            account = accounts[entry.account.pk]
            account.balance = money.EXACT.add(account.balance, entry.debit - entry.credit)
            legs.append(
                Leg(
                    transaction=row,
                    account=account,
                    debit=entry.debit,
                    credit=entry.credit,
                    balance_after=account.balance,
                )
            )
    # No history here, on purpose: legs are the journal itself (append-only), and an account's balance moves
    # only with its legs, each of which keeps the balance after it.
    Leg.objects.bulk_create(legs, batch_size=1000)
    update_rows(Account, ["balance"], [(account.pk, account.balance) for account in accounts.values()])
    made = iter(posted)
    return [existing.get(posting.idempotency_key) or next(made) for posting in postings]


def _posted_with_keys(postings: Sequence[Posting]) -> dict[str, Transaction]:
    keys = [posting.idempotency_key for posting in postings if posting.idempotency_key is not None]
    if not keys:
        return {}
    return {posted.idempotency_key: posted for posted in Transaction.objects.filter(idempotency_key__in=keys)}
