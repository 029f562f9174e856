"""Reads of the ledger that the admin, the API and the portal share, scoped to what a user may see."""

from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import User
from billing_project.billing_time import DayRange
from catalog.models import Customer
from catalog.selectors import customer_list_for, portal_customer_id
from ledger.credit_shares import Share, replayed_shares
from ledger.models import (
    Account,
    BillingRun,
    BillingRunCustomer,
    CreditNote,
    Invoice,
    InvoiceItem,
    Leg,
    Payment,
    Transaction,
)

ZERO = Decimal("0.00")
STATEMENT_CHUNK = 2000  # legs read at a time when a whole statement is streamed


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


def invoice_open_list(customer: Customer) -> QuerySet[Invoice]:
    """The customer's invoices that take a payment (issued or overdue, something still owed), oldest due first:
    the order its credit is set against them (ledger.services.credit)."""
    return Invoice.objects.filter(customer=customer, status__in=sorted(Invoice.OPEN)).order_by(
        "due_date", "issued_at", "pk"
    )


def payment_allocated_invoices(payment: Payment) -> list[tuple[Invoice, Decimal]]:
    """The invoices the payment is set against now, with how much of it each holds: its allocations net of the
    moves to other invoices, in the order it first reached them. Summed here, not in SQL, to stay exact on
    SQLite; a payment has a handful of allocations."""
    held: dict[int, tuple[Invoice, Decimal]] = {}
    for allocation in payment.allocations.select_related("invoice").order_by("pk"):
        invoice, amount = held.get(allocation.invoice_id, (allocation.invoice, ZERO))
        held[allocation.invoice_id] = (invoice, amount + allocation.amount)
    return [(invoice, amount) for invoice, amount in held.values() if amount > 0]


@dataclass(frozen=True, slots=True)
class StatementLine:
    date: datetime
    kind: str
    kind_label: str
    reference: str
    description: str
    amount: Decimal  # positive: the customer owes more
    balance_after: Decimal

    @property
    def balance_before(self) -> Decimal:
        """The balance the line started from: what a page opening with it carries over."""
        return self.balance_after - self.amount


KIND_LABELS = dict(Transaction.Kind.choices)


def _line(leg: Leg) -> StatementLine:
    return StatementLine(
        date=leg.transaction.created_at,
        kind=leg.transaction.kind,
        kind_label=KIND_LABELS[leg.transaction.kind],
        reference=leg.transaction.reference,
        description=leg.transaction.description,
        amount=leg.debit - leg.credit,
        balance_after=leg.balance_after,
    )


class CustomerStatement:
    """The legs on the customer's receivable account, oldest first (DESIGN.md, "The ledger"), as a sequence
    of StatementLine read only when asked for: a slice is one query (so Django's and DRF's paginators read
    one page), iterating streams every line in chunks. The balance and the number of lines come with the
    account, in one query.
    """

    def __init__(self, customer: Customer):
        self.customer = customer
        count = Leg.objects.filter(account=OuterRef("pk")).order_by().values("account").annotate(n=Count("pk"))
        account = (
            Account.objects.filter(customer=customer, kind=Account.Kind.RECEIVABLE)
            .annotate(line_count=Subquery(count.values("n")))
            .values("pk", "balance", "line_count")
            .first()
        )
        self.balance: Decimal = account["balance"] if account else ZERO
        self._count: int = (account["line_count"] or 0) if account else 0
        # By the account's id: the legs come off the (account, id) index in order, a page at a time.
        self.legs: QuerySet[Leg] = (
            Leg.objects.filter(account_id=account["pk"]).select_related("transaction").order_by("id")
            if account
            else Leg.objects.none()
        )

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, key: int | slice) -> StatementLine | list[StatementLine]:
        if isinstance(key, int):
            index = key + self._count if key < 0 else key
            if not 0 <= index < self._count:
                raise IndexError("statement line out of range")
            return self[index : index + 1][0]
        start, stop, step = key.indices(self._count)
        if step != 1:
            raise ValueError("A statement is read in steps of one line.")
        return [_line(leg) for leg in self.legs[start:stop]] if start < stop else []

    def __iter__(self) -> Iterator[StatementLine]:
        return (_line(leg) for leg in self.legs.iterator(chunk_size=STATEMENT_CHUNK))


def customer_statement(customer: Customer) -> CustomerStatement:
    """The customer's statement, read lazily: slice it for a page, iterate it for an export."""
    return CustomerStatement(customer)


@dataclass(frozen=True, slots=True)
class StatementPeriod:
    """The statement over some days (billing time zone, both ends inclusive, either open): the balance brought
    forward from before them, their lines, and the closing balance after the last of them."""

    customer: Customer
    days: DayRange
    brought_forward: Decimal
    lines: list[StatementLine]

    @property
    def closing_balance(self) -> Decimal:
        return self.lines[-1].balance_after if self.lines else self.brought_forward


