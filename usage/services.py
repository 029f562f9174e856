"""The one usage import pipeline, used by the upload page, the admin import, the command and the API.

A batch is imported whole or not at all: rows are checked against the catalog as they stream by and
written in the same database transaction (COPY on PostgreSQL); the first bad row stops the writing,
the rest are still checked so that the report lists every bad row, and the transaction is rolled back.
"""

import calendar
import hashlib
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import BinaryIO

from django.core.files.base import File
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Count, DecimalField, F, Max, Min, Sum
from django.utils import timezone

from accounts.models import User
from billing_project import money
from billing_project.billing_time import FUTURE_TOLERANCE, billing_zone, booking_time_problem, earliest_booking_time
from billing_project.bulk import history_record_created
from billing_project.errors import Conflict
from billing_project.text import printable
from catalog.locks import lock_customers
from catalog.models import Customer, PriceAgreement, Service
from usage.models import ClosedPeriod, DailyUsage, MonthlySummary, ServiceUsage, Upload, UsageRecord
from usage.parsing import FileError, ParsedRow, RowError, UsageCsv, parse_fields

ERRORS_KEPT = 1000
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


@dataclass(eq=False, slots=True)
class _Tally:
    """The records of a batch for one agreement and billing period: a monthly summary in the making.

    The catalog hands out one per agreement and period: each record is added to it as it is written, and
    the COPY text its records share is formatted once. A record refers to its tally by its position in
    `_Outcome.tallies`, so that it holds only numbers, strings and times: the garbage collector soon stops
    looking at such tuples, whereas a million records holding an object cost it seconds.
    """

    customer_id: int
    service_id: int
    period: date
    agreement_id: int
    unit_price: Decimal
    currency: str
    upload_id: int
    copy_head: str  # the record's COPY text before its quantity
    copy_tail: str  # after its service time, up to its event id
    copy_tail_no_event: str  # the same, to the end of the line, for a record without event id
    quantity: Decimal = Decimal(0)
    record_count: int = 0
    first_service_time: datetime | None = None
    last_service_time: datetime | None = None

    def add_day(self, day: "_DayTally") -> None:
        self.quantity += day.quantity
        self.record_count += day.record_count
        if self.first_service_time is None:
            self.first_service_time, self.last_service_time = day.first_service_time, day.last_service_time
        else:
            self.first_service_time = min(self.first_service_time, day.first_service_time)
            self.last_service_time = max(self.last_service_time, day.last_service_time)

    @property
    def amount(self) -> Decimal:
        return _amount(self.quantity, self.unit_price)


def _amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    # The sum of each record's quantity times one unit price: exact, like the sum of the products.
    return money.EXACT.multiply(quantity, unit_price)


# A record refers to its day's tally by a number: its monthly tally's position shifted left by _DAY_BITS, plus the
# day of the month. No tuple to build per row, and the monthly tally is one shift away.
_DAY_BITS = 5
_DAY_OF_MONTH = (1 << _DAY_BITS) - 1


@dataclass(eq=False, slots=True)
class _DayTally:
    """The records of a batch for one monthly tally and one day in the billing time zone: a row of daily usage in
    the making, and a part of its monthly summary (which is the sum of its days)."""

    day: date
    quantity: Decimal = Decimal(0)
    record_count: int = 0
    first_service_time: datetime | None = None
    last_service_time: datetime | None = None

    def add(self, quantity: Decimal, service_time: datetime) -> None:
        self.quantity += quantity
        self.record_count += 1
        if self.last_service_time is None:
            self.first_service_time = self.last_service_time = service_time
        elif service_time > self.last_service_time:  # files are mostly in time order: the usual case first
            self.last_service_time = service_time
        elif service_time < self.first_service_time:
            self.first_service_time = service_time


@dataclass
class _Outcome:
    row_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    tallies: list[_Tally] = field(default_factory=list)  # every tally the catalog handed out
    days: dict[int, _DayTally] = field(default_factory=dict)  # by the number records refer to them by

    def day(self, number: int) -> _DayTally:
        """The day tally a record refers to, made when its first record is written."""
        day = self.days.get(number)
        if day is None:
            period = self.tallies[number >> _DAY_BITS].period
            day = self.days[number] = _DayTally(period.replace(day=number & _DAY_OF_MONTH))
        return day

    def reject(self, errors: list[RowError]) -> None:
        self.error_count += len(errors)
        room = ERRORS_KEPT - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])


