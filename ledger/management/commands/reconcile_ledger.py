from django.core.management.base import BaseCommand, CommandError

from ledger.services.reconciliation import ledger_reconcile


class Command(BaseCommand):
    help = "Check every account's balance and balance_after chain and every transaction's balance; fix nothing."

    def handle(self, *args, **options):
        report = ledger_reconcile()
        self.stdout.write(
            f"Checked {report.account_count:,} account(s) and {report.transaction_count:,} transaction(s)."
        )
        if report.differences:
            for difference in report.differences[:50]:
                self.stderr.write(f"  {difference}")
            raise CommandError(f"{len(report.differences)} difference(s); see reconciliation report {report.pk}.")
        self.stdout.write(self.style.SUCCESS("The ledger balances."))
