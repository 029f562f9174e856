from django.core.management.base import BaseCommand

from ledger.services.invoices import invoice_documents_store_missing


class Command(BaseCommand):
    help = (
        "Make and store the PDF and e-invoices of invoices month-end issued in the last three days that still have "
        "none ten minutes after their issue, and email them (what the 15-minute schedule does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-email", action="store_true", help="store the files without emailing them")

    def handle(self, *args, **options):
        stored = invoice_documents_store_missing(send=not options["no_email"])
        self.stdout.write(f"{stored} invoice(s) got their files.")
