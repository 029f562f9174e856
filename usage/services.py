"""The one usage import pipeline, used by the upload page, the admin import, the command and the API.

A batch is imported whole or not at all: rows are checked against the catalog as they stream by and
written in the same database transaction (COPY on PostgreSQL); the first bad row stops the writing,
the rest are still checked so that the report lists every bad row, and the transaction is rolled back.
"""

import hashlib
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import BinaryIO

from django.core.files.base import File
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Sum
from django.utils import timezone

from accounts.models import User
from billing_project.billing_time import billing_zone
from billing_project.bulk import history_record_created
from billing_project.errors import Conflict
from catalog.models import Customer, PriceAgreement, Service
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord
from usage.parsing import FileError, ParsedRow, RowError, UsageCsv, parse_fields

ERRORS_KEPT = 1000
FUTURE_TOLERANCE = timedelta(days=1)
_BATCH = 20000
_COLUMNS = (
    "customer_id",
    "service_id",
    "price_agreement_id",
    "quantity",
    "service_time",
    "period",
    "unit_price",
    "currency",
    "upload_id",
    "event_id",
)


class DuplicateFile(Conflict):
    code = "duplicate_file"


@dataclass
class _Outcome:
    row_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    # (customer_id, service_id, period, price_agreement_id, unit_price) ->
    #     [quantity, record count, amount, first service time, last service time]
    summaries: dict[tuple[int, int, date, int, Decimal], list] = field(default_factory=dict)

    def reject(self, errors: list[RowError]) -> None:
        self.error_count += len(errors)
        room = ERRORS_KEPT - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])


class _Catalog:
    """What a row is checked against, loaded once per batch."""

    def __init__(self) -> None:
        self.services = dict(Service.objects.values_list("code", "id"))
        self.active_services = set(Service.objects.filter(active=True).values_list("id", flat=True))
        self.customers = {
            client_id: (pk, status, currency)
            for client_id, pk, status, currency in Customer.objects.values_list("client_id", "pk", "status", "currency")
        }
        self.agreements: dict[tuple[int, int], list[tuple[date, date | None, int, Decimal]]] = {}
        for agreement in PriceAgreement.objects.values_list(
            "customer_id", "service_id", "valid_from", "valid_to", "pk", "unit_price"
        ).order_by("valid_from"):
            self.agreements.setdefault(agreement[:2], []).append(agreement[2:])
        self.closed = set(ClosedPeriod.objects.values_list("customer_id", "period"))
        self._agreement_on: dict[tuple[int, int, date], tuple[int, Decimal] | None] = {}
        self._period_of: dict[date, date] = {}

    def period_of(self, day: date) -> date:
        """The billing period (first of the month) of a local day; a file has few distinct days."""
        period = self._period_of.get(day)
        if period is None:
            period = self._period_of[day] = day.replace(day=1)
        return period

    def agreement_on(self, customer_id: int, service_id: int, day: date) -> tuple[int, Decimal] | None:
        key = (customer_id, service_id, day)
        if key not in self._agreement_on:
            self._agreement_on[key] = next(
                (
                    (pk, unit_price)
                    for valid_from, valid_to, pk, unit_price in self.agreements.get((customer_id, service_id), ())
                    if valid_from <= day and (valid_to is None or day <= valid_to)
                ),
                None,
            )
        return self._agreement_on[key]


def _check_rows(
    rows: Iterable[ParsedRow | list[RowError]], upload: Upload, outcome: _Outcome, received_at: datetime
) -> Iterator[tuple]:
    """Yield the database row of each good usage row; record every bad one in `outcome`."""
    catalog = _Catalog()
    zone = billing_zone()
    latest_allowed = received_at + FUTURE_TOLERANCE
    upload_id = upload.pk
    seen_events: set[tuple[int, str]] = set()
    pending: list[tuple] = []
    for parsed in rows:
        outcome.row_count += 1
        if isinstance(parsed, list):
            outcome.reject(parsed)
            continue
        errors = []
        row = parsed.row
        service_id = catalog.services.get(parsed.service_code)
        if service_id is None:
            errors.append(RowError(row, "serviceName", parsed.service_code, "is not a known service code"))
        elif service_id not in catalog.active_services:
            errors.append(RowError(row, "serviceName", parsed.service_code, "is not an active service"))
        customer = catalog.customers.get(parsed.client_id)
        if customer is None:
            errors.append(RowError(row, "clientId", parsed.client_id, "is not a known client id"))
        elif customer[1] != Customer.Status.ACTIVE:
            errors.append(RowError(row, "clientId", parsed.client_id, f"is a {customer[1]} customer, not active"))
        service_time = parsed.service_time
        if service_time > latest_allowed:
            errors.append(RowError(row, "serviceTime", service_time.isoformat(), "is more than a day in the future"))
        if errors:
            outcome.reject(errors)
            continue

        customer_id, _, currency = customer
        local_day = service_time.astimezone(zone).date()
        period = catalog.period_of(local_day)
        agreement = catalog.agreement_on(customer_id, service_id, local_day)
        if agreement is None:
            errors.append(
                RowError(
                    row,
                    "serviceTime",
                    service_time.isoformat(),
                    f"has no price agreement in force for {parsed.client_id} "
                    f"and {parsed.service_code} on {local_day.isoformat()}",
                )
            )
        if (customer_id, period) in catalog.closed:
            errors.append(
                RowError(
                    row, "serviceTime", service_time.isoformat(), f"falls in {period:%Y-%m}, a closed billing period"
                )
            )
        if parsed.event_id is not None:
            event_key = (customer_id, parsed.event_id)
            if event_key in seen_events:
                errors.append(RowError(row, "eventId", parsed.event_id, "appears earlier in the same batch"))
            seen_events.add(event_key)
        if errors:
            outcome.reject(errors)
            continue

        agreement_id, unit_price = agreement
        pending.append(
            (
                customer_id,
                service_id,
                agreement_id,
                parsed.quantity,
                service_time,
                period,
                unit_price,
                currency,
                upload_id,
                parsed.event_id,
                parsed.row,
            )
        )
        if len(pending) >= _BATCH:
            yield from _without_known_events(pending, outcome)
            pending.clear()
    yield from _without_known_events(pending, outcome)


