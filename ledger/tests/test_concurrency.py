"""What only real concurrency shows: many postings at once, month-end runs that race or die half-way, numbers.

Each test runs jobs in threads (each thread has its own database connection) or in a child process,
against PostgreSQL: SQLite serialises every writer, so these races cannot happen there. That the database
itself refuses an unbalanced transaction written with raw SQL is in test_journal.py.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum

from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import (
    Account,
    Allocation,
    BillingRun,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceItem,
    Leg,
    Payment,
    Refund,
    Transaction,
)
from ledger.services import invoices as invoice_services
from ledger.services.billing import billing_config_update
from ledger.services.credit import available_credit
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.month_end import month_end_run
from ledger.services.payments import payment_record, refund_record
from ledger.services.reconciliation import ledger_differences
from usage.models import ClosedPeriod

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks, concurrent transactions and a second process on the same database need PostgreSQL",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

OCTOBER = date(2026, 10, 1)
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
CENT = D("0.01")


def cents(value: D) -> D:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def run_at_once(*jobs, timeout: float = 120):
    """Run each job in its own thread and connection, released together; return results or raised exceptions.

    Fails if any thread is still running after `timeout` seconds: a deadlock or a lock never released.
    """
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except Exception as error:  # handed back to the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, job), daemon=True) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"{len(stuck)} of {len(threads)} thread(s) still running after {timeout} s (deadlock?)"
    return results


def assert_chains_unbroken() -> None:
    """Our own reading of the journal, besides ledger_differences(): per account, legs in id order add up one by
    one to their balance_after and end at the stored balance; every transaction balances."""
    legs = defaultdict(list)
    for account_id, debit, credit, balance_after in Leg.objects.order_by("id").values_list(
        "account_id", "debit", "credit", "balance_after"
    ):
        legs[account_id].append((debit, credit, balance_after))
    for account in Account.objects.all():
        running = D("0.00")
        for position, (debit, credit, balance_after) in enumerate(legs[account.pk]):
            running += debit - credit
            assert balance_after == running, f"{account.code}: leg {position} says {balance_after}, sum is {running}"
        assert account.balance == running, f"{account.code}: stored {account.balance}, legs sum to {running}"
    unbalanced = [
        row
        for row in Leg.objects.values("transaction_id").annotate(d=Sum("debit"), c=Sum("credit")).order_by()
        if row["d"] != row["c"]
    ]
    assert unbalanced == []
    assert ledger_differences()[0] == []


def balance_of(customer: Customer) -> D:
    return Account.objects.get(customer=customer, kind=Account.Kind.RECEIVABLE).balance


# --- (a) many payments and charges at once ------------------------------------------------------------------------


@pytest.mark.parametrize("customer_count", [1, 3], ids=["one-customer", "three-customers-sharing-accounts"])
def test_concurrent_payments_and_charges_end_at_the_exact_balance_with_an_unbroken_chain(customer_count):
    threads, operations = 8, 10
    customers = [CustomerFactory(currency="EUR") for _ in range(customer_count)]
    for customer in customers:
        billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"))
    rng = random.Random(20261124)
    plans = [
        [
            (rng.choice(["charge", "pay"]), rng.randrange(customer_count), D(rng.randint(1, 50_000)) / 100)
            for _ in range(operations)
        ]
        for _ in range(threads)
    ]

    def work(thread: int):
        for position, (kind, who, amount) in enumerate(plans[thread]):
            customer = customers[who]
            if kind == "charge":
                draft = invoice_create_manual(
                    actor=None,
                    customer=customer,
                    lines=[{"description": "Work", "quantity": D(1), "unit_price": amount}],
                )
                invoice_issue(actor=None, invoice=draft, send=False)
            else:
                payment_record(
                    actor=None,
                    customer=customer,
                    amount=amount,
                    received_at=RECEIVED,
                    bank_reference=f"BANK-{thread}-{position}",
                )
        return len(plans[thread])

    results = run_at_once(*[lambda thread=thread: work(thread) for thread in range(threads)])

    assert results == [operations] * threads, [r for r in results if isinstance(r, Exception)]
    charged, paid = defaultdict(D), defaultdict(D)
    net_total = tax_total = D(0)
    for plan in plans:
        for kind, who, amount in plan:
            if kind == "charge":
                charged[who] += amount + cents(amount * D("0.2"))
                net_total, tax_total = net_total + amount, tax_total + cents(amount * D("0.2"))
            else:
                paid[who] += amount
    for who, customer in enumerate(customers):
        assert balance_of(customer) == charged[who] - paid[who]
        # Credit was set against open invoices under the lock: never both something owed and credit idle.
        invoices = Invoice.objects.filter(customer=customer)
        outstanding = sum((i.outstanding for i in invoices if i.status in Invoice.OPEN), D(0))
        credit = available_credit(customer)
        assert outstanding - credit == balance_of(customer)
        assert min(outstanding, credit) == 0
        for payment in Payment.objects.filter(customer=customer):
            allocated = payment.allocations.aggregate(s=Sum("amount"))["s"] or D(0)
            assert payment.unallocated + allocated == payment.amount  # no refunds here
        for invoice in invoices:
            allocated = invoice.allocations.aggregate(s=Sum("amount"))["s"] or D(0)
            assert invoice.amount_paid == allocated <= invoice.total
            assert invoice.status == (Invoice.Status.PAID if invoice.outstanding == 0 else Invoice.Status.ISSUED)
        receivable_legs = Leg.objects.filter(account__customer=customer, account__kind=Account.Kind.RECEIVABLE)
        assert receivable_legs.count() == sum(1 for plan in plans for operation in plan if operation[1] == who)
    assert Account.objects.get(code="cash:EUR").balance == sum(paid.values(), D(0))
    assert Account.objects.get(code="revenue:other:EUR").balance == -net_total
    assert Account.objects.get(code="tax:EUR").balance == -tax_total
    assert_chains_unbroken()
    charges = sum(1 for plan in plans for kind, _, _ in plan if kind == "charge")
    year = billing_today().year
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, charges + 1)]


def test_refunds_racing_for_the_same_credit_never_refund_more_than_there_is():
    customer = CustomerFactory()
    payment_record(actor=None, customer=customer, amount=D("100.00"), received_at=RECEIVED, bank_reference="BANK-1")

    results = run_at_once(
        *[lambda: refund_record(actor=None, customer=customer, amount=D("40.00"), reason="Asked") for _ in range(6)]
    )

    refunded = [result for result in results if isinstance(result, Refund)]
    refused = [result for result in results if not isinstance(result, Refund)]
    assert len(refunded) == 2, results
    assert all(isinstance(error, DomainError) and error.code == "insufficient_credit" for error in refused), refused
    assert available_credit(customer) == D("20.00")
    assert Payment.objects.get().unallocated == D("20.00")
    assert balance_of(customer) == D("-20.00")
    assert_chains_unbroken()


def test_two_credit_notes_at_once_on_one_invoice_never_credit_more_than_its_total():
    customer = CustomerFactory()
    draft = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(100)}]
    )
    invoice = invoice_issue(actor=None, invoice=draft, send=False)

    results = run_at_once(
        lambda: credit_note_issue(actor=None, invoice=invoice, reason="Disputed", amount=None),
        lambda: credit_note_issue(actor=None, invoice=invoice, reason="Disputed", amount=None),
        lambda: credit_note_issue(actor=None, invoice=invoice, reason="Part", amount=D("60.00")),
        lambda: credit_note_issue(actor=None, invoice=invoice, reason="Part", amount=D("60.00")),
    )

    notes = [result for result in results if isinstance(result, CreditNote)]
    refused = [result for result in results if not isinstance(result, CreditNote)]
    assert all(isinstance(error, DomainError) for error in refused), refused
    # Whatever the order, a full note credits what is left: the invoice ends void, credited exactly once in full.
    assert len(notes) in (1, 2) and sum((note.total for note in notes), D(0)) == D("100.00")
    assert [note.full for note in notes].count(True) == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_credited) == (Invoice.Status.VOID, D("100.00"))
    assert balance_of(customer) == D("0.00")
    assert_chains_unbroken()


# --- (b) two month-end runs at once -------------------------------------------------------------------------------


@pytest.fixture
def october_usage(import_usage):
    """Six customers with October usage at 0.50 a check; the first two are issued automatically."""
    service = ServiceFactory(code="kyc_check", name="KYC check")
    customers = []
    for position in range(6):
        customer = CustomerFactory()
        PriceAgreementFactory(customer=customer, service=service, unit_price=D("0.5"), valid_from=date(2026, 1, 1))
        billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"), auto_issue=position < 2)
        import_usage(customer, service, [(10 + position, "2026-10-05T10:00:00Z")])
        customers.append(customer)
    return customers


def expected_total(position: int) -> D:
    return cents((10 + position) * D("0.5") * D("1.2"))


def assert_one_usage_invoice_each(customers) -> None:
    invoices = Invoice.objects.filter(kind=Invoice.Kind.USAGE, period=OCTOBER)
    counts = defaultdict(int)
    for invoice in invoices:
        counts[invoice.customer_id] += 1
    assert dict(counts) == {customer.pk: 1 for customer in customers}
    for position, customer in enumerate(customers):
        invoice = invoices.get(customer=customer)
        assert invoice.total == expected_total(position)
        assert invoice.items.count() == 1
    assert ClosedPeriod.objects.filter(period=OCTOBER).count() == len(customers)


@pytest.mark.parametrize("chunk_sizes", [(1, 1), (1, 500)], ids=["chunks-1-and-1", "chunks-1-and-500"])
def test_two_month_end_runs_at_once_make_one_usage_invoice_per_customer(october_usage, chunk_sizes):
    runs = run_at_once(
        *[lambda size=size: month_end_run(actor=None, period=OCTOBER, chunk_size=size) for size in chunk_sizes]
    )

    assert all(isinstance(run, BillingRun) for run in runs), runs
    assert [(run.status, run.failures, run.finished_at is not None) for run in runs] == [("completed", [], True)] * 2
    assert_one_usage_invoice_each(october_usage)
    assert sum(run.invoices_created for run in runs) == 6
    assert sum(run.already_invoiced for run in runs) == 6  # each customer: made by one run, found by the other
    assert [run.customers_done for run in runs] == [6, 6]
    assert sum(run.invoices_issued for run in runs) == 2
    issued = Invoice.objects.filter(status=Invoice.Status.ISSUED)
    assert sorted(issued.values_list("customer_id", flat=True)) == [c.pk for c in october_usage[:2]]
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 2
    assert_chains_unbroken()


# --- (c) a run killed half-way, then run again ----------------------------------------------------------------------

CHILD = """
import sys
from datetime import date

