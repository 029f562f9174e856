"""The one lock order (ledger/locks.py) under real concurrency: many callers of the API acting at once on one
customer's invoices (submit, approve, reject, revert, issue, credit, pay) wait for each other and never
deadlock, so every answer is a result or a refusal by the domain's rules, never a 500.

Each caller is a thread with its own database connection and its own API client, on PostgreSQL (SQLite runs
one writer at a time, so these races cannot happen there). The order itself is checked statement by statement
too, on the locks each service takes, so that a path that breaks it fails here even when no race catches it.
"""

import random
import re
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.roles import Role
from approvals.models import ApprovalRequest
from approvals.services import (
    approval_approve,
    approval_reject,
    approval_reroute,
    approval_revert,
    approval_submit,
    approval_submit_many,
    approval_withdraw,
    request_for,
)
from billing_project.billing_time import billing_today
from catalog.tests.factories import CustomerFactory
from ledger.models import Account, CreditNote, Invoice, Payment, Transaction
from ledger.services.billing import billing_config_update
from ledger.services.credit import available_credit
from ledger.services.invoices import (
    credit_note_issue,
    invoice_add_line,
    invoice_cancel,
    invoice_create_manual,
    invoice_issue,
    invoices_issue,
)
from ledger.services.payments import adjustment_record, payment_reallocate, payment_record, refund_record
from ledger.services.receivables import reminders_send
from ledger.services.reconciliation import ledger_differences
from ledger.tests.test_concurrency import assert_chains_unbroken, run_at_once

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent transactions need PostgreSQL; SQLite runs one writer at a time",
    ),
    pytest.mark.postgres,
]
threaded = pytest.mark.django_db(transaction=True)

LINE = [{"description": "Onboarding", "quantity": D(1), "unit_price": D(100)}]
CALLER_TIMEOUT = 60  # seconds: the work takes a few (more on a busy machine); a lock never released takes longer


def as_caller(user):
    """An API client of its own for a thread, signed in as `user`, that answers 500s instead of raising."""
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return client


def call(client, action: str, invoice_id: int | None = None, **body) -> tuple[str, int, str]:
    """(action, status, error code or "") of one API call."""
    if action == "pay":
        response = client.post("/api/payments", body, format="json")
    elif action in {"approve", "reject", "revert"}:
        response = client.patch(f"/api/invoices/{invoice_id}/{action}", body, format="json")
    else:
        path = "credit-notes" if action == "credit" else action
        response = client.post(f"/api/invoices/{invoice_id}/{path}", body, format="json")
    code = ""
    if response.status_code >= 400:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):  # not the API's error format: a server error page
            code = f"HTTP {response.status_code}"
    return action, response.status_code, code


def assert_no_server_error(outcomes, refusals: set[str]) -> None:
    """Every answer a success or a 4xx whose code is one of the domain's `refusals`."""
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception) or outcome[1] >= 500]
    assert failures == [], Counter(str(failure) for failure in failures)
    unexpected = [(action, status, code) for action, status, code in outcomes if status >= 400 and code not in refusals]
    assert unexpected == [], Counter(unexpected)


