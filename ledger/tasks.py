"""Celery tasks: thin, take ids, safe to run twice (STYLE.md, "Tasks are an API")."""

from datetime import date

from celery import shared_task
from django.conf import settings

from accounts.models import User
from catalog.models import Customer
from ledger.models import BillingRun
from ledger.services import invoices, month_end, receivables, reconciliation


@shared_task
def month_end_task(period: str | None = None, actor_id: int | None = None, customer_id: int | None = None) -> int:
    """Start a month-end run (by default for last month) and fan it out to the workers in batches of customers.

    A batch, not each customer, is a task: billing 10,000 customers one task each took minutes where batches
    take seconds. A batch that fails is billed again customer by customer, so a failure still stops only the
    customer at fault (see `month_end_bill_and_issue`)."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    customer = Customer.objects.get(pk=customer_id) if customer_id else None
    billed = date.fromisoformat(period) if period else month_end.previous_period()
    run, customer_ids = month_end.billing_run_start(actor=actor, period=billed, customer=customer)
    size = settings.MONTH_END_CUSTOMERS_PER_TASK
    for start in range(0, len(customer_ids), size):
        month_end_customers_task.delay(run.pk, customer_ids[start : start + size], actor_id)
    month_end.billing_run_finish_if_done(run=run)  # a run with nobody to bill ends here
    return run.pk


@shared_task(ignore_result=True)
def month_end_customers_task(run_id: int, customer_ids: list[int], actor_id: int | None = None) -> None:
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    run = BillingRun.objects.get(pk=run_id)
    month_end.month_end_bill_and_issue(run=run, customer_ids=customer_ids, actor=actor)
    month_end.billing_run_finish_if_done(run=run)


@shared_task
def mark_overdue_task() -> int:
    return receivables.invoices_mark_overdue()


@shared_task
def send_reminders_task() -> int:
    return receivables.reminders_send()


@shared_task
def reconcile_ledger_task() -> int:
    return reconciliation.ledger_reconcile().pk


@shared_task(ignore_result=True)
def invoice_documents_task(invoice_ids: list[int], send: bool = True, actor_id: int | None = None) -> None:
    """The files of a batch of invoices month-end issued, made and stored, then each emailed."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    invoices.invoice_documents_store(invoice_ids=invoice_ids, actor=actor, send=send)


@shared_task
def store_missing_documents_task() -> int:
    """Files of issued invoices whose task was lost (a broker down at the moment of issue), made and stored."""
    return invoices.invoice_documents_store_missing()
