"""Exports run in the background (DESIGN.md, "Exports"): a report (reports.finance_views) or an admin list
(billing_project.admin_tools.SpreadsheetExportMixin) of more than settings.EXPORT_BACKGROUND_ROWS rows is written by
a Celery task into the default storage, its progress saved as it goes, and its owner emailed a link once it is done.

`export_start` records what was asked (the page's query string, so the task rebuilds the very rows the page showed,
as the user who asked sees them) and queues `export_run` after commit; asking again while it is still being written
gives the same export. `export_run` is safe to run twice: it claims the export with a token before writing, so a
second delivery of the task finds it taken and writes nothing (unless the first run stalled: no progress for
settings.EXPORT_STALLED_AFTER_MINUTES, when its worker has died); the file is stored and the export marked done in
one step that checks the claim, and the email is claimed once per export, in the transaction that sends it.
"""

import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import BinaryIO

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.core.files import File
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing_project.admin_tools import list_export_for
from billing_project.errors import DomainError
from billing_project.formatting import moment
from reports import exports, finance
from reports.models import Export

logger = logging.getLogger(__name__)

REPORT, LIST = "report:", "list:"


class ExportFailed(DomainError):
    code = "export_failed"


class _Superseded(Exception):
    """Another run took the export over (this one had stalled): stop without writing anything."""


@dataclass
class _Job:
    """What a run writes: how many rows, and how to write them (through `counted`, which counts them)."""

    total: int
    write: Callable[[BinaryIO, Callable[[Iterable], Iterable]], None]


# --- Asking for an export ----------------------------------------------------------------------------------------


@transaction.atomic
def export_start(
    *,
    actor: User,
    source: str,
    title: str,
    query: str,
    filters: list[tuple[str, str]],
    format: str,
    file_name: str,
) -> Export:
    """Record an export of `source` (REPORT or LIST and its name) with the page's `query`, and write it in the
    background after commit. The export of the same thing still being written, when there is one."""
    if format not in Export.Format.values:
        raise ExportFailed(f"No {format!r} export in the background: CSV or XLSX.")
    same = {"user": actor, "source": source, "query": query, "format": format}
    if (open_export := Export.objects.filter(**same, status__in=Export.OPEN).first()) is not None:
        return open_export
    try:
        with transaction.atomic():
            export = Export.objects.create(
                **same, title=title[:200], filters=[list(pair) for pair in filters], file_name=file_name[:200]
            )
    except IntegrityError:  # the same request, a moment earlier, in another transaction
        return Export.objects.get(**same, status__in=Export.OPEN)
    from reports.tasks import export_run_task  # the task module calls this one

    transaction.on_commit(lambda: export_run_task.delay(export.pk), robust=True)
    return export


# --- Writing it --------------------------------------------------------------------------------------------------


def export_run(*, export_id: int) -> Export | None:
    """Write the export's file and email its owner; a second run of a claimed, done or failed export writes
    nothing (and sends the email only if the first run could not). None when the export no longer exists."""
    export = Export.objects.select_related("user").filter(pk=export_id).first()
    if export is None:
        return None
    token = _claim(export)
    if token is not None:
        try:
            _write(export, token)
        except _Superseded:
            return export
        except Exception as error:  # whatever stopped it is the reason shown on its page
            logger.exception("Export %s failed", export.pk)
            reason = error.message if isinstance(error, DomainError) else f"{type(error).__name__}: {error}"
            Export.objects.filter(pk=export.pk, run_token=token).update(
                status=Export.Status.FAILED, error=reason[:2000], finished_at=timezone.now(), updated_at=timezone.now()
            )
    export.refresh_from_db()
    if not export.is_open:
        try:
            _email_once(export_id=export.pk)
        except Exception:  # the mail server; the claim is rolled back, so a later run sends it
            logger.exception("Email for export %s not sent", export.pk)
    return export


def _claim(export: Export) -> uuid.UUID | None:
    """Take the export for this run: queued, or running without progress for too long (its worker died)."""
    token, now = uuid.uuid4(), timezone.now()
    stalled = now - timedelta(minutes=settings.EXPORT_STALLED_AFTER_MINUTES)
    claimed = (
        Export.objects.filter(pk=export.pk)
        .filter(Q(status=Export.Status.QUEUED) | Q(status=Export.Status.RUNNING, updated_at__lt=stalled))
        .update(status=Export.Status.RUNNING, run_token=token, started_at=now, updated_at=now, rows_written=0)
    )
    return token if claimed else None


class _Progress:
    """Counts the rows as they are written and saves the count every settings.EXPORT_PROGRESS_ROWS rows (and
    checks the run still holds its claim)."""

    def __init__(self, export: Export, token: uuid.UUID, total: int):
        self.export, self.token, self.total, self.written = export, token, total, 0

    def save(self) -> None:
        saved = Export.objects.filter(pk=self.export.pk, run_token=self.token).update(
            rows_written=self.written, total_rows=max(self.total, self.written), updated_at=timezone.now()
        )
        if not saved:
            raise _Superseded

    def rows(self, rows: Iterable) -> Iterator:
        every = settings.EXPORT_PROGRESS_ROWS
        for row in rows:
            yield row
            self.written += 1
            if self.written % every == 0:
                self.save()


