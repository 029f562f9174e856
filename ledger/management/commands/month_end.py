from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing_project.billing_time import booking_day_problem
from billing_project.formatting import money
from catalog.models import Customer
from ledger.models import BillingRun
from ledger.services.month_end import month_end_preview, month_end_run, previous_period


def parse_period(value: str) -> date:
    try:
        year, month = (int(part) for part in value.split("-"))
        period = date(year, month, 1)
    except ValueError as error:
        raise CommandError(f"--period {value!r}: expected YYYY-MM, e.g. 2026-10.") from error
    if problem := booking_day_problem(period):
        raise CommandError(f"--period {value!r} {problem}.")
    return period


class Command(BaseCommand):
    help = "Make the usage invoices of a month (by default last month). Safe to rerun: nobody is billed twice."

    def add_arguments(self, parser):
        parser.add_argument("--period", help="YYYY-MM; default: last month in BILLING_TIME_ZONE.")
        parser.add_argument("--customer", metavar="CLIENT_ID", help="Bill this customer only.")
        parser.add_argument("--dry-run", action="store_true", help="Show what would be invoiced; write nothing.")

    def handle(self, *args, period: str | None, customer: str | None, dry_run: bool, **options):
        billed = parse_period(period) if period else previous_period()
        only = None
        if customer:
            only = Customer.objects.filter(client_id=customer).first()
            if only is None:
                raise CommandError(f"--customer {customer!r}: no customer has that client id.")
        if dry_run:
            preview = month_end_preview(period=billed, customer_ids=[only.pk] if only else None)
            for invoice in preview.invoices:
                currency = invoice.customer.currency
                self.stdout.write(
                    f"{invoice.customer.client_id}: {len(invoice.lines)} line(s), "
                    f"subtotal {money(invoice.subtotal, currency)}, tax {money(invoice.tax, currency)}, "
                    f"total {money(invoice.total, currency)}"
                )
            for customer in preview.nothing_to_bill:
                self.stdout.write(f"{customer.client_id}: nothing to bill, no invoice")
            self.stdout.write(
                f"Dry run for {billed:%Y-%m}: {len(preview.invoices)} invoice(s) would be made, "
                f"{len(preview.nothing_to_bill)} customer(s) with nothing to bill; nothing written."
            )
            return

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done:,}/{total:,} customers")

        self.stdout.write(f"Month-end {billed:%Y-%m}{f' for {only.client_id}' if only else ''} …")
        run = month_end_run(actor=None, period=billed, customer=only, progress=progress)
        seconds = (run.finished_at - run.started_at).total_seconds()
        self.stdout.write(
            f"Run {run.pk}: {run.invoices_created:,} invoice(s) made, {run.invoices_issued:,} issued, "
            f"{run.already_invoiced:,} already invoiced, {run.nothing_to_bill:,} with nothing to bill, "
            f"in {seconds:.1f} s."
        )
        if run.status == BillingRun.Status.FAILED:
            for failure in run.failures[:20]:
                self.stderr.write(
                    f"  failed ({failure['stage']}) for customers {failure['customers']}: {failure['error']}"
                )
            raise CommandError(f"Run {run.pk} finished with {len(run.failures)} failure(s); rerun it to retry them.")
