"""ledger.tasks on a real Celery worker on Redis, the tasks' safety when delivered twice or run side by side,
and the beat schedule (DESIGN.md, "Invoices"; STYLE.md, "Tasks are an API").

The worker is another process: it sees what the test wrote only once committed (transaction=True), and
only on PostgreSQL (SQLite's test database lives in this process's memory). CI sets REDIS_URL and
DATABASE_URL; without them the worker test skips. The other tests call the tasks in this process and run
on both databases.
"""

import os
import subprocess
import sys
import time
import uuid
from datetime import date
from decimal import Decimal as D

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db import connection

from billing_project.celery import app as celery_app
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import BillingRun, Invoice, Transaction
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.services.reconciliation import ledger_differences
from ledger.tasks import month_end_customers_task, month_end_task

OCTOBER = date(2026, 10, 1)

needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="a real Celery worker needs a broker: set REDIS_URL"
)
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the worker is another process; it shares the test database only on PostgreSQL",
)


def database_url_for_worker() -> str:
    """The test database (not the one DATABASE_URL names): the worker must see what the test wrote."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(condition, *, timeout: float, what: str, worker: subprocess.Popen, log) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    log.seek(0)
    output = log.read().decode(errors="replace")[-4000:]
    pytest.fail(f"waited {timeout} s for {what} (worker exit code {worker.poll()}); worker log:\n{output}")


@pytest.fixture
def real_worker(transactional_db, tmp_path):
    """A worker process (threads pool, so customer tasks run side by side) on the test database and REDIS_URL."""
    assert not celery_app.conf.task_always_eager, "REDIS_URL is set, so tasks must go to the broker"
    celery_app.control.purge()  # nothing left over from an earlier run
    hostname = f"countinghouse-test-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "billing_project.settings_test",
        "DATABASE_URL": database_url_for_worker(),
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": os.environ["REDIS_URL"],
        "MONTH_END_CUSTOMERS_PER_TASK": "2",  # five customers: three batches, run side by side
    }
    log = (tmp_path / "worker.log").open("w+b")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "billing_project",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "-Q",
            "celery",
            "-n",
            hostname,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: celery_app.control.ping(destination=[hostname], timeout=0.5),
            timeout=60,
            what="the worker to answer a ping",
            worker=worker,
            log=log,
        )
        yield worker, log
    finally:
        worker.terminate()  # a warm shutdown: it closes its database connections before the test database goes
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


@pytest.fixture
def october_customers(import_usage):
    """Four customers with October usage (the first issued automatically) and one with nothing to bill."""
    service = ServiceFactory(code="kyc_check", name="KYC check")
    billable = []
    for position in range(4):
        customer = CustomerFactory()
        PriceAgreementFactory(customer=customer, service=service, unit_price=D("0.5"), valid_from=date(2026, 1, 1))
        billing_config_update(actor=None, customer=customer, tax_rate=D("0.2"), auto_issue=position == 0)
        import_usage(customer, service, [(10 * (position + 1), "2026-10-05T10:00:00Z")])
        billable.append(customer)
    idle = CustomerFactory()
    PriceAgreementFactory(customer=idle, service=service, valid_from=date(2026, 1, 1))
    return billable, idle


def finished_run(run_id: int, *, worker, log) -> BillingRun:
    return wait_for(
        lambda: BillingRun.objects.filter(pk=run_id, finished_at__isnull=False).first(),
        timeout=60,
        what=f"billing run {run_id} to finish",
        worker=worker,
        log=log,
    )


@needs_redis
@needs_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_month_end_on_a_real_worker_bills_each_customer_once_and_a_second_run_bills_nobody(
    october_customers, real_worker
):
    billable, idle = october_customers
    worker, log = real_worker

    run_id = month_end_task.delay(period=OCTOBER.isoformat()).get(timeout=60)
    run = finished_run(run_id, worker=worker, log=log)

    assert (run.status, run.failures) == (BillingRun.Status.COMPLETED, [])
    assert (run.customer_count, run.customers_done, run.invoices_created, run.nothing_to_bill) == (5, 5, 4, 1)
    log.seek(0)
    received = [
        line
        for line in log.read().decode(errors="replace").splitlines()
        if "ledger.tasks.month_end_customers_task[" in line and "received" in line
    ]
    assert len(received) == 3  # five customers in batches of two
    # The run can be marked finished a moment before the first customer's invoice is issued (another task
    # finished it: see the next-but-one test), so the issue is waited for rather than read at once.
    run = wait_for(
        lambda: BillingRun.objects.filter(pk=run_id, invoices_issued=1).first(),
        timeout=30,
        what="the automatic issue",
        worker=worker,
        log=log,
    )
    invoices = Invoice.objects.filter(kind=Invoice.Kind.USAGE, period=OCTOBER)
    assert sorted(invoices.values_list("customer_id", flat=True)) == [c.pk for c in billable]
    assert [invoices.get(customer=c).total for c in billable] == [D("6.00"), D("12.00"), D("18.00"), D("24.00")]
    assert invoices.get(customer=billable[0]).status == Invoice.Status.ISSUED
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 1
    first_invoices = sorted(invoices.values_list("pk", flat=True))

    again_id = month_end_task.delay(period=OCTOBER.isoformat()).get(timeout=60)
    again = finished_run(again_id, worker=worker, log=log)

    assert again_id != run_id
    assert (again.status, again.invoices_created, again.already_invoiced, again.invoices_issued) == (
        BillingRun.Status.COMPLETED,
        0,
        4,
        0,
    )
    assert sorted(invoices.values_list("pk", flat=True)) == first_invoices
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE).count() == 1
    assert ledger_differences()[0] == []


@pytest.mark.django_db
def test_a_customer_task_delivered_twice_neither_bills_twice_nor_finishes_the_run_early(october_customers):
    """With acks_late, a task whose worker died is delivered again: the same customer of the same run, twice."""
    billable, idle = october_customers
    run, customer_ids = month_end.billing_run_start(actor=None, period=OCTOBER)
    assert customer_ids == [*(c.pk for c in billable), idle.pk]

    month_end_customers_task(run.pk, [billable[1].pk])
    month_end_customers_task(run.pk, [billable[1].pk])  # the redelivery
    for customer in (billable[0], billable[2], billable[3]):
        month_end_customers_task(run.pk, [customer.pk])

    run.refresh_from_db()
    assert Invoice.objects.filter(kind=Invoice.Kind.USAGE).count() == 4
    # Four customers of five are done: the run is still running, and says so.
    assert (run.customers_done, run.status, run.finished_at) == (4, BillingRun.Status.RUNNING, None)

    month_end_customers_task(run.pk, [idle.pk])

    run.refresh_from_db()
    assert (run.customers_done, run.invoices_created, run.nothing_to_bill) == (5, 4, 1)
    assert (run.status, run.finished_at is not None) == (BillingRun.Status.COMPLETED, True)


@pytest.mark.django_db
def test_a_run_is_not_finished_by_another_task_while_a_new_invoice_is_still_being_issued(
    october_customers, monkeypatch
):
    """Customer tasks run side by side. The task that bills the last customer must not finish the run while
    another task is still issuing the invoice it has just made: if that issue then fails, the run would say
    "completed" with a failure on it."""
    billable, idle = october_customers  # billable[0] is issued automatically
    run, customer_ids = month_end.billing_run_start(actor=None, period=OCTOBER)
    for customer in billable[1:]:
        month_end_customers_task(run.pk, [customer.pk])
    seen = {}

    def issue_while_the_last_customer_is_billed(*, actor, invoice):
        month_end_customers_task(run.pk, [idle.pk])  # another worker thread, at this very moment
        seen["finished while issuing"] = BillingRun.objects.get(pk=run.pk).finished_at is not None
        raise RuntimeError("mail server down")

    def batch_issue(*, actor, invoices):  # fails, so that the invoice is issued on its own, as above
        raise RuntimeError("mail server down")

    monkeypatch.setattr(month_end, "invoices_issue", batch_issue)
    monkeypatch.setattr(month_end, "invoice_issue", issue_while_the_last_customer_is_billed)
    month_end_customers_task(run.pk, [billable[0].pk])

    run.refresh_from_db()
    assert [(f["customers"], f["error"]) for f in run.failures] == [
        ([billable[0].pk], "RuntimeError: mail server down")
    ]
    assert (run.status, run.invoices_issued, run.finished_at is not None) == (BillingRun.Status.FAILED, 0, True)
    assert seen == {"finished while issuing": False}


def test_the_beat_schedule_runs_month_end_reminders_and_reconciliation_in_the_billing_zone():
    schedules = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert schedules == {
        "ledger.tasks.month_end_task": crontab(minute=0, hour=6, day_of_month=1),
        "ledger.tasks.mark_overdue_task": crontab(minute=0, hour=9),
        "ledger.tasks.send_reminders_task": crontab(minute=0, hour=9),
        "ledger.tasks.reconcile_ledger_task": crontab(minute=0, hour=2, day_of_week=0),  # Sunday
        "ledger.tasks.store_missing_documents_task": crontab(minute="*/15"),
        "orders.tasks.send_task_digest_task": crontab(minute=0, hour=8),
        "reports.tasks.exports_delete_expired_task": crontab(minute=30, hour=3),
    }
    assert settings.CELERY_TIMEZONE == settings.BILLING_TIME_ZONE
    assert str(celery_app.conf.timezone) == settings.BILLING_TIME_ZONE
    celery_app.loader.import_default_modules()  # what a worker loads: every app's tasks module
    for name in schedules:
        assert name in celery_app.tasks