import django

django.setup()
from ledger.services.month_end import month_end_run

print("billing", flush=True)
month_end_run(actor=None, period=date.fromisoformat(sys.argv[1]), chunk_size=1)
print("finished", flush=True)
"""


def database_url_for_child() -> str:
    """The test database (not the one DATABASE_URL names): the child must see what this test wrote."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, *, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the child exited ({process.returncode}) before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_month_end_killed_half_way_and_run_again_bills_every_customer_once(october_usage):
    first, second, third = october_usage[:3]
    # Hold the third customer's row lock: the child commits its first two one-customer chunks, then waits here
    # inside its third chunk's transaction, and is killed there.
    held, release = threading.Event(), threading.Event()

    def hold_third_customer():
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=third.pk)
                held.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_third_customer, daemon=True)
    holder.start()
    assert held.wait(10)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_project.settings_test",
        "DATABASE_URL": database_url_for_child(),
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": "",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, OCTOBER.isoformat()],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        usage_invoices = Invoice.objects.filter(kind=Invoice.Kind.USAGE, period=OCTOBER)
        wait_for(lambda: usage_invoices.count() >= 2, timeout=60, what="the first two invoices", process=child)
        wait_for(
            lambda: sessions_waiting_for_a_lock() > 0,
            timeout=30,
            what="the child to wait for the third customer",
            process=child,
        )
        # The child is inside its third chunk: kill it with no chance to clean up.
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        release.set()
        holder.join(timeout=30)
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    killed = BillingRun.objects.get()
    assert (killed.status, killed.finished_at) == (BillingRun.Status.RUNNING, None)
    assert (killed.customer_count, killed.customers_done, killed.invoices_created, killed.invoices_issued) == (
        6,
        2,
        2,
        2,
    )
    assert sorted(usage_invoices.values_list("customer_id", flat=True)) == [first.pk, second.pk]
    assert not ClosedPeriod.objects.filter(customer=third).exists()  # the third chunk rolled back whole

    rerun = month_end_run(actor=None, period=OCTOBER)

    assert (rerun.status, rerun.failures) == (BillingRun.Status.COMPLETED, [])
    assert (rerun.customers_done, rerun.invoices_created, rerun.already_invoiced) == (6, 4, 2)
    assert_one_usage_invoice_each(october_usage)
    made_by = dict(usage_invoices.values_list("customer_id", "billing_run_id"))
    assert made_by == {c.pk: (killed.pk if c in (first, second) else rerun.pk) for c in october_usage}
    # The first two were auto-issued by the killed run, or (if it died before) stay drafts: never issued twice.
    assert (
        Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == Invoice.objects.exclude(number=None).count()
    )
    assert InvoiceItem.objects.count() == 6
    assert_chains_unbroken()