def customer_statement_period(customer: Customer, days: DayRange) -> StatementPeriod:
    """The lines of the days asked for, in the ledger's order, and the balance each end: a printed statement.
    Three queries; the lines are read whole, so keep `days` to what a reader prints."""
    account_id = (
        Account.objects.filter(customer=customer, kind=Account.Kind.RECEIVABLE).values_list("pk", flat=True).first()
    )
    if account_id is None:
        return StatementPeriod(customer=customer, days=days, brought_forward=ZERO, lines=[])
    legs = Leg.objects.filter(account_id=account_id)
    brought_forward = ZERO
    if days.start is not None:
        before = legs.filter(transaction__created_at__lt=days.start).order_by("-id").values("balance_after").first()
        brought_forward = before["balance_after"] if before else ZERO
        legs = legs.filter(transaction__created_at__gte=days.start)
    if days.end is not None:
        legs = legs.filter(transaction__created_at__lt=days.end)
    lines = [_line(leg) for leg in legs.select_related("transaction").order_by("id")]
    return StatementPeriod(customer=customer, days=days, brought_forward=brought_forward, lines=lines)


def customer_balance(customer: Customer) -> Decimal:
    account = Account.objects.filter(customer=customer, kind=Account.Kind.RECEIVABLE).first()
    return account.balance if account else Decimal("0.00")


def customers_with_balance(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """The customers with `balance` (their receivable account's, in their currency; none without an account) and
    `overdue_count` (their overdue invoices), each a subquery on one indexed row set: the list's query stays one."""
    receivable = Account.objects.filter(
        kind=Account.Kind.RECEIVABLE, customer=OuterRef("pk"), currency=OuterRef("currency")
    ).values("balance")[:1]
    overdue = (
        Invoice.objects.filter(customer=OuterRef("pk"), status=Invoice.Status.OVERDUE)
        .order_by()
        .values("customer")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return customers.annotate(balance=Subquery(receivable), overdue_count=Coalesce(Subquery(overdue), 0))


def overdue_amounts(customer_ids: list[int]) -> dict[int, Decimal]:
    """What each customer's overdue invoices still owe, summed in Python (SQLite sums decimals as floats)."""
    amounts: dict[int, Decimal] = {}
    rows = Invoice.objects.filter(customer_id__in=customer_ids, status=Invoice.Status.OVERDUE).values_list(
        "customer_id", "total", "amount_paid", "amount_credited"
    )
    for customer_id, total, paid, credited in rows:
        amounts[customer_id] = amounts.get(customer_id, Decimal("0.00")) + total - paid - credited
    return amounts


# --- Month-end runs ---------------------------------------------------------------------------------------------


def billing_run_stalled_after() -> timedelta:
    """How long a running run may go without progress before it counts as stalled (its worker likely died)."""
    return timedelta(minutes=settings.BILLING_RUN_STALLED_AFTER_MINUTES)


def billing_run_list() -> QuerySet[BillingRun]:
    """Runs with `last_progress_at`: the latest of their start, the newest customer they reached and their last
    recorded change (a failure noted, the finish). The counters move with update() and leave no time behind,
    so they are not read here; ledger.services.month_end makes a customer row for every customer it bills."""
    reached = (
        BillingRunCustomer.objects.filter(run=OuterRef("pk"), created_at__isnull=False)
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    changed = BillingRun.history.filter(id=OuterRef("pk")).order_by("-history_date").values("history_date")[:1]
    return BillingRun.objects.annotate(
        last_progress_at=Greatest(
            "started_at",
            Coalesce(Subquery(reached), "started_at"),
            Coalesce(Subquery(changed), "started_at"),
        )
    )


def billing_run_is_stalled(run: BillingRun, *, now: datetime | None = None) -> bool:
    """Running, and no progress for longer than BILLING_RUN_STALLED_AFTER_MINUTES. `run` comes from
    billing_run_list (it carries last_progress_at)."""
    if run.status != BillingRun.Status.RUNNING:
        return False
    return run.last_progress_at < (now or timezone.now()) - billing_run_stalled_after()


def billing_run_stalled_list(*, now: datetime | None = None) -> QuerySet[BillingRun]:
    return billing_run_list().filter(
        status=BillingRun.Status.RUNNING, last_progress_at__lt=(now or timezone.now()) - billing_run_stalled_after()
    )


def credit_note_shares(
    invoice_ids: Collection[int], *, models: tuple = (InvoiceItem, CreditNote)
) -> dict[int, list[Share]]:
    """What each credit note of these invoices takes from each of their lines, {note id: shares}, as the ledger
    posted it (ledger.credit_shares: every note of an invoice replayed in the order issued). One or two queries.
    `models` lets a migration pass its historical models."""
    item_model, note_model = models
    notes: dict[int, list] = defaultdict(list)
    for note in note_model.objects.filter(invoice_id__in=invoice_ids).order_by("issued_at", "id"):
        notes[note.invoice_id].append(note)
    items: dict[int, list] = defaultdict(list)
    if notes:
        for item in item_model.objects.filter(invoice_id__in=list(notes)).order_by("invoice", "position", "id"):
            items[item.invoice_id].append(item)
    shares = {}
    for invoice_id, invoice_notes in notes.items():
        for note, note_shares in zip(invoice_notes, replayed_shares(items[invoice_id], invoice_notes), strict=True):
            shares[note.pk] = note_shares
    return shares
