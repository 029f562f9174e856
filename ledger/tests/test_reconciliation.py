from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory
from ledger.models import Account, ReconciliationReport, Transaction
from ledger.services.journal import Entry, receivable_account, revenue_account, transaction_post
from ledger.services.reconciliation import ledger_reconcile

pytestmark = pytest.mark.django_db


@pytest.fixture
def posted(db):
    customer = CustomerFactory()
    for amount in (D(10), D(5)):
        transaction_post(
            kind=Transaction.Kind.CHARGE,
            entries=[
                Entry(receivable_account(customer), debit=amount),
                Entry(revenue_account("kyc", "EUR"), credit=amount),
            ],
            description="charge",
            actor=None,
        )
    return customer


def test_a_sound_ledger_reconciles_without_differences(posted, capsys):
    call_command("reconcile_ledger")

    report = ReconciliationReport.objects.get()
    assert (report.balanced, report.transaction_count) == (True, 2)
    assert "The ledger balances." in capsys.readouterr().out


def test_a_tampered_balance_is_reported_to_admins_and_left_alone(posted, make_user, django_capture_on_commit_callbacks):
    admin = make_user(Role.ADMIN, email="root@countinghouse.example")
    Account.objects.filter(customer=posted).update(balance=D("99.00"))

    with django_capture_on_commit_callbacks(execute=True):
        report = ledger_reconcile()

    assert [d["check"] for d in report.differences] == ["stored balance"]
    assert report.differences[0]["expected"] == "15.00" and report.differences[0]["found"] == "99.00"
    assert Account.objects.get(customer=posted).balance == D("99.00")  # reported, not fixed
    (message,) = mail.outbox
    assert admin.email in message.to and "1 difference" in message.subject
    with pytest.raises(CommandError, match="difference"):
        call_command("reconcile_ledger")