def _without_known_events(records: list[tuple], outcome: _Outcome) -> Iterator[tuple]:
    """Drop records whose event id was imported before for the customer; add the rest to the summaries."""
    events = {record[9] for record in records if record[9] is not None}
    known = set()
    if events:
        known = set(
            UsageRecord.objects.filter(
                customer_id__in={record[0] for record in records}, event_id__in=events
            ).values_list("customer_id", "event_id")
        )
    for record in records:
        customer_id, service_id, agreement_id, quantity, service_time, period, unit_price, _, _, event_id, row = record
        if event_id is not None and (customer_id, event_id) in known:
            outcome.reject([RowError(row, "eventId", event_id, "was already imported for this customer")])
            continue
        key = (customer_id, service_id, period, agreement_id, unit_price)
        totals = outcome.summaries.get(key)
        if totals is None:
            outcome.summaries[key] = [quantity, 1, quantity * unit_price, service_time, service_time]
        else:
            totals[0] += quantity
            totals[1] += 1
            totals[2] += quantity * unit_price
            if service_time < totals[3]:
                totals[3] = service_time
            elif service_time > totals[4]:
                totals[4] = service_time
        yield record


def _write_records(records: Iterator[tuple], outcome: _Outcome) -> None:
    """Write records batch by batch until the first bad row; after it only keep checking, to report every bad row.

    A batch is read whole before it is written: a COPY cannot share its connection with the checks' queries.
    On PostgreSQL a batch is sent while the next one is checked, so the server and Python work at once.
    """
    if connection.vendor != "postgresql":
        while batch := list(islice(records, _BATCH)):
            if not outcome.error_count:
                _insert_batch(batch)
        return
    database = connections[DEFAULT_DB_ALIAS]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-copy") as sender:
        in_flight = None
        while batch := list(islice(records, _BATCH)):
            if outcome.error_count:
                continue
            block = _copy_block(batch)
            if in_flight is not None:
                in_flight.result()
            in_flight = sender.submit(_copy_block_send, database, block)
        if in_flight is not None:
            in_flight.result()


def _copy_block(batch: list[tuple]) -> str:
    """A batch as one block of COPY text lines: much cheaper than adapting each value with `write_row`."""
    return "".join(
        f"{customer_id}\t{service_id}\t{agreement_id}\t{quantity}\t{service_time}\t{period}\t{unit_price}\t"
        f"{currency}\t{upload_id}\t{_COPY_NULL if event_id is None else _copy_text(event_id)}\n"
        for (
            customer_id,
            service_id,
            agreement_id,
            quantity,
            service_time,
            period,
            unit_price,
            currency,
            upload_id,
            event_id,
            _,
        ) in batch
    )


def _copy_block_send(database, block: str) -> None:
    """Runs in the sender thread on the importing transaction's own connection (psycopg serialises its use)."""
    # Errors are wrapped as Django's: a duplicate event id becomes an IntegrityError.
    with (
        database.wrap_database_errors,
        database.connection.cursor() as cursor,
        cursor.copy(f"COPY {UsageRecord._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
    ):
        copy.write(block)


_COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A string as a field of COPY's text format (ids, currency codes and numbers never need it)."""
    return value.translate(_COPY_ESCAPES)


def _insert_batch(batch: list[tuple]) -> None:
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {UsageRecord._meta.db_table} ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            [_sqlite_params(record) for record in batch],
        )


