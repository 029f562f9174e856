"""The one lock order (ledger/locks.py) under real concurrency: many callers of the API acting at once on one
customer's invoices (submit, approve, reject, revert, issue, credit, pay) wait for each other and never
deadlock, so every answer is a result or a refusal by the domain's rules, never a 500.

Each caller is a thread with its own database connection and its own API client, on PostgreSQL (SQLite runs
one writer at a time, so these races cannot happen there).
"""

import random
from collections import Counter
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from accounts.roles import Role
from approvals.models import ApprovalRequest
from approvals.services import approval_submit, request_for
from billing_project.billing_time import billing_today
from catalog.tests.factories import CustomerFactory
from ledger.models import Account, CreditNote, Invoice, Payment, Transaction
from ledger.services.billing import billing_config_update
from ledger.services.credit import available_credit
from ledger.services.invoices import invoice_create_manual, invoice_issue
from ledger.services.reconciliation import ledger_differences
from ledger.tests.test_concurrency import assert_chains_unbroken, run_at_once

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent transactions need PostgreSQL; SQLite runs one writer at a time",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

LINE = [{"description": "Onboarding", "quantity": D(1), "unit_price": D(100)}]
CALLER_TIMEOUT = 30  # seconds; the work takes a few, a deadlock or a lock never released takes longer


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
    }


# --- the case reported: many submits and issues of one invoice at once ---------------------------------------------


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
    # issue and credit notes
    "approval_required",
    "invoice_not_editable",
    "invalid",  # a partial credit note larger than what is left to credit
}


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