def _write(export: Export, token: uuid.UUID) -> None:
    job = _job(export)
    progress = _Progress(export, token, job.total)
    progress.save()  # the total, before the first row
    with tempfile.TemporaryFile() as file:
        job.write(file, progress.rows)
        file.seek(0)
        export.file.save(f"{export.pk}-{export.file_name}", File(file), save=False)
    done = Export.objects.filter(pk=export.pk, run_token=token, status=Export.Status.RUNNING).update(
        status=Export.Status.DONE,
        file=export.file.name,
        rows_written=progress.written,
        total_rows=progress.written,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if not done:  # taken over while the file was saved: the other run's file is the one kept
        export.file.delete(save=False)
        raise _Superseded


def _job(export: Export) -> _Job:
    if export.source.startswith(REPORT):
        return _report_job(export, export.source.removeprefix(REPORT))
    if export.source.startswith(LIST):
        return _list_job(export, export.source.removeprefix(LIST))
    raise ExportFailed(f"Nothing to export named {export.source!r}.")


def _report_job(export: Export, name: str) -> _Job:
    from reports.finance_views import REPORT_VIEWS  # the pages' forms read the filters; the pages import this module

    view = next((view for view in REPORT_VIEWS if view.name == name), None)
    if view is None:
        raise ExportFailed(f"No report named {name!r}.")
    user = export.user
    if not user.is_active or not user.has_perm(finance.PERMISSIONS[name]):
        raise ExportFailed(f"Since it was asked for, its owner may no longer open the {view.title.lower()}.")
    form = view.form_class(QueryDict(export.query), user=user)
    if not form.is_valid():
        reasons = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items())
        raise ExportFailed(f"The filters are no longer valid ({reasons}).")
    table = view().build(user, form.cleaned_data)

    def write(file: BinaryIO, counted: Callable[[Iterable], Iterable]) -> None:
        exports.write_table(replace(table, rows=counted(table.rows)), export.format, file)

    return _Job(total=len(table.rows), write=write)


def _list_job(export: Export, label: str) -> _Job:
    try:
        model_admin = admin.site.get_model_admin(apps.get_model(label))
    except (LookupError, admin.sites.NotRegistered) as error:
        raise ExportFailed(f"No list named {label!r}.") from error
    user = export.user
    listing = list_export_for(model_admin, user=user, query=export.query)
    if not user.is_active or listing is None:
        raise ExportFailed(f"Since it was asked for, its owner may no longer see the {export.title.lower()}.")

    def write(file: BinaryIO, counted: Callable[[Iterable], Iterable]) -> None:
        listing.write(export.format, file, counted(listing.values()))

    return _Job(total=listing.queryset.count(), write=write)


# --- Telling the owner -------------------------------------------------------------------------------------------


@transaction.atomic
def _email_once(*, export_id: int) -> bool:
    """Email the owner that the export is done (or failed), once: the claim and the email share a transaction,
    so a failed send leaves it unclaimed for the next run."""
    claimed = Export.objects.filter(
        pk=export_id, status__in=[Export.Status.DONE, Export.Status.FAILED], emailed_at__isnull=True
    ).update(emailed_at=timezone.now())
    if not claimed:
        return False
    export_message(export=Export.objects.select_related("user").get(pk=export_id)).send()
    return True


def export_message(*, export: Export) -> EmailMessage:
    link = settings.SITE_URL + reverse("admin:reports_export_change", args=[export.pk])
    filters = " · ".join(f"{label}: {value}" for label, value in export.filters)
    lines = [f"Hello {export.user.full_name or export.user.email},", ""]
    if export.status == Export.Status.DONE:
        subject = f"Your export is ready: {export}"
        lines += [
            f"your export of the {export.title.lower()} ({export.get_format_display()}, {export.rows_written:,} "
            f"rows) is ready to download:",
            link,
            "",
            f"The file is kept for {settings.EXPORT_KEEP_DAYS} days.",
        ]
    else:
        subject = f"Your export failed: {export}"
        lines += [f"your export of the {export.title.lower()} could not be written: {export.error}", "", link]
    if filters:
        lines += ["", f"Filters: {filters}"]
    lines += ["", f"Asked for on {moment(export.created_at)}."]
    return EmailMessage(subject=subject, body="\n".join(lines) + "\n", to=[export.user.email])


# --- Keeping it tidy ---------------------------------------------------------------------------------------------


def exports_delete_expired(*, days: int | None = None) -> int:
    """Delete the exports finished more than `days` ago (settings.EXPORT_KEEP_DAYS), with their files, and those
    asked for that long ago that never finished (their task was lost); the number deleted."""
    before = timezone.now() - timedelta(days=settings.EXPORT_KEEP_DAYS if days is None else days)
    deleted = 0
    expired = Q(finished_at__lt=before) | Q(finished_at__isnull=True, created_at__lt=before)
    for export in Export.objects.filter(expired).order_by("pk"):
        if export.file:
            export.file.delete(save=False)
        export.delete()
        deleted += 1
    return deleted
