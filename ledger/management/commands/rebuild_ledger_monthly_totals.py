from django.core.management.base import BaseCommand, CommandError

from catalog.models import Customer
from ledger.services.monthly_totals import monthly_totals_rebuild
from ledger.services.revenue_totals import revenue_totals_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the customers' monthly totals (what the dashboard reads) from their invoices, credit notes, "
        "payments and refunds, for every customer or the ones named; for every customer, also the revenue by month "
        "and service (what the revenue report reads)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customer",
            action="append",
            dest="client_ids",
            metavar="CLIENT_ID",
            help="Rebuild only this customer's totals (a client id; may be repeated).",
        )

    def handle(self, *args, client_ids: list[str] | None, **options):
        customer_ids = None
        if client_ids:
            found = dict(Customer.objects.filter(client_id__in=client_ids).values_list("client_id", "pk"))
            unknown = [client_id for client_id in client_ids if client_id not in found]
            if unknown:
                raise CommandError(f"No customer with client id {', '.join(unknown)}.")
            customer_ids = sorted(found.values())
        scope = f"{len(customer_ids)} customer(s)" if customer_ids is not None else "all customers"
        self.stdout.write(f"Rebuilding the monthly totals of {scope} …")
        count = monthly_totals_rebuild(customer_ids=customer_ids)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {count:,} monthly totals for {scope}."))
        if customer_ids is None:
            self.stdout.write("Rebuilding the revenue by month and service …")
            count = revenue_totals_rebuild()
            self.stdout.write(self.style.SUCCESS(f"Rebuilt {count:,} rows of revenue by month and service."))