class _Catalog:
    """What a row is checked against, loaded once per batch."""

    def __init__(self, upload_id: int, tallies: list[_Tally]) -> None:
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
        self.upload_id = upload_id
        self.tallies = tallies
        # (customer, service, period) -> the tally (its position) of the one agreement in force all month, or
        # else the agreements overlapping the month as (valid_from, valid_to, tally), in order of valid_from.
        self._in_month: dict[tuple[int, int, date], int | list[tuple[date, date | None, int]]] = {}
        # (service code, client id, period) -> (customer, agreements in the month as in `in_month`) once a row
        # of theirs passed the checks that do not depend on its day or time: service and customer known and
        # active, the month open. Rows with made-up ids or in closed months do not make it grow.
        self.settled: dict[tuple[str, str, date], tuple[int, int | list[tuple[date, date | None, int]]]] = {}

    def in_month(
        self, customer_id: int, service_id: int, currency: str, period: date
    ) -> int | list[tuple[date, date | None, int]]:
        """The pair's agreements in a month, looked up once: most pairs have one all month long."""
        key = (customer_id, service_id, period)
        in_month = self._in_month.get(key)
        if in_month is None:
            in_month = self._in_month[key] = self._agreements_in_month(customer_id, service_id, currency, period)
        return in_month

    def _agreements_in_month(
        self, customer_id: int, service_id: int, currency: str, period: date
    ) -> int | list[tuple[date, date | None, int]]:
        last_day = period.replace(day=calendar.monthrange(period.year, period.month)[1])
        overlapping = [
            (valid_from, valid_to, self._tally(customer_id, service_id, currency, period, pk, unit_price))
            for valid_from, valid_to, pk, unit_price in self.agreements.get((customer_id, service_id), ())
            if valid_from <= last_day and (valid_to is None or period <= valid_to)
        ]
        if len(overlapping) == 1:
            valid_from, valid_to, tally = overlapping[0]
            if valid_from <= period and (valid_to is None or last_day <= valid_to):
                return tally
        return overlapping

    def _tally(
        self, customer_id: int, service_id: int, currency: str, period: date, agreement_id: int, unit_price: Decimal
    ) -> int:
        tally = _Tally(
            customer_id,
            service_id,
            period,
            agreement_id,
            unit_price,
            currency,
            self.upload_id,
            copy_head=f"{customer_id}\t{service_id}\t{agreement_id}\t",
            copy_tail=f"\t{period}\t{unit_price}\t{currency}\t{self.upload_id}\t",
            copy_tail_no_event=f"\t{period}\t{unit_price}\t{currency}\t{self.upload_id}\t{_COPY_NULL}\n",
        )
        self.tallies.append(tally)
        return len(self.tallies) - 1


def _tally_on(in_month: int | list[tuple[date, date | None, int]], day: date) -> int | None:
    """The tally (its position) of the agreement in force on a local day, or None if there is none."""
    if in_month.__class__ is int:
        return in_month
    for valid_from, valid_to, tally in in_month:
        if valid_from <= day and (valid_to is None or day <= valid_to):
            return tally
    return None


