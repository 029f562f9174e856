"""Overdue marking and payment reminders (daily), each reminder logged."""

from datetime import timedelta

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from billing_project.billing_time import billing_today
from billing_project.formatting import day, money
from ledger.locks import lock_invoice
from ledger.models import Invoice, ReminderLog
from ledger.services.billing import billing_config_for
from ledger.services.invoices import invoice_recipient


def invoices_mark_overdue() -> int:
    """Issued invoices past their due date become overdue; returns how many changed."""
    overdue = Invoice.objects.filter(status=Invoice.Status.ISSUED, due_date__lt=billing_today())
    changed = 0
    for invoice in overdue.only("pk", "customer_id"):
        with transaction.atomic():
            invoice = lock_invoice(invoice)
            if invoice.status == Invoice.Status.ISSUED and invoice.due_date < billing_today():
                invoice.status = Invoice.Status.OVERDUE
                invoice.save(update_fields=["status", "updated_at"])
                changed += 1
    return changed


def reminders_send() -> int:
    """Email each overdue invoice at most once per its customer's reminder interval; returns how many went."""
    invoices_mark_overdue()
    now = timezone.now()
    sent = 0
    for invoice in Invoice.objects.filter(status=Invoice.Status.OVERDUE).select_related("customer").order_by("pk"):
        config = billing_config_for(invoice.customer)
        with transaction.atomic():
            # The invoice's row lock makes two reminder runs at once send one email, not two.
            invoice = lock_invoice(invoice)
            recent = invoice.reminders.filter(sent_at__gt=now - timedelta(days=config.reminder_interval_days))
            recipient = invoice_recipient(invoice, config)
            if invoice.status != Invoice.Status.OVERDUE or recent.exists() or not recipient:
                continue
            ReminderLog.objects.create(invoice=invoice, sent_to=recipient)
            message = EmailMessage(
                subject=f"Reminder: invoice {invoice.number} is overdue",
                body=(
                    f"Invoice {invoice.number} of {money(invoice.total, invoice.currency)} was due on "
                    f"{day(invoice.due_date)}; {money(invoice.outstanding, invoice.currency)} is still open.\n"
                    f"Please pay quoting {invoice.number}. If you have paid already, please disregard this."
                ),
                to=[recipient],
            )
            transaction.on_commit(message.send, robust=True)
            sent += 1
    return sent