def _sqlite_params(record: tuple) -> tuple:
    customer_id, service_id, agreement_id, quantity, service_time, period, unit_price, currency, upload_id, event = (
        record[:-1]
    )
    return (
        customer_id,
        service_id,
        agreement_id,
        str(quantity),
        service_time.strftime("%Y-%m-%d %H:%M:%S.%f"),
        period.isoformat(),
        str(unit_price),
        currency,
        upload_id,
        event,
    )


def _hold_referenced_catalog_rows(outcome: _Outcome) -> None:
    """Stand in for the foreign keys usage records do not carry: the rows they point at stay until commit."""
    if connection.vendor != "postgresql":
        return  # SQLite runs one writer at a time
    service_ids = sorted({key[1] for key in outcome.summaries})
    agreement_ids = sorted({key[3] for key in outcome.summaries})
    with connection.cursor() as cursor:
        for table, ids in (
            (Service._meta.db_table, service_ids),
            (PriceAgreement._meta.db_table, agreement_ids),
        ):
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", [ids])
            if cursor.rowcount != len(ids):
                raise Conflict("A service or price agreement of this batch was deleted meanwhile; import it again.")


def _apply_summaries(outcome: _Outcome) -> None:
    """Add this batch to the monthly summaries, under a lock on its customers taken in primary-key order."""
    customer_ids = sorted({key[0] for key in outcome.summaries})
    list(Customer.objects.select_for_update().filter(pk__in=customer_ids).order_by("pk").values_list("pk"))
    periods = {(key[0], key[2]) for key in outcome.summaries}
    closed_meanwhile = ClosedPeriod.objects.filter(customer_id__in=customer_ids).values_list("customer_id", "period")
    if periods & set(closed_meanwhile):
        raise Conflict("A billing period of this batch was closed while it was imported; import it again.")
    _hold_referenced_catalog_rows(outcome)
    existing = {
        (s.customer_id, s.service_id, s.period, s.price_agreement_id, s.unit_price): s
        for s in MonthlySummary.objects.select_for_update().filter(
            customer_id__in=customer_ids, period__in={period for _, period in periods}
        )
    }
    changed, created = [], []
    for key, (quantity, count, amount, first_time, last_time) in outcome.summaries.items():
        summary = existing.get(key)
        if summary is None:
            customer_id, service_id, period, agreement_id, unit_price = key
            created.append(
                MonthlySummary(
                    customer_id=customer_id,
                    service_id=service_id,
                    period=period,
                    price_agreement_id=agreement_id,
                    unit_price=unit_price,
                    quantity=quantity,
                    record_count=count,
                    amount=amount,
                    first_service_time=first_time,
                    last_service_time=last_time,
                )
            )
        else:
            summary.quantity += quantity
            summary.record_count += count
            summary.amount += amount
            summary.first_service_time = min(summary.first_service_time, first_time)
            summary.last_service_time = max(summary.last_service_time, last_time)
            changed.append(summary)
    MonthlySummary.objects.bulk_create(created)
    MonthlySummary.objects.bulk_update(
        changed, ["quantity", "record_count", "amount", "first_service_time", "last_service_time"]
    )


def _import_rows(upload: Upload, rows: Iterable[ParsedRow | list[RowError]], received_at: datetime) -> _Outcome:
    outcome = _Outcome()
    try:
        with transaction.atomic():
            _write_records(_check_rows(rows, upload, outcome, received_at), outcome)
            if outcome.error_count:
                raise _RolledBack
            _apply_summaries(outcome)
    except _RolledBack:
        pass
    except IntegrityError as error:
        if "usage_event_unique" not in str(error):
            raise
        raise Conflict(
            "Another batch imported some of these event ids at the same moment; nothing was imported, try again.",
            code="concurrent_event_ids",
        ) from error
    return outcome


class _RolledBack(Exception):
    pass


def _finish(upload: Upload, outcome: _Outcome, started: float, warnings: list[str]) -> Upload:
    upload.row_count = outcome.row_count
    upload.error_count = outcome.error_count
    upload.errors = [error.as_dict() for error in outcome.errors]
    upload.warnings = warnings
    upload.imported_count = 0 if outcome.error_count else outcome.row_count
    upload.status = Upload.Status.FAILED if outcome.error_count else Upload.Status.IMPORTED
    upload.finished_at = timezone.now()
    upload.duration_ms = round((time.perf_counter() - started) * 1000)
    upload.save()
    return upload