def assert_gapless(series: str, numbers) -> None:
    year = billing_today().year
    assert sorted(numbers) == [f"{series}-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]


@pytest.fixture
def cast(make_user):
    return {
        "finance": make_user(Role.FINANCE, email="finance@x.example"),
        "cs": make_user(Role.CUSTOMER_SUCCESS, email="cs@x.example"),
        "sales": make_user(Role.SALES, email="sales@x.example"),
        "admin": make_user(Role.ADMIN, email="admin@x.example"),
    }


# --- the case reported: many submits and issues of one invoice at once ---------------------------------------------


@threaded
@pytest.mark.parametrize("rule", ["none", "csm"])
def test_submits_and_issues_of_one_invoice_at_once_wait_for_each_other_and_leave_one_outcome(cast, rule):
    customer = CustomerFactory(currency="EUR", csm=cast["cs"])
    billing_config_update(actor=None, customer=customer, approval_rule=rule)
    invoice = invoice_create_manual(actor=cast["finance"], customer=customer, lines=LINE)
    threads, calls = 10, 6

    def work(thread: int):
        client = as_caller(cast["finance"])
        return [call(client, "submit" if (thread + n) % 2 else "issue", invoice.pk) for n in range(calls)]

    results = run_at_once(*[lambda t=thread: work(t) for thread in range(threads)], timeout=CALLER_TIMEOUT)

    assert not [result for result in results if isinstance(result, Exception)], results
    outcomes = [outcome for result in results for outcome in result]
    assert len(outcomes) == threads * calls
    invoice.refresh_from_db()
    requests = ApprovalRequest.objects.filter(target_id=invoice.pk)
    by_status = Counter((action, status) for action, status, _ in outcomes)
    if rule == "none":
        # Issued once (one number, one charge); issuing again answers the issued invoice, submitting it is refused.
        assert_no_server_error(outcomes, refusals={"not_submittable"})
        assert (invoice.status, invoice.number) == (Invoice.Status.ISSUED, f"INV-{billing_today().year}-000001")
        assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 1
        assert by_status[("issue", 200)] == threads * calls // 2
        assert not requests.exists()
    else:
        # Submitted once; the other submits find it waiting, and no issue passes the approval it needs.
        assert_no_server_error(outcomes, refusals={"already_submitted", "approval_required", "invoice_not_editable"})
        assert by_status[("submit", 200)] == 1
        assert (invoice.status, invoice.number) == (Invoice.Status.PENDING_APPROVAL, None)
        assert [request.status for request in requests] == [ApprovalRequest.Status.PENDING]
        assert not Transaction.objects.exists()
    assert_chains_unbroken()


# --- everything at once on one customer's invoices ------------------------------------------------------------------

REFUSALS = {
    # submit
    "already_submitted",
    "not_submittable",
    # approve, reject, revert
    "not_submitted",
    "already_decided",
    "already_approved",
    "not_your_decision",
    "nothing_to_revert",
    "already_issued",
    "withdrawn",  # a revert that lost the race to a resubmission, which withdrew the rejected request
    # issue and credit notes
    "approval_required",
    "invoice_not_editable",
    "invalid",  # a partial credit note larger than what is left to credit
    # payments
    "invoice_not_open",  # the invoice a payment names is not (or no longer) open
}


@threaded
@pytest.mark.parametrize("auto_issue", [False, True], ids=["finance-issues", "approval-issues"])
def test_submit_approve_reject_revert_issue_credit_and_pay_at_once_on_one_customer(cast, auto_issue):
    customer = CustomerFactory(currency="EUR", csm=cast["cs"])
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    issued = [
        invoice_issue(
            actor=None, invoice=invoice_create_manual(actor=None, customer=customer, lines=LINE), send=False
        ).pk
        for _ in range(2)
    ]
    billing_config_update(actor=None, customer=customer, approval_rule="cs_or_sales", auto_issue=auto_issue)
    drafts = [invoice_create_manual(actor=cast["finance"], customer=customer, lines=LINE).pk for _ in range(4)]
    for pk in drafts[:2]:
        approval_submit(actor=cast["finance"], target=Invoice.objects.get(pk=pk))
    invoices = issued + drafts
    rng = random.Random(20261012)
    finance_actions = ["submit", "submit", "issue", "issue", "credit", "pay"]
    approver_actions = ["approve", "approve", "reject", "revert"]

    def plan(actions: list[str], thread: int, size: int = 10):
        steps = []
        for position in range(size):
            action, invoice_id = rng.choice(actions), rng.choice(invoices)
            body = {}
            if action == "submit":
                invoice_id = rng.choice(drafts)
            elif action == "credit":
                body = {"reason": "Goodwill", "amount": str(D(rng.randint(100, 4000)) / 100)}
            elif action == "pay":
                invoice_id = None
                body = {
                    "customer": customer.pk,
                    "amount": str(D(rng.randint(1000, 20000)) / 100),
                    "received_at": "2026-11-20T10:00:00Z",
                    "bank_reference": f"BANK-{thread}-{position}",
                }
                if rng.random() < 0.5:  # the remittance names an invoice: it is paid first, if still open
                    body["invoice"] = rng.choice(invoices)
            elif action in {"approve", "reject", "revert"}:
                invoice_id = rng.choice(drafts)
                body = {"comment": "Checked again"}
            steps.append((action, invoice_id, body))
        return steps

    crew = [("finance", finance_actions)] * 3 + [("cs", approver_actions)] * 2 + [("sales", approver_actions)] * 2
    plans = [(who, plan(actions, thread)) for thread, (who, actions) in enumerate(crew)]

    def work(who: str, steps):
        client = as_caller(cast[who])
        return [call(client, action, invoice_id, **body) for action, invoice_id, body in steps]

    results = run_at_once(*[lambda w=who, s=steps: work(w, s) for who, steps in plans], timeout=CALLER_TIMEOUT)

    assert not [result for result in results if isinstance(result, Exception)], results
    outcomes = [outcome for result in results for outcome in result]
    assert_no_server_error(outcomes, REFUSALS)
    done = Counter((action, status) for action, status, _ in outcomes if status < 400)
    assert done[("pay", 201)] == Payment.objects.count()
    assert done[("credit", 201)] == CreditNote.objects.count()
    # The journal agrees with itself, and numbers have no gaps.
    assert ledger_differences()[0] == []
    assert_chains_unbroken()
    assert_gapless("INV", list(Invoice.objects.exclude(number=None).values_list("number", flat=True)))
    assert_gapless("CN", list(CreditNote.objects.values_list("number", flat=True)))
    # Each invoice is where its approval says it is; an issued one was posted once, each note and payment once.
    for invoice in Invoice.objects.filter(pk__in=drafts):
        approval = request_for(invoice)
        expected = {
            None: {Invoice.Status.DRAFT},
            ApprovalRequest.Status.PENDING: {Invoice.Status.PENDING_APPROVAL},
            ApprovalRequest.Status.REJECTED: {Invoice.Status.REJECTED},
            ApprovalRequest.Status.APPROVED: {
                Invoice.Status.APPROVED,
                Invoice.Status.ISSUED,
                Invoice.Status.PAID,
                Invoice.Status.VOID,
            },
        }[approval.status if approval else None]
        assert invoice.status in expected, (invoice.status, approval and approval.status)
        assert (invoice.number is not None) == (invoice.status in {"issued", "paid", "void"})
    charges = Transaction.objects.filter(kind=Transaction.Kind.CHARGE)
    assert sorted(charges.values_list("reference", flat=True)) == sorted(
        Invoice.objects.exclude(number=None).values_list("number", flat=True)
    )
    assert Transaction.objects.filter(kind=Transaction.Kind.CREDIT_NOTE).count() == CreditNote.objects.count()
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYMENT).count() == Payment.objects.count()
    # What the customer owes is what was charged, less credit notes and payments; credit never sits idle.
    receivable = Account.objects.get(customer=customer, kind=Account.Kind.RECEIVABLE).balance
    charged = sum(Invoice.objects.exclude(number=None).values_list("total", flat=True), D(0))
    credited = sum(CreditNote.objects.values_list("total", flat=True), D(0))
    paid = sum(Payment.objects.values_list("amount", flat=True), D(0))
    assert receivable == charged - credited - paid
    open_invoices = Invoice.objects.filter(customer=customer, status__in=Invoice.OPEN)
    outstanding = sum((invoice.outstanding for invoice in open_invoices), D(0))
    assert min(outstanding, available_credit(customer)) == 0
    for invoice in Invoice.objects.exclude(number=None):
        assert invoice.amount_paid + invoice.amount_credited <= invoice.total


