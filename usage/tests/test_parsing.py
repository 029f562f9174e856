"""Reading usage files without the database: quantities, times, encodings, delimiters and headers."""

import io
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from usage.parsing import (
    FileError,
    ParsedRow,
    RowError,
    UsageCsv,
    parse_fields,
    parse_quantity,
    parse_service_time,
)
from usage.tests.test_services import DATA

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Decimal(1)),
        ("2.5", Decimal("2.5")),
        ("0.000001", Decimal("0.000001")),
        ("0", "must be positive"),
        ("-3", "must be positive"),
        ("-0.5", "must be positive"),
        ("three", "is not a number"),
        ("1,5", "is not a number"),
        ("NaN", "is not a number"),
        ("Infinity", "is not a number"),
        ("1.0000001", "has more than 6 decimal places"),
        ("100000000000", Decimal("100000000000")),
        ("100000000000.000001", "is beyond the largest quantity accepted, 100,000,000,000 (MAX_QUANTITY)"),
        ("1" + "0" * 12, "is beyond the largest quantity accepted, 100,000,000,000 (MAX_QUANTITY)"),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-31T23:30:00-02:00", datetime(2026, 4, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-31T23:30:00Z", datetime(2026, 3, 31, 23, 30, tzinfo=UTC)),
        ("2026-03-31T23:30:00", datetime(2026, 3, 31, 21, 30, tzinfo=UTC)),  # no offset: Berlin, summer time
        ("2026-01-31T23:30", datetime(2026, 1, 31, 22, 30, tzinfo=UTC)),  # no offset: Berlin, winter time
    ],
)
def test_parse_service_time_reads_iso_8601_in_utc(text, expected):
    assert parse_service_time(text, BERLIN) == expected


@pytest.mark.parametrize("text", ["12/03/2026 10:00", "2026-03-31", "yesterday", "2026-13-01T10:00:00Z"])
def test_parse_service_time_refuses_what_is_not_an_iso_8601_date_time(text):
    assert "is not an ISO 8601 date-time" in parse_service_time(text, UTC)


@pytest.mark.parametrize(
    ("text", "utc_text"),
    [
        ("2026-03-31T23:30:00Z", "2026-03-31T23:30:00Z"),
        ("2026-03-31T23:30:00+00:00", None),
        ("2026-03-31T23:30:00-02:00", None),
        ("2026-03-31T23:30:00", None),
        ("2026-03-31T23:30:00.5Z", None),
        ("2026-03-31T23:30Z", None),
        (" 2026-03-31T23:30:00Z", None),
    ],
)
def test_a_time_written_in_utc_to_the_second_is_kept_as_written_too(text, utc_text):
    row = parse_fields(2, "kyc_check", "ACME-1", "1", text, "", BERLIN, {})
    assert isinstance(row, ParsedRow), row
    assert row.utc_text == utc_text
    assert row.service_time == parse_service_time(text.strip(), BERLIN)


@pytest.mark.parametrize(
    "text", ["2026-02-30T10:00:00Z", "2026-03-10T24:00:00Z", "2026-03-10T10:00:6xZ", " 202-03-10T10:00:00Z"]
)
def test_a_time_shaped_like_utc_that_is_no_date_time_is_refused(text):
    assert parse_fields(2, "kyc_check", "ACME-1", "1", text, "", UTC, {}) == [
        RowError(2, "serviceTime", text.strip(), "is not an ISO 8601 date-time (e.g. 2026-10-03T10:00:00Z)")
    ]


def read(name: str, zone=UTC) -> tuple[UsageCsv, list]:
    usage_csv = UsageCsv((DATA / name).open("rb"), default_zone=zone)
    return usage_csv, list(usage_csv.rows())


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [
        ("good_march.csv", ","),
        ("good_bom.csv", ","),
        ("good_crlf.csv", ","),
        ("good_semicolon.csv", ";"),
        ("good_header_order_case.csv", ","),
    ],
)
def test_accepted_shapes_give_the_same_rows(name, delimiter):
    usage_csv, rows = read(name)
    assert usage_csv.delimiter == delimiter
    march_10, march_11 = datetime(2026, 3, 10, 10, tzinfo=UTC), datetime(2026, 3, 11, 10, tzinfo=UTC)
    assert rows == [
        ParsedRow(2, "kyc_check", "ACME-1", Decimal(1), march_10, None, "2026-03-10T10:00:00Z"),
        ParsedRow(3, "kyc_check", "ACME-1", Decimal("2.5"), march_11, None, "2026-03-11T10:00:00Z"),
    ]


def test_quoted_fields_are_unquoted():
    _, rows = read("good_quoted.csv")
    assert [row.event_id for row in rows] == ["evt,with,commas", 'evt "quoted"']


def test_extra_columns_are_listed_as_a_warning():
    usage_csv, rows = read("good_extra_columns.csv")
    assert usage_csv.warnings == ["Ignored column(s) not used for usage: region, note."]
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((DATA / "bad_latin1.csv").read_bytes(), "not UTF-8"),
        ((DATA / "bad_missing_column.csv").read_bytes(), r"lacks the column\(s\) quantity"),
        ("serviceName,clientId,quantity,serviceTime".encode("utf-16"), "UTF-16"),
        (b"", "empty"),
        (b"serviceName,clientId,quantity,serviceTime,QUANTITY\n", "appears twice"),
    ],
)
def test_file_level_errors(content, message):
    with pytest.raises(FileError, match=message):
        list(UsageCsv(io.BytesIO(content), default_zone=UTC).rows())


def test_a_bad_row_reports_every_bad_column_and_blank_lines_are_skipped():
    content = b"serviceName,clientId,quantity,serviceTime\n\n,,abc,soon\nkyc_check,ACME-1,1,2026-03-10T10:00:00Z\n"
    rows = list(UsageCsv(io.BytesIO(content), default_zone=UTC).rows())
    assert rows[0] == [
        RowError(3, "serviceName", "", "is missing"),
        RowError(3, "clientId", "", "is missing"),
        RowError(3, "quantity", "abc", "is not a number"),
        RowError(3, "serviceTime", "soon", "is not an ISO 8601 date-time (e.g. 2026-10-03T10:00:00Z)"),
    ]
    assert rows[1].row == 4