def _check_rows(
    rows: Iterable[ParsedRow | list[RowError]], upload: Upload, outcome: _Outcome, received_at: datetime
) -> Iterator[list[tuple]]:
    """Yield the good rows in batches of records; record every bad one in `outcome`.

    A record is (customer id, day, quantity, service time, its UTC text or None, event id, row), its day the
    number of its day tally (its monthly tally's position in `outcome.tallies` and its day of the month): a plain
    tuple of numbers, strings and times, which the garbage collector soon stops looking at (a ParsedRow, a tuple
    subclass, it never does). A record is counted in its day tally when it is written (`_copy_block_counted`,
    `_insert_batch`).
    """
    tallies = outcome.tallies
    catalog = _Catalog(upload.pk, tallies)
    settled_rows = catalog.settled
    zone = billing_zone()
    earliest_allowed, latest_allowed = earliest_booking_time(), received_at + FUTURE_TOLERANCE
    periods: dict[date, date] = {}  # local day -> its billing period (first of the month)
    seen_events: set[tuple[int, str]] = set()
    pending: list[tuple] = []
    pending_events = False
    for parsed in rows:
        outcome.row_count += 1
        if isinstance(parsed, list):
            outcome.reject(parsed)
            continue
        row, service_code, client_id, quantity, service_time, event_id, utc_text = parsed
        tally = local_day = period = None
        if earliest_allowed <= service_time <= latest_allowed:  # outside, it may have no local day at all
            local_day = service_time.astimezone(zone).date()
            period = periods.get(local_day)
            if period is None:
                period = periods[local_day] = local_day.replace(day=1)
            # A row like one seen before needs only its agreement picked by day.
            settled = settled_rows.get((service_code, client_id, period))
            if settled is not None:
                customer_id, in_month = settled
                tally = in_month if in_month.__class__ is int else _tally_on(in_month, local_day)
        errors = None
        if tally is None:  # not seen before, or an error: the full checks say which
            errors, checked = _check_in_catalog(parsed, catalog, received_at, local_day, period)
            if checked is None:  # the service, the customer or the time is wrong: the event id is not looked at
                outcome.reject(errors)
                continue
            customer_id, tally = checked
        if event_id is not None:
            event_key = (customer_id, event_id)
            if event_key in seen_events:
                errors = errors or []
                errors.append(RowError(row, "eventId", event_id, "appears earlier in the same batch"))
            seen_events.add(event_key)
        if errors:
            outcome.reject(errors)
            continue

        pending_events = pending_events or event_id is not None
        pending.append(
            (customer_id, tally << _DAY_BITS | local_day.day, quantity, service_time, utc_text, event_id, row)
        )
        if len(pending) >= _BATCH:
            yield _without_known_events(pending, outcome) if pending_events else pending
            pending, pending_events = [], False
    if pending:
        yield _without_known_events(pending, outcome) if pending_events else pending


def _check_in_catalog(
    parsed: ParsedRow, catalog: _Catalog, received_at: datetime, local_day: date | None, period: date | None
) -> tuple[list[RowError], tuple[int, int | None] | None]:
    """A row's errors against the catalog, and its (customer, tally) unless the service, customer or time is wrong."""
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
    if problem := booking_time_problem(service_time, now=received_at):
        errors.append(RowError(row, "serviceTime", service_time.isoformat(), problem))
    if errors:
        return errors, None

    customer_id, _, currency = customer
    in_month = catalog.in_month(customer_id, service_id, currency, period)
    tally = _tally_on(in_month, local_day)
    if tally is None:
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
            RowError(row, "serviceTime", service_time.isoformat(), f"falls in {period:%Y-%m}, a closed billing period")
        )
    else:
        catalog.settled[(parsed.service_code, parsed.client_id, period)] = (customer_id, in_month)
    return errors, (customer_id, tally)


def _without_known_events(records: list[tuple], outcome: _Outcome) -> list[tuple]:
    """Drop the records whose event id was imported before for the customer."""
    with_events = [record for record in records if record[5] is not None]
    known = set(
        UsageRecord.objects.filter(
            customer_id__in={record[0] for record in with_events}, event_id__in={record[5] for record in with_events}
        ).values_list("customer_id", "event_id")
    )
    kept = []
    for record in records:
        customer_id, _, _, _, _, event_id, row = record
        if event_id is not None and (customer_id, event_id) in known:
            outcome.reject([RowError(row, "eventId", event_id, "was already imported for this customer")])
            continue
        kept.append(record)
    return kept


_CUSTOMER = itemgetter(0)


def _write_records(batches: Iterator[list[tuple]], outcome: _Outcome) -> None:
    """Write records batch by batch until the first bad row; after it only keep checking, to report every bad row.

    A batch is read whole before it is written: a COPY cannot share its connection with the checks' queries.
    It is written in customer order, file order within each customer: the index on (customer, period, service)
    takes a batch that walks it from start to end for less than one that jumps about it.
    On PostgreSQL a batch is sent while the next one is checked, so the server and Python work at once.
    """
    if connection.vendor != "postgresql":
        for batch in batches:
            if not outcome.error_count:
                batch.sort(key=_CUSTOMER)
                _insert_batch(batch, outcome)
        return
    database = connections[DEFAULT_DB_ALIAS]
    with _quick_gil_handover, ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-copy") as sender:
        in_flight = None
        for batch in batches:
            if outcome.error_count:
                continue
            batch.sort(key=_CUSTOMER)
            block = _copy_block_counted(batch, outcome)
            if in_flight is not None:
                in_flight.result()
            in_flight = sender.submit(_copy_block_send, database, block)
        if in_flight is not None:
            in_flight.result()