# --- the order, statement by statement ------------------------------------------------------------------------------

# ledger/locks.py's order; credit notes and payments share a place.
LOCK_ORDER = {
    "catalog_customer": 1,
    "ledger_invoice": 2,
    "approvals_approvalrequest": 3,
    "ledger_creditnote": 4,
    "ledger_payment": 4,
    "ledger_billingconfig": 5,
    "ledger_billingrun": 6,
    "ledger_documentsequence": 7,
    "ledger_account": 8,
    "ledger_monthlytotal": 9,
    "ledger_trailingrevenue": 9,
    "ledger_monthlygrandtotal": 10,
    "ledger_servicerevenue": 11,
}
CUSTOMER_OWNED = {
    "ledger_invoice",
    "approvals_approvalrequest",
    "ledger_creditnote",
    "ledger_payment",
    "ledger_monthlytotal",
    "ledger_trailingrevenue",
}
FOR_UPDATE = re.compile(r" FOR UPDATE(?: OF (?P<of>.+))?$")
UPSERT = re.compile(
    r'^INSERT INTO "(\w+)" .* ON CONFLICT \(.*\) DO UPDATE ', re.DOTALL
)  # billing_project.bulk.add_to_rows


def row_locks(queries) -> list[tuple[str, frozenset[int] | None]]:
    """(table, ids or None when the statement does not name them) of each row lock taken, in order; a statement
    without OF locks the rows of every table it reads, in the order they are named; an upsert that adds to rows
    locks them."""
    locks = []
    for sql in (query["sql"] for query in queries):
        if upsert := UPSERT.search(sql):  # the rows it adds to are locked, in key order
            locks.append((upsert[1], None))
            continue
        match = FOR_UPDATE.search(sql)
        if match is None:
            continue
        tables = re.findall(r'"(\w+)"', match["of"]) if match["of"] else re.findall(r'(?:FROM|JOIN) "(\w+)"', sql)
        for table in tables:
            named = re.search(rf'"{table}"\."id" (?:= (\d+)|IN \(([\d, ]+)\))', sql)
            ids = frozenset(int(pk) for pk in re.findall(r"\d+", named[1] or named[2])) if named else None
            locks.append((table, ids))
    return locks


