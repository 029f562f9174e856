from django.core.management.base import BaseCommand

from ledger.services.receivables import invoices_mark_overdue, reminders_send


class Command(BaseCommand):
    help = "Mark invoices past their due date overdue and email reminders (at most once per reminder interval)."

    def handle(self, *args, **options):
        overdue = invoices_mark_overdue()
        sent = reminders_send()
        self.stdout.write(f"{overdue} invoice(s) became overdue; {sent} reminder(s) sent.")
