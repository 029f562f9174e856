from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing_project.errors import DomainError
from billing_project.text import printable
from usage.models import Upload
from usage.services import usage_import_file


class Command(BaseCommand):
    help = "Import usage CSV files, each whole or not at all. No size limit; memory stays bounded."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--force", action="store_true", help="Import a file even if its content was imported.")

    def handle(self, *args, files: list[Path], force: bool, **options):
        failed = 0
        for number, path in enumerate(files, start=1):
            if not path.is_file():
                raise CommandError(f"{printable(str(path))}: no such file.")
            self.stdout.write(f"[{number}/{len(files)}] {printable(path.name)} ({path.stat().st_size:,} bytes) …")
            try:
                with path.open("rb") as stream:
                    upload = usage_import_file(
                        actor=None,
                        stream=stream,
                        name=path.name,
                        source=Upload.Source.COMMAND,
                        force=force,
                        keep_file=False,
                    )
            except DomainError as error:
                failed += 1
                self.stderr.write(f"  refused: {error.message}")
                continue
            if upload.status == Upload.Status.IMPORTED:
                rate = upload.row_count / max(upload.duration_ms, 1) * 1000
                self.stdout.write(
                    self.style.SUCCESS(f"  imported {upload.row_count:,} rows in {upload.duration_ms / 1000:.2f} s")
                    + f" ({rate:,.0f} rows/s)"
                )
                for warning in upload.warnings:
                    self.stdout.write(f"  warning: {warning}")
                continue
            failed += 1
            self.stderr.write(f"  nothing imported: {upload.error_count:,} error(s); the first:")
            for error in upload.errors[:20]:
                self.stderr.write(f"    row {error['row']}, {error['column']} '{error['value']}': {error['reason']}")
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) not imported.")