class _QuickGilHandover:
    """While a PostgreSQL import runs, threads hand the GIL over within 1 ms instead of Python's 5 ms.

    The checking thread holds the GIL all the time; the sender thread needs it for a moment each time the
    server has taken in some data or finished a batch, and at 5 ms a wait it left the server idle for a
    third of a million-row import (1,000,000 rows, 10,000 customers: 14.9 s, 10.5 s at 1 ms).
    `sys.setswitchinterval` is for the whole process: the first import to start sets it, the last to end
    puts back what it was.
    """

    INTERVAL = 0.001

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        with self._lock:
            if not self._running:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, self.INTERVAL))
            self._running += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._running -= 1
            if not self._running:
                sys.setswitchinterval(self._saved)


_quick_gil_handover = _QuickGilHandover()


def _copy_block_counted(batch: list[tuple], outcome: _Outcome) -> str:
    """A batch as one block of COPY text lines, each record added to its day tally on the way.

    Much cheaper than adapting each value with `write_row`. The tally is counted here rather than when the
    row is checked because it is at hand: at 10,000 customers reaching it twice cost half a second more.
    """
    lines = []
    tallies, days, new_day = outcome.tallies, outcome.days, outcome.day
    for _, number, quantity, service_time, utc_text, event_id, _ in batch:
        day = days.get(number)
        if day is None:
            day = new_day(number)
        day.add(quantity, service_time)
        shared = tallies[number >> _DAY_BITS]
        if event_id is None:
            lines.append(f"{shared.copy_head}{quantity}\t{utc_text or service_time}{shared.copy_tail_no_event}")
        else:
            lines.append(
                f"{shared.copy_head}{quantity}\t{utc_text or service_time}{shared.copy_tail}{_copy_text(event_id)}\n"
            )
    return "".join(lines)


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


def _insert_batch(batch: list[tuple], outcome: _Outcome) -> None:
    """SQLite: insert a batch of records, each added to its day tally."""
    for _, number, quantity, service_time, *_ in batch:
        outcome.day(number).add(quantity, service_time)
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {UsageRecord._meta.db_table} ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            [_sqlite_params(record, outcome.tallies) for record in batch],
        )


def _sqlite_params(record: tuple, tallies: list[_Tally]) -> tuple:
    _, number, quantity, service_time, _, event_id, _ = record
    tally = tallies[number >> _DAY_BITS]
    return (
        tally.customer_id,
        tally.service_id,
        tally.agreement_id,
        str(quantity),
        # The text Django itself writes (UTC, no fraction of a second when there is none), so that an equality
        # on the time (the lists' cursor) matches it.
        str(service_time.astimezone(UTC).replace(tzinfo=None)),
        tally.period.isoformat(),
        str(tally.unit_price),
        tally.currency,
        tally.upload_id,
        event_id,
    )


def _hold_referenced_catalog_rows(summaries: list[_Tally]) -> None:
    """Stand in for the foreign keys usage records do not carry: the rows they point at stay until commit."""
    if connection.vendor != "postgresql":
        return  # SQLite runs one writer at a time
    service_ids = sorted({tally.service_id for tally in summaries})
    agreement_ids = sorted({tally.agreement_id for tally in summaries})
    with connection.cursor() as cursor:
        for table, ids in (
            (Service._meta.db_table, service_ids),
            (PriceAgreement._meta.db_table, agreement_ids),
        ):
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE", [ids])
            if cursor.rowcount != len(ids):
                raise Conflict("A service or price agreement of this batch was deleted meanwhile; import it again.")


