"""Reading usage files: encoding, delimiter, header and the shape of each row.

Nothing here touches the database; `usage.services` checks rows against the catalog. Rows are
numbered as a spreadsheet shows them: the header is row 1, the first usage row is row 2.
"""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import BinaryIO, NamedTuple

from billing_project import money
from billing_project.billing_time import TOO_EARLY, TOO_LATE
from billing_project.text import has_unprintable, printable

REQUIRED_COLUMNS = {
    "servicename": "serviceName",
    "clientid": "clientId",
    "quantity": "quantity",
    "servicetime": "serviceTime",
}
OPTIONAL_COLUMNS = {"eventid": "eventId"}
MAX_EVENT_ID_LENGTH = 128
_SNIFF_BYTES = 64 * 1024
_QUANTITY_CACHE_SIZE = 4096


class FileError(Exception):
    """The file as a whole cannot be read (encoding, header); no row is looked at."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict:
        """As the upload keeps it: the value and reason echo the file, so control characters are shown escaped."""
        return {
            "row": self.row,
            "column": self.column,
            "value": printable(self.value),
            "reason": printable(self.reason),
        }


class ParsedRow(NamedTuple):
    """A row of the right shape, not yet checked against the catalog (a tuple: cheap to make a million of)."""

    row: int
    service_code: str
    client_id: str
    quantity: Decimal
    service_time: datetime  # aware, UTC
    event_id: str | None
    # The service time as written when that is `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds, as exports
    # usually write it), else None: the import stores such a time as it is, formatting a datetime again
    # costs ten times what parsing it does.
    utc_text: str | None = None


def parse_quantity(text: str) -> Decimal | str:
    """The quantity, or the reason it is not one."""
    try:
        quantity = Decimal(text)
    except InvalidOperation:
        return "is not a number"
    if not quantity.is_finite():
        return "is not a number"
    if quantity <= 0:
        return "must be positive"
    if quantity.as_tuple().exponent < -money.QUANTITY_DECIMAL_PLACES:
        return f"has more than {money.QUANTITY_DECIMAL_PLACES} decimal places"
    if quantity > money.max_quantity():
        return f"is beyond the largest quantity accepted, {money.max_quantity():,f} (MAX_QUANTITY)"
    return quantity


def parse_service_time(text: str, default_zone: tzinfo) -> datetime | str:
    """The time in UTC, or the reason it is not an ISO 8601 date-time. No offset means `default_zone`."""
    if len(text) < 16 or text[4] != "-" or text[7] != "-":
        return _NOT_ISO_8601
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _NOT_ISO_8601
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 or 9999-12-31T23:00-02:00 has no UTC date-time
        return TOO_EARLY if moment.year == 1 else TOO_LATE


_NOT_ISO_8601 = "is not an ISO 8601 date-time (e.g. 2026-10-03T10:00:00Z)"


def parse_fields(
    row: int,
    service_text: str,
    client_text: str,
    quantity_text: str,
    time_text: str,
    event_text: str,
    zone: tzinfo,
    quantities: dict[str, Decimal | str],
) -> ParsedRow | list[RowError]:
    """One usage line (a CSV row or an API event) as a ParsedRow, or every reason it is not one.

    `quantities` caches parsed quantities by their text as written: usage repeats a few values ("1", "2", …)
    endlessly. A million rows pass here: the usual case takes the shortest way.
    """
    service_code = service_text.strip()
    client_id = client_text.strip()
    quantity = quantities.get(quantity_text)
    if quantity is None:
        if len(quantities) >= _QUANTITY_CACHE_SIZE:
            quantities.clear()
        stripped = quantity_text.strip()
        quantity = quantities[quantity_text] = parse_quantity(stripped) if stripped else "is missing"
    service_time = utc_text = None
    # `YYYY-MM-DDTHH:MM:SSZ` by its punctuation (`datetime.fromisoformat` checks the digits):
    if (
        len(time_text) == 20
        and time_text[19] == "Z"
        and time_text[10] == "T"
        and time_text[4] == time_text[7] == "-"
        and time_text[13] == time_text[16] == ":"
    ):
        try:
            service_time = datetime.fromisoformat(time_text)  # in UTC already: "Z"
            utc_text = time_text
        except ValueError:
            pass  # the usual way below says why
    if service_time is None:
        time_text = time_text.strip()
        service_time = parse_service_time(time_text, zone) if time_text else "is missing"
    event_id = (event_text.strip() or None) if event_text else None
    if (
        service_code
        and client_id
        and quantity.__class__ is not str
        and service_time.__class__ is not str
        # `isprintable` is the quick test; the few ids it doubts are looked at below.
        and (event_id is None or (len(event_id) <= MAX_EVENT_ID_LENGTH and event_id.isprintable()))
    ):
        return ParsedRow(row, service_code, client_id, quantity, service_time, event_id, utc_text)
    errors = []
    if not service_code:
        errors.append(RowError(row, "serviceName", "", "is missing"))
    if not client_id:
        errors.append(RowError(row, "clientId", "", "is missing"))
    if isinstance(quantity, str):
        errors.append(RowError(row, "quantity", quantity_text.strip(), quantity))
    if isinstance(service_time, str):
        errors.append(RowError(row, "serviceTime", time_text, service_time))
    if event_id is not None and len(event_id) > MAX_EVENT_ID_LENGTH:
        errors.append(RowError(row, "eventId", event_id[:40], f"is longer than {MAX_EVENT_ID_LENGTH} characters"))
    elif event_id is not None and has_unprintable(event_id):
        # An id is kept as it is, and PostgreSQL keeps no NUL: refused on either database alike.
        errors.append(RowError(row, "eventId", event_id, "contains control characters (shown escaped)"))
    return errors or ParsedRow(row, service_code, client_id, quantity, service_time, event_id, utc_text)


class UsageCsv:
    """A usage file opened for one pass over its rows, with bounded memory whatever its size."""

    def __init__(self, stream: BinaryIO, *, default_zone: tzinfo):
        self.default_zone = default_zone
        head = stream.read(_SNIFF_BYTES)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileError("The file is UTF-16; save it as UTF-8 (with or without BOM) and upload it again.")
        try:
            head.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            # A multi-byte character may be cut at the end of the sample; anything earlier is not UTF-8.
            if error.start < len(head) - 4:
                raise FileError(
                    f"The file is not UTF-8 (byte {error.start + 1} cannot be read); "
                    "save it as UTF-8 and upload it again."
                ) from None
        rest = io.BufferedReader(_Prefixed(head, stream))
        self._text = io.TextIOWrapper(rest, encoding="utf-8-sig", newline="")
        first_line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        self.delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            raise FileError("The file is empty.") from None
        except UnicodeDecodeError:
            raise FileError("The file is not UTF-8; save it as UTF-8 and upload it again.") from None
        self._positions = self._map_header(header)

    def _map_header(self, header: list[str]) -> dict[str, int]:
        positions: dict[str, int] = {}
        extras = []
        for index, name in enumerate(header):
            key = name.strip().lower()
            if key in REQUIRED_COLUMNS or key in OPTIONAL_COLUMNS:
                if key in positions:
                    raise FileError(f"The column {name.strip()} appears twice in the header.")
                positions[key] = index
            elif name.strip():
                extras.append(name.strip())
        missing = [label for key, label in REQUIRED_COLUMNS.items() if key not in positions]
        if missing:
            raise FileError(
                f"The header lacks the column(s) {', '.join(missing)}; it must name "
                f"{', '.join(REQUIRED_COLUMNS.values())} (any order and case) and may name eventId."
            )
        self.warnings = [f"Ignored column(s) not used for usage: {', '.join(extras)}."] if extras else []
        return positions

    def rows(self) -> Iterator[ParsedRow | list[RowError]]:
        service_at, client_at = self._positions["servicename"], self._positions["clientid"]
        quantity_at, time_at = self._positions["quantity"], self._positions["servicetime"]
        event_at = self._positions.get("eventid")
        width = max(self._positions.values()) + 1
        zone = self.default_zone
        quantities: dict[str, Decimal | str] = {}
        row_number = 1
        try:
            for fields in self._reader:
                row_number += 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if len(fields) < width:
                    fields = fields + [""] * (width - len(fields))
                yield parse_fields(
                    row_number,
                    fields[service_at],
                    fields[client_at],
                    fields[quantity_at],
                    fields[time_at],
                    fields[event_at] if event_at is not None else "",
                    zone,
                    quantities,
                )
        except UnicodeDecodeError:
            raise FileError(f"The file is not UTF-8 (near row {row_number + 1}); save it as UTF-8.") from None
        except csv.Error as error:
            raise FileError(f"Row {row_number + 1} cannot be read as CSV: {error}.") from None


class _Prefixed(io.RawIOBase):
    """A raw stream that yields `head` first, then the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