def _sha256(stream: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def usage_import_file(
    *,
    actor: User | None,
    stream: BinaryIO,
    name: str,
    source: str = Upload.Source.UPLOAD,
    force: bool = False,
    keep_file: bool = True,
    received_at: datetime | None = None,
) -> Upload:
    """Import a usage file whole or not at all; the returned upload says which, with every bad row.

    Usage more than a day after `received_at` (default: now) is refused as being in the future.
    Raises DuplicateFile when the same content was imported before and `force` is not set.
    """
    started = time.perf_counter()
    sha256, size = _sha256(stream)
    if not force and Upload.objects.filter(sha256=sha256, status=Upload.Status.IMPORTED).exists():
        raise DuplicateFile(
            f"This file's content was already imported ({name}); import it again only on purpose (force)."
        )
    upload = Upload(source=source, original_name=name[:255], sha256=sha256, size=size, forced=force, created_by=actor)
    upload._history_user = actor
    if keep_file:
        upload.file.save(name, File(stream), save=False)
        stream.seek(0)
    upload.save()
    try:
        usage_file = UsageCsv(stream, default_zone=billing_zone())
        outcome = _import_rows(upload, usage_file.rows(), received_at or timezone.now())
    except (FileError, Conflict) as error:
        # The batch as a whole failed (unreadable past the first rows, or raced by another batch).
        outcome = _Outcome()
        outcome.reject([RowError(1, "file", "", str(error))])
        return _finish(upload, outcome, started, [])
    return _finish(upload, outcome, started, usage_file.warnings)


def rebuild_usage_summaries(*, customer_ids: list[int] | None = None) -> int:
    """Recompute monthly summaries from the records; returns how many there are now."""
    with transaction.atomic():
        customers = Customer.objects.select_for_update().order_by("pk")
        if customer_ids is not None:
            customers = customers.filter(pk__in=customer_ids)
        locked = list(customers.values_list("pk", flat=True))
        MonthlySummary.objects.filter(customer_id__in=locked).delete()
        totals = (
            UsageRecord.objects.filter(customer_id__in=locked)
            .values("customer_id", "service_id", "period", "price_agreement_id", "unit_price")
            .annotate(
                total_quantity=Sum("quantity"),
                record_count=Count("pk"),
                amount=Sum(
                    F("quantity") * F("unit_price"), output_field=DecimalField(max_digits=30, decimal_places=12)
                ),
                first_service_time=Min("service_time"),
                last_service_time=Max("service_time"),
            )
            .order_by()
        )
        MonthlySummary.objects.bulk_create(
            MonthlySummary(
                customer_id=total["customer_id"],
                service_id=total["service_id"],
                period=total["period"],
                price_agreement_id=total["price_agreement_id"],
                unit_price=total["unit_price"],
                quantity=total["total_quantity"],
                record_count=total["record_count"],
                amount=total["amount"],
                first_service_time=total["first_service_time"],
                last_service_time=total["last_service_time"],
            )
            for total in totals.iterator()
        )
        return MonthlySummary.objects.filter(customer_id__in=locked).count()


def _event_rows(events: list[dict], zone) -> Iterator[ParsedRow | list[RowError]]:
    """API events as parsed rows; `row` is the event's position in the batch, from 1."""
    quantities: dict = {}
    for position, event in enumerate(events, start=1):
        text = {key: "" if event.get(key) is None else str(event[key]) for key in _EVENT_KEYS}
        yield parse_fields(
            position,
            text["serviceName"],
            text["clientId"],
            text["quantity"],
            text["serviceTime"],
            text["eventId"],
            zone,
            quantities,
        )


_EVENT_KEYS = ("serviceName", "clientId", "quantity", "serviceTime", "eventId")


def usage_import_events(*, actor: User | None, events: list[dict], received_at: datetime | None = None) -> Upload:
    """Import a batch of API events (keys as in the CSV header) whole or not at all, like a file."""
    started = time.perf_counter()
    upload = Upload(source=Upload.Source.API, original_name=f"API batch of {len(events)} events", created_by=actor)
    upload._history_user = actor
    upload.save()
    outcome = _import_rows(upload, _event_rows(events, billing_zone()), received_at or timezone.now())
    return _finish(upload, outcome, started, [])


def usage_close_periods(*, actor: User | None, customer_ids: Iterable[int], period: date) -> int:
    """Close a billing month for these customers: no more usage can land in it. Returns how many were new.

    The caller holds the customers' row locks (as an import does before it writes its summaries), so
    an import that is still running sees the closed period when it finishes and is rolled back.
    """
    customer_ids = set(customer_ids)
    already = set(
        ClosedPeriod.objects.filter(customer_id__in=customer_ids, period=period).values_list("customer_id", flat=True)
    )
    new = sorted(customer_ids - already)
    if new:
        ClosedPeriod.objects.bulk_create(
            [ClosedPeriod(customer_id=customer_id, period=period, closed_by=actor) for customer_id in new]
        )
        history_record_created(
            ClosedPeriod,
            where=f"period = %s AND customer_id IN ({', '.join(['%s'] * len(new))})",
            params=[connection.ops.adapt_datefield_value(period), *new],
            user=actor,
        )
    return len(new)