# --- (d) gapless numbers under concurrent issue -------------------------------------------------------------------


def test_concurrent_issues_take_gapless_numbers_even_when_one_fails_after_taking_its_number(monkeypatch):
    count = 12
    customers = [CustomerFactory() for _ in range(count)]  # one customer each: only the sequence's lock orders them
    drafts = [
        invoice_create_manual(
            actor=None, customer=c, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(10 + n)}]
        )
        for n, c in enumerate(customers)
    ]
    failing = drafts[5].pk
    render = invoice_services.render_invoice_pdf

    def render_or_crash(invoice, items, config):
        if invoice.pk == failing:  # after the number was taken and the charge posted
            raise RuntimeError("renderer crashed")
        return render(invoice, items, config)

    monkeypatch.setattr(invoice_services, "render_invoice_pdf", render_or_crash)

    results = run_at_once(*[lambda d=draft: invoice_issue(actor=None, invoice=d, send=False) for draft in drafts])

    errors = [result for result in results if isinstance(result, Exception)]
    assert [str(error) for error in errors] == ["renderer crashed"]
    year = billing_today().year
    numbers = sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, count)]
    assert DocumentSequence.objects.get(series="INV", year=year).last_number == count - 1
    failed = Invoice.objects.get(pk=failing)
    assert (failed.status, failed.number) == (Invoice.Status.DRAFT, None)
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == count - 1
    assert_chains_unbroken()


