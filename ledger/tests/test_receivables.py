from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from billing_project.billing_time import billing_today
from billing_project.formatting import day, money
from ledger.models import Invoice, ReminderLog
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual, invoice_issue
from ledger.services.payments import payment_record
from ledger.services.receivables import invoices_mark_overdue, reminders_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue_invoice(priced_customer):
    customer, _ = priced_customer
    billing_config_update(actor=None, customer=customer, reminder_interval_days=7)
    invoice = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Service", "quantity": D(1), "unit_price": D(10)}]
    )
    invoice = invoice_issue(actor=None, invoice=invoice, send=False)
    Invoice.objects.filter(pk=invoice.pk).update(due_date=billing_today() - timedelta(days=1))
    return invoice


def test_invoices_past_their_due_date_become_overdue_once(overdue_invoice, priced_customer):
    customer, _ = priced_customer
    not_due = invoice_issue(
        actor=None,
        invoice=invoice_create_manual(
            actor=None, customer=customer, lines=[{"description": "x", "quantity": D(1), "unit_price": D(1)}]
        ),
        send=False,
    )

    assert invoices_mark_overdue() == 1
    assert invoices_mark_overdue() == 0
    assert Invoice.objects.get(pk=overdue_invoice.pk).status == Invoice.Status.OVERDUE
    assert Invoice.objects.get(pk=not_due.pk).status == Invoice.Status.ISSUED


def test_a_reminder_goes_at_most_once_per_interval_and_is_logged(overdue_invoice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send() == 0

    (message,) = mail.outbox
    assert overdue_invoice.number in message.subject
    overdue_invoice.refresh_from_db()  # its due day was moved into the past
    total = money(overdue_invoice.total, overdue_invoice.currency)  # "EUR 1.20": the one look, in emails too
    assert f"of {total} was due on {day(overdue_invoice.due_date)}; {total} is still open." in message.body
    log = ReminderLog.objects.get()
    assert log.sent_to == overdue_invoice.customer.billing_email

    ReminderLog.objects.update(sent_at=timezone.now() - timedelta(days=8))
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send() == 1
    assert len(mail.outbox) == 2


def test_a_paid_invoice_gets_no_reminder(overdue_invoice, priced_customer, django_capture_on_commit_callbacks):
    customer, _ = priced_customer
    payment_record(
        actor=None, customer=customer, amount=D("12.00"), received_at=timezone.now(), bank_reference="BANK-1"
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send() == 0
    assert Invoice.objects.get(pk=overdue_invoice.pk).status == Invoice.Status.PAID
    assert mail.outbox == []


def test_the_command_marks_and_reminds(overdue_invoice, capsys):
    call_command("send_reminders")

    assert "1 invoice(s) became overdue; 1 reminder(s) sent." in capsys.readouterr().out
