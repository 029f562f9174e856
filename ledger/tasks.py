"""Celery tasks: thin, take ids, safe to run twice (STYLE.md, "Tasks are an API")."""

from datetime import date

from celery import shared_task

from accounts.models import User
from catalog.models import Customer
from ledger.models import BillingRun
from ledger.services import month_end, receivables, reconciliation


@shared_task
def month_end_task(period: str | None = None, actor_id: int | None = None, customer_id: int | None = None) -> int:
    """Start a month-end run (by default for last month) and fan out one task per customer."""
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    customer = Customer.objects.get(pk=customer_id) if customer_id else None
    billed = date.fromisoformat(period) if period else month_end.previous_period()
    run, customer_ids = month_end.billing_run_start(actor=actor, period=billed, customer=customer)
    for pk in customer_ids:
        month_end_customer_task.delay(run.pk, pk, actor_id)
    month_end.billing_run_finish_if_done(run=run)  # a run with nobody to bill ends here
    return run.pk


@shared_task
def month_end_customer_task(run_id: int, customer_id: int, actor_id: int | None = None) -> None:
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    run = BillingRun.objects.get(pk=run_id)
    month_end.month_end_bill_and_issue(run=run, customer_ids=[customer_id], actor=actor)
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
