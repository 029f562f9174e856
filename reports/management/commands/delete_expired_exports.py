from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reports.services.exports import exports_delete_expired


class Command(BaseCommand):
    help = "Delete the background exports (and their files) finished more than --days days ago."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=settings.EXPORT_KEEP_DAYS, help="Default: EXPORT_KEEP_DAYS (%(default)s)."
        )

    def handle(self, *args, days: int, **options):
        if days < 0:
            raise CommandError(f"--days {days}: expected 0 or more.")
        deleted = exports_delete_expired(days=days)
        self.stdout.write(f"Deleted {deleted:,} export(s) finished more than {days} day(s) ago.")