def assert_in_lock_order(locks) -> None:
    """Never back up the order, except to re-read a row already held, and to lock a customer's own rows while
    holding the customer (credit allocation after the posting)."""
    held: dict[str, set[int]] = {table: set() for table in LOCK_ORDER}
    highest = 0
    for position, (table, ids) in enumerate(locks):
        rank = LOCK_ORDER[table]  # a kind of row not in the order yet: place it in ledger/locks.py first
        relock = ids is not None and ids <= held[table]
        under_customer = table in CUSTOMER_OWNED and held["catalog_customer"]
        assert rank >= highest or relock or under_customer, f"lock {position} on {table} comes too late: {locks}"
        if not relock:
            highest = max(highest, rank)
        held[table] |= ids or set()


@pytest.fixture
def books(cast):
    """A customer (its CSM: cast["cs"]) with an issued invoice paid by a payment that left credit, a draft, a
    draft submitted for approval under "Customer Success or Sales", and one rejected; and a customer made
    before it, with nothing yet."""
    earlier_customer = CustomerFactory(currency="EUR")
    customer = CustomerFactory(currency="EUR", csm=cast["cs"])
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    issued = invoice_issue(
        actor=None, invoice=invoice_create_manual(actor=None, customer=customer, lines=LINE), send=False
    )
    payment_record(
        actor=None,
        customer=customer,
        amount=D("200.00"),
        received_at=datetime(2026, 11, 2, tzinfo=UTC),
        bank_reference="BANK-1",
    )
    billing_config_update(actor=None, customer=customer, approval_rule="cs_or_sales")
    drafts = [invoice_create_manual(actor=cast["finance"], customer=customer, lines=LINE) for _ in range(3)]
    pending, rejected = drafts[1], drafts[2]
    approval_submit(actor=cast["finance"], target=pending)
    approval_submit(actor=cast["finance"], target=rejected)
    approval_reject(actor=cast["sales"], request=request_for(rejected), comment="Wrong period")
    return {
        "earlier_customer": earlier_customer,
        "customer": customer,
        "issued": issued,
        "draft": drafts[0],
        "pending": pending,
        "rejected": rejected,
    }


def _approved(cast, books, auto_issue: bool):
    billing_config_update(actor=None, customer=books["customer"], auto_issue=auto_issue)
    return lambda: approval_approve(actor=cast["cs"], request=request_for(books["pending"]))


def _reverted(cast, books):
    approval_approve(actor=cast["cs"], request=request_for(books["pending"]))
    return lambda: approval_revert(actor=cast["cs"], request=request_for(books["pending"]), comment="Too fast")


def _owed(books) -> Invoice:
    """The draft issued under no approval rule: 120.00, of which the payment's 80.00 of credit pays part."""
    billing_config_update(actor=None, customer=books["customer"], approval_rule="none")
    return invoice_issue(actor=None, invoice=books["draft"], send=False)


def _overdue(cast, books):
    Invoice.objects.filter(pk=_owed(books).pk).update(due_date=date(2020, 1, 1))
    return reminders_send


