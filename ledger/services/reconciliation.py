"""Reconciliation: the journal checked against itself; differences are reported, never fixed."""

from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum

from accounts.models import User
from accounts.roles import Role
from billing_project import money
from ledger.models import Account, Leg, ReconciliationReport

ZERO = Decimal("0.00")


def ledger_differences() -> tuple[list[dict], int, int]:
    """(differences, accounts checked, transactions checked), streaming the legs in id order."""
    differences = []
    running: dict[int, Decimal] = defaultdict(Decimal)
    accounts = {account.pk: account for account in Account.objects.all()}
    for account_id, leg_id, debit, credit, balance_after in (
        Leg.objects.order_by("account_id", "id")
        .values_list("account_id", "id", "debit", "credit", "balance_after")
        .iterator(chunk_size=5000)
    ):
        running[account_id] = money.EXACT.add(running[account_id], debit - credit)
        if running[account_id] != balance_after:
            differences.append(
                {
                    "check": "balance_after chain",
                    "account": accounts[account_id].code,
                    "leg": leg_id,
                    "expected": str(running[account_id]),
                    "found": str(balance_after),
                }
            )
            running[account_id] = balance_after  # report each break once, not every leg after it
    for account in accounts.values():
        legs_sum = running.get(account.pk, ZERO)
        if account.balance != legs_sum:
            differences.append(
                {
                    "check": "stored balance",
                    "account": account.code,
                    "expected": str(legs_sum),
                    "found": str(account.balance),
                }
            )
    totals = Leg.objects.values("transaction_id").annotate(debits=Sum("debit"), credits=Sum("credit")).order_by()
    transaction_count = 0
    for total in totals.iterator(chunk_size=5000):
        transaction_count += 1
        if total["debits"] != total["credits"]:
            differences.append(
                {
                    "check": "transaction balanced",
                    "transaction": total["transaction_id"],
                    "expected": str(total["debits"]),
                    "found": str(total["credits"]),
                }
            )
    return differences, len(accounts), transaction_count


def ledger_reconcile() -> ReconciliationReport:
    """Check every account and transaction, store the report and, if anything differs, email the admins."""
    differences, account_count, transaction_count = ledger_differences()
    report = ReconciliationReport.objects.create(
        account_count=account_count, transaction_count=transaction_count, differences=differences
    )
    if differences:
        recipients = {address for _, address in settings.ADMINS} | set(
            User.objects.filter(groups__name=Role.ADMIN, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
        lines = "\n".join(f"- {difference}" for difference in differences[:100])
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Ledger reconciliation found {len(differences)} difference(s)",
                message=f"Reconciliation report {report.pk} found these differences (first 100):\n{lines}\n"
                "Nothing was changed; correct them with reversing transactions.",
                from_email=None,
                recipient_list=sorted(recipients),
            )
        )
    return report
