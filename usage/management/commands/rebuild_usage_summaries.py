from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import DomainError
from catalog.models import Customer
from usage.services import rebuild_usage_summaries


class Command(BaseCommand):
    help = (
        "Recompute the monthly usage summaries and the daily usage from the usage records, for every customer or the"
        " ones named."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customer",
            action="append",
            dest="client_ids",
            metavar="CLIENT_ID",
            help="Rebuild only this customer's summaries (a client id; may be repeated).",
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
        self.stdout.write(f"Rebuilding monthly usage summaries and daily usage for {scope} …")
        try:
            count = rebuild_usage_summaries(customer_ids=customer_ids)
        except DomainError as error:
            raise CommandError(f"Summaries not rebuilt: {error.message}") from error
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {count:,} monthly summaries and the daily usage for {scope}."))
