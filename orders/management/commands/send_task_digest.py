from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import DomainError
from orders.services.digest import task_digest_send


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--day {value!r}: expected YYYY-MM-DD, e.g. 2026-10-14.") from error


class Command(BaseCommand):
    help = "Email each assignee their tasks due today and overdue. Safe to rerun: nobody gets two digests a day."

    def add_arguments(self, parser):
        parser.add_argument("--day", help="YYYY-MM-DD; default: today in BILLING_TIME_ZONE.")

    def handle(self, *args, day: str | None, **options):
        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done:,}/{total:,} assignees")

        try:
            result = task_digest_send(day=parse_day(day) if day else None, progress=progress)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"Task digest for {result.day:%d %b %Y}: {result.sent:,} sent, "
            f"{result.already_sent:,} already sent that day."
        )
        if result.failed:
            for email, error in result.failed.items():
                self.stderr.write(f"  {email}: {error}")
            raise CommandError(f"{len(result.failed):,} digest(s) not sent; run the command again to send them.")