def _apply_summaries(outcome: _Outcome) -> None:
    """Add this batch to the monthly summaries and the daily usage, under a lock on its customers taken in
    primary-key order."""
    for number, day in outcome.days.items():
        outcome.tallies[number >> _DAY_BITS].add_day(day)
    summaries = [tally for tally in outcome.tallies if tally.record_count]
    customer_ids = sorted({tally.customer_id for tally in summaries})
    lock_customers(customer_ids)
    periods = {(tally.customer_id, tally.period) for tally in summaries}
    closed_meanwhile = ClosedPeriod.objects.filter(customer_id__in=customer_ids).values_list("customer_id", "period")
    if periods & set(closed_meanwhile):
        raise Conflict("A billing period of this batch was closed while it was imported; import it again.")
    _hold_referenced_catalog_rows(summaries)
    days = [(outcome.tallies[number >> _DAY_BITS], day) for number, day in outcome.days.items()]
    if connection.vendor == "postgresql":
        _add_to_summaries_by_copy(summaries)
        _add_to_daily_usage_by_copy(days)
    else:
        _add_to_summaries(summaries)
        _add_to_daily_usage(days)
    currencies = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "currency"))
    added: dict[tuple[date, str, int], Decimal] = defaultdict(Decimal)
    for tally in summaries:
        added[tally.period, currencies[tally.customer_id], tally.service_id] += tally.amount
    service_usage_add(added)


@transaction.atomic
def service_usage_add(amounts: dict[tuple[date, str, int], Decimal]) -> None:
    """Add to the usage kept per month, currency and service ({(period, currency, service id): amount}). Its rows
    are shared between customers: each is made if missing and locked in key order, after the customers' summaries,
    so concurrent imports wait for each other here, at the end of their transaction, and never deadlock."""
    keys = sorted(key for key, amount in amounts.items() if amount)
    if not keys:
        return
    ServiceUsage.objects.bulk_create(
        [
            ServiceUsage(period=period, currency=currency, service_id=service_id, amount=0)
            for period, currency, service_id in keys
        ],
        ignore_conflicts=True,
    )
    rows = {
        (row.period, row.currency, row.service_id): row
        for row in ServiceUsage.objects.select_for_update()
        .filter(
            period__in={key[0] for key in keys},
            currency__in={key[1] for key in keys},
            service_id__in={key[2] for key in keys},
        )
        .order_by("period", "currency", "service_id")
    }
    for key in keys:
        rows[key].amount += amounts[key]
    ServiceUsage.objects.bulk_update([rows[key] for key in keys], ["amount"])


def _service_usage_of(summaries) -> dict[tuple[date, str, int], Decimal]:
    """These summaries added up per month, currency and service, in Decimal (SQLite would sum floating point)."""
    amounts: dict[tuple[date, str, int], Decimal] = defaultdict(Decimal)
    rows = summaries.order_by().values_list("period", "customer__currency", "service_id", "amount")
    for period, currency, service_id, amount in rows.iterator(5000):
        amounts[period, currency, service_id] += amount
    return amounts


def _add_to_summaries(summaries: list[_Tally]) -> None:
    """Read the summaries the batch adds to, add to them, write them back (SQLite: one writer at a time)."""
    existing = {
        (s.customer_id, s.service_id, s.period, s.price_agreement_id, s.unit_price): s
        for s in MonthlySummary.objects.select_for_update().filter(
            customer_id__in={tally.customer_id for tally in summaries},
            period__in={tally.period for tally in summaries},
        )
    }
    changed, created = [], []
    for tally in summaries:
        key = (tally.customer_id, tally.service_id, tally.period, tally.agreement_id, tally.unit_price)
        summary = existing.get(key)
        if summary is None:
            created.append(
                MonthlySummary(
                    customer_id=tally.customer_id,
                    service_id=tally.service_id,
                    period=tally.period,
                    price_agreement_id=tally.agreement_id,
                    unit_price=tally.unit_price,
                    quantity=tally.quantity,
                    record_count=tally.record_count,
                    amount=tally.amount,
                    first_service_time=tally.first_service_time,
                    last_service_time=tally.last_service_time,
                )
            )
        else:
            summary.quantity += tally.quantity
            summary.record_count += tally.record_count
            summary.amount += tally.amount
            summary.first_service_time = min(summary.first_service_time, tally.first_service_time)
            summary.last_service_time = max(summary.last_service_time, tally.last_service_time)
            changed.append(summary)
    MonthlySummary.objects.bulk_create(created)
    MonthlySummary.objects.bulk_update(
        changed, ["quantity", "record_count", "amount", "first_service_time", "last_service_time"]
    )