def _paid_to_a_chosen_invoice(cast, books):
    owed = _owed(books)
    return lambda: payment_record(
        actor=None,
        customer=books["customer"],
        amount=D("10.00"),
        received_at=datetime(2026, 11, 3, tzinfo=UTC),
        bank_reference="BANK-2",
        invoice=owed,
    )


def _moved_between_invoices(cast, books):
    owed = _owed(books)
    payment = Payment.objects.get(bank_reference="BANK-1")
    return lambda: payment_reallocate(
        actor=None, payment=payment, invoice=owed, from_invoice=books["issued"], amount=D("10.00")
    )


def _submitted_batch(cast, books):
    # Customer ids in one order, invoice ids in the other: every customer is locked before any invoice.
    other = invoice_create_manual(actor=None, customer=books["earlier_customer"], lines=LINE)
    return lambda: approval_submit_many(actor=cast["finance"], targets=[books["draft"], other])


def _issued_batch(cast, books):
    # As month-end's auto-issue: two customers' drafts in one batch, customer ids in one order, invoice ids in the
    # other.
    billing_config_update(actor=None, customer=books["customer"], approval_rule="none")
    other = invoice_create_manual(actor=None, customer=books["earlier_customer"], lines=LINE)
    return lambda: invoices_issue(actor=None, invoices=[books["draft"], other], send=False)


WRITES = {
    "issue": lambda cast, books: (
        billing_config_update(actor=None, customer=books["customer"], approval_rule="none"),
        lambda: invoice_issue(actor=None, invoice=books["draft"], send=False),
    )[1],
    "issue a batch": _issued_batch,
    "credit note": lambda cast, books: (
        lambda: credit_note_issue(actor=None, invoice=books["issued"], reason="Goodwill", amount=D("10.00"))
    ),
    "payment": lambda cast, books: (
        lambda: payment_record(
            actor=None,
            customer=books["customer"],
            amount=D("10.00"),
            received_at=datetime(2026, 11, 3, tzinfo=UTC),
            bank_reference="BANK-2",
        )
    ),
    "payment to a chosen invoice": _paid_to_a_chosen_invoice,
    "move a payment between invoices": _moved_between_invoices,
    "refund": lambda cast, books: (
        lambda: refund_record(actor=None, customer=books["customer"], amount=D("10.00"), reason="Asked")
    ),
    "adjustment": lambda cast, books: (
        lambda: adjustment_record(
            actor=None, customer=books["customer"], direction="debit", amount=D("10.00"), reason="Fee"
        )
    ),
    "add a line": lambda cast, books: (
        lambda: invoice_add_line(
            actor=None, invoice=books["draft"], description="Extra", quantity=D(1), unit_price=D(5)
        )
    ),
    "cancel": lambda cast, books: lambda: invoice_cancel(actor=None, invoice=books["draft"]),
    "reminders": _overdue,
    "billing configuration": lambda cast, books: (
        lambda: billing_config_update(actor=None, customer=books["customer"], payment_terms_days=30)
    ),
    "submit": lambda cast, books: lambda: approval_submit(actor=cast["finance"], target=books["draft"]),
    "resubmit a rejected invoice": lambda cast, books: (
        lambda: approval_submit(actor=cast["finance"], target=books["rejected"])
    ),
    "submit a batch": _submitted_batch,
    "approve": lambda cast, books: _approved(cast, books, auto_issue=False),
    "approve and issue": lambda cast, books: _approved(cast, books, auto_issue=True),
    "reject": lambda cast, books: (
        lambda: approval_reject(actor=cast["cs"], request=request_for(books["pending"]), comment="No")
    ),
    "revert": _reverted,
    "withdraw": lambda cast, books: (
        lambda: approval_withdraw(actor=cast["finance"], request=request_for(books["pending"]))
    ),
    "re-route": lambda cast, books: (
        lambda: approval_reroute(
            actor=cast["admin"], request=request_for(books["pending"]), route="csm", comment="To the CSM"
        )
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_takes_its_locks_in_the_one_order(cast, books, write):
    act = WRITES[write](cast, books)

    with CaptureQueriesContext(connection) as queries:
        act()

    locks = row_locks(queries.captured_queries)
    assert locks and locks[0][0] == "catalog_customer", locks
    assert_in_lock_order(locks)