def test_concurrent_credit_notes_take_gapless_numbers_of_their_own_series():
    count = 10
    issued = []
    for n in range(count):
        draft = invoice_create_manual(
            actor=None,
            customer=CustomerFactory(),
            lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(20 + n)}],
        )
        issued.append(invoice_issue(actor=None, invoice=draft, send=False))

    results = run_at_once(
        *[
            lambda i=invoice, n=n: credit_note_issue(
                actor=None, invoice=i, reason="Goodwill", amount=None if n % 2 else D("5.00")
            )
            for n, invoice in enumerate(issued)
        ]
    )

    assert all(isinstance(result, CreditNote) for result in results), results
    year = billing_today().year
    numbers = sorted(CreditNote.objects.values_list("number", flat=True))
    assert numbers == [f"CN-{year}-{n:06d}" for n in range(1, count + 1)]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        f"INV-{year}-{n:06d}" for n in range(1, count + 1)
    ]
    statuses = {invoice.pk: invoice.status for invoice in Invoice.objects.all()}
    assert [statuses[invoice.pk] for invoice in issued] == [
        Invoice.Status.ISSUED if n % 2 == 0 else Invoice.Status.VOID for n in range(count)
    ]
    assert not Allocation.objects.exists()
    assert_chains_unbroken()