_SUMMARY_COLUMNS = (
    "customer_id",
    "service_id",
    "period",
    "price_agreement_id",
    "unit_price",
    "quantity",
    "record_count",
    "amount",
    "first_service_time",
    "last_service_time",
)


def _add_to_summaries_by_copy(summaries: list[_Tally]) -> None:
    """PostgreSQL: COPY the batch's totals into a temporary table, then add them in one INSERT … ON CONFLICT.

    At 10,000 customers a million rows make some 45,000 summaries: `_add_to_summaries` builds a model
    instance and a list of query parameters for each (3.2 to 4.0 s); this takes 0.75 to 1 s. A summary
    that exists is updated in place, which locks it as `select_for_update` did.
    """
    table = MonthlySummary._meta.db_table
    columns = ", ".join(_SUMMARY_COLUMNS)
    block = "".join(
        [
            f"{t.customer_id}\t{t.service_id}\t{t.period}\t{t.agreement_id}\t{t.unit_price}\t{t.quantity}\t"
            f"{t.record_count}\t{t.amount}\t{t.first_service_time}\t{t.last_service_time}\n"
            for t in summaries
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE usage_summary_batch (customer_id bigint, service_id bigint, period date,"
            " price_agreement_id bigint, unit_price numeric, quantity numeric, record_count integer, amount numeric,"
            " first_service_time timestamptz, last_service_time timestamptz) ON COMMIT DROP"
        )
        with cursor.copy(f"COPY usage_summary_batch ({columns}) FROM STDIN") as copy:
            copy.write(block)
        cursor.execute(
            f"INSERT INTO {table} AS summary ({columns}) SELECT {columns} FROM usage_summary_batch"
            " ON CONFLICT ON CONSTRAINT summary_unique_per_month_and_price DO UPDATE SET"
            " quantity = summary.quantity + excluded.quantity,"
            " record_count = summary.record_count + excluded.record_count,"
            " amount = summary.amount + excluded.amount,"
            " first_service_time = least(summary.first_service_time, excluded.first_service_time),"
            " last_service_time = greatest(summary.last_service_time, excluded.last_service_time)"
        )
        cursor.execute("DROP TABLE usage_summary_batch")


def _add_to_daily_usage(days: list[tuple[_Tally, _DayTally]]) -> None:
    """Read the days the batch adds to, add to them, write them back (SQLite: one writer at a time)."""
    existing = {
        (row.customer_id, row.service_id, row.day): row
        for row in DailyUsage.objects.filter(
            customer_id__in={tally.customer_id for tally, _ in days}, day__in={day.day for _, day in days}
        )
    }
    changed, created = [], []
    for tally, day in days:
        amount = _amount(day.quantity, tally.unit_price)
        row = existing.get((tally.customer_id, tally.service_id, day.day))
        if row is None:
            created.append(
                DailyUsage(
                    customer_id=tally.customer_id,
                    service_id=tally.service_id,
                    day=day.day,
                    quantity=day.quantity,
                    record_count=day.record_count,
                    amount=amount,
                )
            )
        else:
            row.quantity += day.quantity
            row.record_count += day.record_count
            row.amount += amount
            changed.append(row)
    DailyUsage.objects.bulk_create(created)
    DailyUsage.objects.bulk_update(changed, ["quantity", "record_count", "amount"])


_DAILY_COLUMNS = "customer_id, service_id, day, quantity, record_count, amount"


def _add_to_daily_usage_by_copy(days: list[tuple[_Tally, _DayTally]]) -> None:
    """PostgreSQL: COPY the batch's days into a temporary table, then add them in one INSERT … ON CONFLICT, as
    `_add_to_summaries_by_copy` does. A batch holds each customer, service and day once: one agreement is in force
    on a day."""
    block = "".join(
        [
            f"{tally.customer_id}\t{tally.service_id}\t{day.day}\t{day.quantity}\t{day.record_count}\t"
            f"{_amount(day.quantity, tally.unit_price)}\n"
            for tally, day in days
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE usage_daily_batch (customer_id bigint, service_id bigint, day date,"
            " quantity numeric, record_count integer, amount numeric) ON COMMIT DROP"
        )
        with cursor.copy(f"COPY usage_daily_batch ({_DAILY_COLUMNS}) FROM STDIN") as copy:
            copy.write(block)
        cursor.execute(
            f"INSERT INTO {DailyUsage._meta.db_table} AS daily ({_DAILY_COLUMNS})"
            f" SELECT {_DAILY_COLUMNS} FROM usage_daily_batch"
            " ON CONFLICT ON CONSTRAINT daily_usage_unique DO UPDATE SET"
            " quantity = daily.quantity + excluded.quantity,"
            " record_count = daily.record_count + excluded.record_count,"
            " amount = daily.amount + excluded.amount"
        )
        cursor.execute("DROP TABLE usage_daily_batch")


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
    upload.warnings = [printable(warning) for warning in warnings]
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
    name = printable(name)  # a file name is chosen by whoever made the file
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
    """Recompute the monthly summaries and the daily usage from the records, and the usage kept per month and
    service by the difference they make; returns how many monthly summaries there are now."""
    with transaction.atomic():
        locked = lock_customers(customer_ids)
        _rebuild_daily_usage(locked)
        # Some customers: the kept usage moves by the difference their summaries make. Every customer: it is
        # written anew from the summaries, so what they were before is not read.
        before = (
            {} if customer_ids is None else _service_usage_of(MonthlySummary.objects.filter(customer_id__in=locked))
        )
        MonthlySummary.objects.filter(customer_id__in=locked).delete()
        totals = (
            UsageRecord.objects.filter(customer_id__in=locked)
            .values("customer_id", "service_id", "period", "price_agreement_id", "unit_price")
            .annotate(
                total_quantity=Sum(
                    "quantity",
                    output_field=DecimalField(
                        max_digits=money.SUMMARY_QUANTITY_MAX_DIGITS, decimal_places=money.QUANTITY_DECIMAL_PLACES
                    ),
                ),
                record_count=Count("pk"),
                amount=Sum(
                    F("quantity") * F("unit_price"),
                    output_field=DecimalField(
                        max_digits=money.SUMMARY_AMOUNT_MAX_DIGITS, decimal_places=money.SUMMARY_AMOUNT_DECIMAL_PLACES
                    ),
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
        after = _service_usage_of(MonthlySummary.objects.filter(customer_id__in=locked))
        if customer_ids is None:  # every customer locked: no import adds to the kept usage meanwhile
            ServiceUsage.objects.all().delete()
            ServiceUsage.objects.bulk_create(
                ServiceUsage(period=period, currency=currency, service_id=service_id, amount=amount)
                for (period, currency, service_id), amount in sorted(after.items())
            )
        else:
            service_usage_add({key: after.get(key, 0) - before.get(key, 0) for key in {*before, *after}})
        return MonthlySummary.objects.filter(customer_id__in=locked).count()


def _rebuild_daily_usage(customer_ids: list[int]) -> None:
    """Recompute these customers' daily usage from their records (the caller holds their locks)."""
    DailyUsage.objects.filter(customer_id__in=customer_ids).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {DailyUsage._meta.db_table} ({_DAILY_COLUMNS})"
                " SELECT customer_id, service_id, (service_time AT TIME ZONE %s)::date, sum(quantity), count(*),"
                f" sum(quantity * unit_price) FROM {UsageRecord._meta.db_table} WHERE customer_id = ANY(%s)"
                " GROUP BY 1, 2, 3",
                [str(billing_zone()), customer_ids],
            )
        return
    # SQLite sums decimals as floating point: sum here, exactly.
    zone = billing_zone()
    totals: dict[tuple[int, int, date], list] = {}
    records = UsageRecord.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "service_id", "service_time", "quantity", "unit_price"
    )
    for customer_id, service_id, service_time, quantity, unit_price in records.iterator():
        total = totals.setdefault((customer_id, service_id, service_time.astimezone(zone).date()), [0, 0, 0])
        total[0] += quantity
        total[1] += 1
        total[2] += _amount(quantity, unit_price)
    DailyUsage.objects.bulk_create(
        DailyUsage(
            customer_id=customer_id,
            service_id=service_id,
            day=day,
            quantity=quantity,
            record_count=count,
            amount=amount,
        )
        for (customer_id, service_id, day), (quantity, count, amount) in totals.items()
    )


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
