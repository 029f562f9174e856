"""The usage import pipeline: every validation rule, atomicity, snapshots, billing months, duplicates, summaries."""

import io
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from billing_project.errors import Conflict
from catalog.models import Customer, PriceAgreement, Service
from catalog.services import price_agreement_change
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage.models import ClosedPeriod, MonthlySummary, Upload, UsageRecord
from usage.services import DuplicateFile, rebuild_usage_summaries, usage_import_events, usage_import_file

DATA = Path(__file__).resolve().parent / "data"
RECEIVED_AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
HEADER = "serviceName,clientId,quantity,serviceTime"


@dataclass
class Catalog:
    acme: Customer
    kyc: Service
    aml: Service
    kyc_agreement: PriceAgreement


def make_catalog() -> Catalog:
    """ACME-1 buys kyc_check at 0.05 from January and aml_check only from June; old_check is retired;
    SUSP-1 and GONE-1 have agreements but are suspended and closed."""
    acme = CustomerFactory(client_id="ACME-1", currency="EUR")
    kyc = ServiceFactory(code="kyc_check")
    aml = ServiceFactory(code="aml_check")
    old = ServiceFactory(code="old_check")
    kyc_agreement = PriceAgreementFactory(customer=acme, service=kyc, unit_price=Decimal("0.050000"))
    PriceAgreementFactory(customer=acme, service=aml, valid_from=date(2026, 6, 1))
    PriceAgreementFactory(customer=acme, service=old)
    Service.objects.filter(pk=old.pk).update(active=False)
    for client_id, status in (("SUSP-1", Customer.Status.SUSPENDED), ("GONE-1", Customer.Status.CLOSED)):
        customer = CustomerFactory(client_id=client_id)
        PriceAgreementFactory(customer=customer, service=kyc)
        Customer.objects.filter(pk=customer.pk).update(status=status)
    return Catalog(acme=acme, kyc=kyc, aml=aml, kyc_agreement=kyc_agreement)


@pytest.fixture
def catalog(db) -> Catalog:
    return make_catalog()


def import_file(name: str, *, force: bool = False, received_at: datetime = RECEIVED_AT) -> Upload:
    with (DATA / name).open("rb") as stream:
        return usage_import_file(
            actor=None, stream=stream, name=name, force=force, keep_file=False, received_at=received_at
        )


def import_bytes(content: bytes, *, name: str = "inline.csv", force: bool = False) -> Upload:
    return usage_import_file(
        actor=None, stream=io.BytesIO(content), name=name, force=force, keep_file=False, received_at=RECEIVED_AT
    )


def counts() -> tuple[int, int]:
    return UsageRecord.objects.count(), MonthlySummary.objects.count()


def summaries_from_records() -> list[tuple]:
    """What the monthly summaries must hold, computed here in Python from the records."""
    totals: dict[tuple, list] = {}
    for customer_id, service_id, period, quantity, unit_price in UsageRecord.objects.values_list(
        "customer_id", "service_id", "period", "quantity", "unit_price"
    ):
        total = totals.setdefault((customer_id, service_id, period), [Decimal(0), 0, Decimal(0)])
        total[0] += quantity
        total[1] += 1
        total[2] += quantity * unit_price
    return sorted((*key, quantity, count, amount) for key, (quantity, count, amount) in totals.items())


def summary_rows() -> list[tuple]:
    return sorted(
        MonthlySummary.objects.values_list("customer_id", "service_id", "period", "quantity", "record_count", "amount")
    )


# --- 1. every validation rule, each broken by exactly one row of its own file -------------------------------------

ROW_RULES = [
    ("bad_unknown_service.csv", 3, "serviceName", "no_such_service", "is not a known service code"),
    ("bad_inactive_service.csv", 3, "serviceName", "old_check", "is not an active service"),
    ("bad_unknown_client.csv", 3, "clientId", "NOBODY-9", "is not a known client id"),
    ("bad_suspended_customer.csv", 3, "clientId", "SUSP-1", "is a suspended customer, not active"),
    ("bad_closed_customer.csv", 3, "clientId", "GONE-1", "is a closed customer, not active"),
    ("bad_no_agreement.csv", 3, "serviceTime", None, "has no price agreement in force for ACME-1 and aml_check"),
    ("bad_quantity_zero.csv", 3, "quantity", "0", "must be positive"),
    ("bad_quantity_negative.csv", 3, "quantity", "-3", "must be positive"),
    ("bad_quantity_not_a_number.csv", 3, "quantity", "three", "is not a number"),
    ("bad_quantity_seven_decimals.csv", 3, "quantity", "1.0000001", "has more than 6 decimal places"),
    ("bad_service_time_not_iso.csv", 3, "serviceTime", "12/03/2026 10:00", "is not an ISO 8601 date-time"),
    ("bad_service_time_missing.csv", 3, "serviceTime", "", "is missing"),
    ("bad_service_time_future.csv", 3, "serviceTime", None, "is more than a day in the future"),
    ("bad_closed_period.csv", 3, "serviceTime", None, "falls in 2026-02, a closed billing period"),
    ("bad_duplicate_event_in_file.csv", 3, "eventId", "evt-1", "appears earlier in the same batch"),
    # A NUL byte is kept escaped, as PostgreSQL's text and JSON hold none; an event id holding one is refused.
    ("bad_nul_in_client_id.csv", 3, "clientId", "ACME\\x00-1", "is not a known client id"),
    ("bad_nul_in_quantity.csv", 3, "quantity", "1\\x00", "is not a number"),
    ("bad_nul_in_event_id.csv", 3, "eventId", "evt\\x00-2", "contains control characters"),
]


@pytest.mark.parametrize(("name", "row", "column", "value", "reason"), ROW_RULES, ids=[rule[0] for rule in ROW_RULES])
def test_a_file_breaking_one_rule_imports_nothing_and_names_the_row(catalog, name, row, column, value, reason):
    ClosedPeriod.objects.create(customer=catalog.acme, period=date(2026, 2, 1))
    upload = import_file("good_march_more.csv")  # something already in the tables, which must stay as it is
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    before, summaries_before = counts(), summary_rows()

    upload = import_file(name)

    assert upload.status == Upload.Status.FAILED
    assert (upload.error_count, upload.imported_count, upload.row_count) == (1, 0, 3)
    [error] = upload.errors
    assert (error["row"], error["column"]) == (row, column)
    assert reason in error["reason"]
    if value is not None:
        assert error["value"] == value
    assert counts() == before
    assert summary_rows() == summaries_before
    assert not UsageRecord.objects.filter(upload=upload).exists()


def test_the_future_limit_is_one_day_after_received_at(catalog):
    upload = import_file("bad_service_time_future.csv", received_at=datetime(2026, 6, 15, 12, 0, 1, tzinfo=UTC))
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert UsageRecord.objects.count() == 3


def test_an_event_id_already_imported_for_the_customer_is_refused(catalog):
    assert import_file("good_with_events.csv").status == Upload.Status.IMPORTED
    before, summaries_before = counts(), summary_rows()

    upload = import_file("bad_event_already_imported.csv")

    assert upload.status == Upload.Status.FAILED
    assert [(e["row"], e["column"], e["value"], e["reason"]) for e in upload.errors] == [
        (3, "eventId", "evt-101", "was already imported for this customer")
    ]
    assert counts() == before
    assert summary_rows() == summaries_before


def test_the_same_event_id_for_another_customer_is_not_a_duplicate(catalog):
    other = CustomerFactory(client_id="OTHER-1")
    PriceAgreementFactory(customer=other, service=catalog.kyc)
    assert import_file("good_with_events.csv").status == Upload.Status.IMPORTED
    upload = import_bytes(f"{HEADER},eventId\nkyc_check,OTHER-1,1,2026-03-10T10:00:00Z,evt-101\n".encode())
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert UsageRecord.objects.filter(event_id="evt-101").count() == 2


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad_latin1.csv", "not UTF-8"),
        ("bad_missing_column.csv", "lacks the column(s) quantity"),
    ],
)
def test_a_file_level_error_imports_nothing(catalog, name, reason):
    upload = import_file(name)
    assert upload.status == Upload.Status.FAILED
    assert upload.error_count == 1
    [error] = upload.errors
    assert (error["row"], error["column"]) == (1, "file")
    assert reason in error["reason"]
    assert counts() == (0, 0)


LATIN1_ROW = f"kyc_check,ACME-1,1,2026-03-12T10:00:00Z,caf{chr(0xE9)}\n".encode("latin-1")


def test_a_latin1_byte_after_the_first_64_kb_fails_the_upload(catalog):
    good = b"".join(
        f"kyc_check,ACME-1,1,2026-03-10T10:{n % 60:02d}:00Z,evt-{n}\n".encode() for n in range(2000)
    )  # about 90 KB
    upload = import_bytes(f"{HEADER},eventId\n".encode() + good + LATIN1_ROW)
    assert upload.status == Upload.Status.FAILED
    assert "not UTF-8" in upload.errors[0]["reason"]
    assert counts() == (0, 0)


def test_a_small_file_ending_with_a_latin1_byte_fails_the_upload(catalog):
    upload = import_bytes(f"{HEADER},eventId\n".encode() + LATIN1_ROW)
    assert upload.status == Upload.Status.FAILED
    assert "not UTF-8" in upload.errors[0]["reason"]
    assert counts() == (0, 0)


def test_extra_columns_are_ignored_and_listed_in_a_warning(catalog):
    upload = import_file("good_extra_columns.csv")
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert UsageRecord.objects.count() == 2
    [warning] = upload.warnings
    assert "region" in warning and "note" in warning


def test_control_characters_in_the_header_and_the_name_are_kept_escaped(catalog):
    content = f"{HEADER},re\x00gion,note\x1b[31m\nkyc_check,ACME-1,1,2026-03-10T10:00:00Z,eu,x\n".encode()

    upload = import_bytes(content, name="usage\x00march\n.csv")

    assert upload.status == Upload.Status.IMPORTED, upload.errors
    upload.refresh_from_db()
    assert upload.original_name == "usage\\x00march\\x0a.csv"
    [warning] = upload.warnings
    assert "re\\x00gion, note\\x1b[31m" in warning


@pytest.mark.parametrize(
    "name", ["good_bom.csv", "good_crlf.csv", "good_semicolon.csv", "good_quoted.csv", "good_header_order_case.csv"]
)
def test_accepted_file_shapes_import_the_same_records(catalog, name):
    upload = import_file(name)
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert upload.warnings == []
    assert sorted(
        UsageRecord.objects.values_list("service__code", "customer__client_id", "quantity", "service_time")
    ) == [
        ("kyc_check", "ACME-1", Decimal("1"), datetime(2026, 3, 10, 10, tzinfo=UTC)),
        ("kyc_check", "ACME-1", Decimal("2.5"), datetime(2026, 3, 11, 10, tzinfo=UTC)),
    ]


def test_quoted_fields_keep_delimiters_and_quotes(catalog):
    import_file("good_quoted.csv")
    assert sorted(UsageRecord.objects.values_list("event_id", flat=True)) == ['evt "quoted"', "evt,with,commas"]


@pytest.mark.parametrize(
    ("zone", "expected_utc", "period"),
    [
        ("UTC", datetime(2026, 3, 31, 23, 30, tzinfo=UTC), date(2026, 3, 1)),
        ("Europe/Berlin", datetime(2026, 3, 31, 21, 30, tzinfo=UTC), date(2026, 3, 1)),
        ("America/Sao_Paulo", datetime(2026, 4, 1, 2, 30, tzinfo=UTC), date(2026, 3, 1)),
    ],
)
def test_a_time_without_offset_is_read_in_the_billing_zone(catalog, settings, zone, expected_utc, period):
    settings.BILLING_TIME_ZONE = zone
    upload = import_file("good_no_offset.csv")
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    record = UsageRecord.objects.get()
    assert (record.service_time, record.period) == (expected_utc, period)


def test_an_import_leaves_the_interpreter_switch_interval_as_it_was(catalog):
    before = sys.getswitchinterval()  # PostgreSQL: lowered while the sender thread runs
    assert import_file("good_march.csv").status == Upload.Status.IMPORTED
    assert sys.getswitchinterval() == before


# --- 2. atomicity ---------------------------------------------------------------------------------------------------


def good_rows(count: int, day: int = 10) -> str:
    return "".join(f"kyc_check,ACME-1,1,2026-03-{day:02d}T{n // 60 % 24:02d}:{n % 60:02d}:00Z\n" for n in range(count))


def test_one_bad_row_among_many_good_ones_writes_nothing(catalog):
    import_file("good_march.csv")
    before, summaries_before = counts(), summary_rows()
    content = HEADER + "\n" + good_rows(6000) + "kyc_check,ACME-1,-1,2026-03-12T10:00:00Z\n" + good_rows(10, day=13)

    upload = import_bytes(content.encode())

    assert upload.status == Upload.Status.FAILED
    assert (upload.row_count, upload.error_count) == (6011, 1)
    assert [(e["row"], e["column"]) for e in upload.errors] == [(6002, "quantity")]
    assert counts() == before
    assert summary_rows() == summaries_before


def test_every_bad_row_is_counted_and_the_first_1000_are_reported(catalog):
    bad = "".join(f"kyc_check,ACME-1,x{n},2026-03-12T10:00:00Z\n" for n in range(1200))
    upload = import_bytes((HEADER + "\n" + good_rows(5) + bad).encode())
    assert upload.status == Upload.Status.FAILED
    assert upload.error_count == 1200
    assert len(upload.errors) == 1000
    assert [e["row"] for e in upload.errors] == list(range(7, 1007))
    assert counts() == (0, 0)


def test_a_failed_file_can_be_imported_once_the_catalog_is_fixed(catalog):
    assert import_file("bad_suspended_customer.csv").status == Upload.Status.FAILED
    Customer.objects.filter(client_id="SUSP-1").update(status=Customer.Status.ACTIVE)
    assert import_file("bad_suspended_customer.csv").status == Upload.Status.IMPORTED
    assert UsageRecord.objects.count() == 3


# --- 3. price snapshots ---------------------------------------------------------------------------------------------


def test_a_later_price_change_leaves_snapshots_and_past_summaries_unchanged(catalog):
    import_file("good_march.csv")
    summaries_before = summary_rows()
    assert set(UsageRecord.objects.values_list("unit_price", flat=True)) == {Decimal("0.05")}

    successor = price_agreement_change(
        actor=None, agreement=catalog.kyc_agreement, effective_from=date(2026, 4, 1), unit_price=Decimal("0.080000")
    )

    assert set(UsageRecord.objects.values_list("unit_price", "price_agreement_id")) == {
        (Decimal("0.05"), catalog.kyc_agreement.pk)
    }
    assert summary_rows() == summaries_before
    upload = import_bytes(f"{HEADER}\nkyc_check,ACME-1,10,2026-04-02T10:00:00Z\n".encode())
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    new = UsageRecord.objects.get(upload=upload)
    assert (new.unit_price, new.price_agreement_id, new.currency) == (Decimal("0.08"), successor.pk, "EUR")
    april = MonthlySummary.objects.get(period=date(2026, 4, 1))
    assert april.amount == Decimal("0.8")
    assert summary_rows()[: len(summaries_before)] == summaries_before


def test_a_price_change_in_the_month_prices_each_row_by_its_day(catalog):
    successor = price_agreement_change(
        actor=None, agreement=catalog.kyc_agreement, effective_from=date(2026, 3, 16), unit_price=Decimal("0.080000")
    )
    rows = ["2026-03-10T10:00:00Z", "2026-03-16T10:00:00Z", "2026-03-15T23:59:59Z", "2026-03-20T10:00:00Z"]
    upload = import_bytes((HEADER + "\n" + "".join(f"kyc_check,ACME-1,1,{row}\n" for row in rows)).encode())

    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert sorted(UsageRecord.objects.values_list("service_time", "unit_price", "price_agreement_id")) == [
        (datetime(2026, 3, 10, 10, tzinfo=UTC), Decimal("0.05"), catalog.kyc_agreement.pk),
        (datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC), Decimal("0.05"), catalog.kyc_agreement.pk),
        (datetime(2026, 3, 16, 10, tzinfo=UTC), Decimal("0.08"), successor.pk),
        (datetime(2026, 3, 20, 10, tzinfo=UTC), Decimal("0.08"), successor.pk),
    ]
    assert sorted(MonthlySummary.objects.values_list("price_agreement_id", "quantity", "record_count")) == sorted(
        [(catalog.kyc_agreement.pk, Decimal(2), 2), (successor.pk, Decimal(2), 2)]
    )


def test_rows_like_good_ones_before_them_are_still_checked_for_their_day_and_time(catalog):
    """An agreement ending mid-month, a time in the future: the rows before them in the month were good."""
    PriceAgreement.objects.filter(pk=catalog.kyc_agreement.pk).update(valid_to=date(2026, 6, 15))
    rows = [
        "2026-06-10T10:00:00Z",
        "2026-06-15T10:00:00Z",
        "2026-06-16T10:00:00Z",  # the agreement ended the day before
        "2026-06-11T10:00:00Z",
    ]
    upload = import_bytes((HEADER + "\n" + "".join(f"kyc_check,ACME-1,1,{row}\n" for row in rows)).encode())

    assert [(e["row"], e["column"], e["reason"]) for e in upload.errors] == [
        (4, "serviceTime", "has no price agreement in force for ACME-1 and kyc_check on 2026-06-16")
    ]
    PriceAgreementFactory(customer=catalog.acme, service=catalog.kyc, valid_from=date(2026, 6, 16))
    rows = ["2026-06-16T12:00:00Z", "2026-06-16T12:00:01Z", "2026-06-16T11:00:00Z"]  # received at 06-15 12:00
    upload = import_bytes((HEADER + "\n" + "".join(f"kyc_check,ACME-1,1,{row}\n" for row in rows)).encode())

    assert [(e["row"], e["column"], e["reason"]) for e in upload.errors] == [
        (3, "serviceTime", "is more than a day in the future")
    ]
    assert counts() == (0, 0)


def test_a_time_in_utc_and_the_same_time_with_an_offset_are_stored_alike(catalog, settings):
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    rows = ["2026-03-10T10:00:00Z", "2026-03-10T11:00:00+01:00", "2026-03-10T11:00:00", "2026-03-31T22:30:00Z"]
    upload = import_bytes((HEADER + "\n" + "".join(f"kyc_check,ACME-1,1,{row}\n" for row in rows)).encode())

    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert sorted(UsageRecord.objects.values_list("service_time", "period")) == [
        *[(datetime(2026, 3, 10, 10, tzinfo=UTC), date(2026, 3, 1))] * 3,
        (datetime(2026, 3, 31, 22, 30, tzinfo=UTC), date(2026, 4, 1)),  # April 1st, 00:30 in Berlin
    ]


# --- 4. billing months in the billing time zone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "service_time", "period"),
    [
        ("UTC", "2026-03-31T23:30:00-02:00", date(2026, 4, 1)),
        ("America/Sao_Paulo", "2026-03-31T23:30:00-02:00", date(2026, 3, 1)),  # 22:30 on March 31st in São Paulo
        ("America/Sao_Paulo", "2026-04-01T02:30:00Z", date(2026, 3, 1)),
        ("Europe/Berlin", "2026-04-30T22:30:00Z", date(2026, 5, 1)),
        ("Europe/Berlin", "2026-04-30T21:59:59Z", date(2026, 4, 1)),
        ("UTC", "2026-04-30T22:30:00Z", date(2026, 4, 1)),
    ],
)
def test_the_billing_month_is_the_calendar_month_in_the_billing_zone(catalog, settings, zone, service_time, period):
    settings.BILLING_TIME_ZONE = zone
    upload = import_bytes(f"{HEADER}\nkyc_check,ACME-1,1,{service_time}\n".encode())
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    assert UsageRecord.objects.get().period == period
    assert MonthlySummary.objects.get().period == period


def test_the_agreement_is_chosen_by_the_day_in_the_billing_zone(catalog, settings):
    """aml_check is agreed from 2026-06-01: 23:30Z on May 31st is already June in Berlin."""
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    upload = import_bytes(f"{HEADER}\naml_check,ACME-1,1,2026-05-31T23:30:00Z\n".encode())
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    settings.BILLING_TIME_ZONE = "UTC"
    upload = import_bytes(f"{HEADER}\naml_check,ACME-1,1,2026-05-31T23:30:00Z\n".encode(), force=True)
    assert upload.status == Upload.Status.FAILED
    assert "no price agreement" in upload.errors[0]["reason"]


# --- 5. duplicate files ---------------------------------------------------------------------------------------------


def test_the_same_content_is_refused_unless_forced(catalog):
    first = import_file("good_march.csv")
    assert first.status == Upload.Status.IMPORTED
    with pytest.raises(DuplicateFile) as refused:
        import_file("good_march.csv")
    assert refused.value.code == "duplicate_file"
    assert isinstance(refused.value, Conflict)
    assert counts()[0] == 2
    assert Upload.objects.count() == 1

    again = import_file("good_march.csv", force=True)

    assert again.status == Upload.Status.IMPORTED and again.forced
    assert again.sha256 == first.sha256
    assert UsageRecord.objects.count() == 4
    assert MonthlySummary.objects.get().record_count == 4


def test_a_failed_file_does_not_make_its_content_a_duplicate(catalog):
    assert import_file("bad_quantity_zero.csv").status == Upload.Status.FAILED
    assert import_file("bad_quantity_zero.csv").status == Upload.Status.FAILED  # no DuplicateFile


# --- 6. monthly summaries -------------------------------------------------------------------------------------------


def import_several_batches(catalog: Catalog) -> Customer:
    other = CustomerFactory(client_id="OTHER-1")
    PriceAgreementFactory(customer=other, service=catalog.kyc, unit_price=Decimal("0.123456"))
    import_file("good_march.csv")
    import_file("good_march_more.csv")
    import_bytes(
        f"{HEADER}\nkyc_check,OTHER-1,3.25,2026-03-10T10:00:00Z\nkyc_check,OTHER-1,2,2026-04-10T10:00:00Z\n".encode()
    )
    usage_import_events(
        actor=None,
        events=[
            {"serviceName": "kyc_check", "clientId": "ACME-1", "quantity": "7", "serviceTime": "2026-03-25T10:00Z"}
        ],
        received_at=RECEIVED_AT,
    )
    return other


def test_summaries_kept_by_imports_equal_the_totals_of_the_records(catalog):
    import_several_batches(catalog)
    march = MonthlySummary.objects.get(customer=catalog.acme, period=date(2026, 3, 1))
    assert (march.quantity, march.record_count, march.amount) == (Decimal("14.5"), 4, Decimal("0.725"))
    assert MonthlySummary.objects.count() == 4
    assert summary_rows() == summaries_from_records()


def test_summaries_cover_the_first_and_last_service_time_of_their_records(catalog):
    import_several_batches(catalog)
    later_then_earlier = "kyc_check,ACME-1,1,2026-03-26T10:00:00Z\nkyc_check,ACME-1,1,2026-03-02T10:00:00Z\n"
    assert import_bytes(f"{HEADER}\n{later_then_earlier}".encode()).status == Upload.Status.IMPORTED
    expected: dict[tuple, tuple] = {}
    for *key, service_time in UsageRecord.objects.values_list(
        "customer_id", "service_id", "period", "price_agreement_id", "service_time"
    ):
        first, last = expected.get(tuple(key), (service_time, service_time))
        expected[tuple(key)] = (min(first, service_time), max(last, service_time))

    assert {
        (s.customer_id, s.service_id, s.period, s.price_agreement_id): (s.first_service_time, s.last_service_time)
        for s in MonthlySummary.objects.all()
    } == expected
    march = MonthlySummary.objects.get(customer=catalog.acme, period=date(2026, 3, 1))
    assert (march.first_service_time, march.last_service_time) == (
        datetime(2026, 3, 2, 10, tzinfo=UTC),
        datetime(2026, 3, 26, 10, tzinfo=UTC),
    )


def test_a_rebuild_after_several_imports_changes_no_summary(catalog):
    import_several_batches(catalog)
    kept = summary_rows()

    assert rebuild_usage_summaries() == 4

    assert summary_rows() == kept


def test_rebuild_restores_lost_or_wrong_summaries_for_the_chosen_customers_only(catalog):
    other = CustomerFactory(client_id="OTHER-1")
    PriceAgreementFactory(customer=other, service=catalog.kyc)
    import_file("good_march_more.csv")
    import_bytes(f"{HEADER}\nkyc_check,OTHER-1,3,2026-03-10T10:00:00Z\n".encode())
    kept = summary_rows()
    MonthlySummary.objects.filter(customer=catalog.acme, period=date(2026, 3, 1)).delete()
    MonthlySummary.objects.filter(customer=other).update(quantity=99)

    assert rebuild_usage_summaries(customer_ids=[catalog.acme.pk]) == 2

    assert MonthlySummary.objects.get(customer=other).quantity == 99
    rebuild_usage_summaries()
    assert summary_rows() == kept


def test_summary_amounts_with_more_than_6_decimals_do_not_drift_import_after_import(catalog):
    PriceAgreement.objects.filter(pk=catalog.kyc_agreement.pk).update(unit_price=Decimal("0.000001"))
    for day in range(10, 14):
        import_bytes(f"{HEADER}\nkyc_check,ACME-1,0.5,2026-03-{day}T10:00:00Z\n".encode())
    assert MonthlySummary.objects.get().amount == Decimal("0.000002")


# --- 8. concurrent imports (PostgreSQL) -----------------------------------------------------------------------------

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and concurrent transactions need PostgreSQL"
)


def run_at_once(*jobs):
    """Run each job in its own thread and connection, started together; return results or raised exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait()
            results[index] = job()
        except Exception as error:  # handed back to the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, job)) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_files_for_the_same_customer_at_once_both_import_and_summaries_add_up():
    make_catalog()
    first = (HEADER + "\n" + good_rows(3000, day=10)).encode()
    second = (HEADER + "\n" + good_rows(2000, day=11) + "kyc_check,ACME-1,1,2026-04-02T10:00:00Z\n").encode()

    results = run_at_once(lambda: import_bytes(first, name="a.csv"), lambda: import_bytes(second, name="b.csv"))

    assert [upload.status for upload in results] == [Upload.Status.IMPORTED, Upload.Status.IMPORTED], results
    assert UsageRecord.objects.count() == 5001
    march = MonthlySummary.objects.get(period=date(2026, 3, 1))
    assert (march.quantity, march.record_count, march.amount) == (Decimal(5000), 5000, Decimal("250"))
    assert summary_rows() == summaries_from_records()


@postgres_only
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_batches_with_the_same_event_id_at_once_leave_one_record():
    make_catalog()

    def batch(quantity: str):
        event = {"serviceName": "kyc_check", "clientId": "ACME-1", "quantity": quantity, "eventId": "evt-race"}
        return lambda: usage_import_events(
            actor=None, events=[{**event, "serviceTime": "2026-03-10T10:00:00Z"}], received_at=RECEIVED_AT
        )

    results = run_at_once(batch("1"), batch("2"))

    imported = [r for r in results if isinstance(r, Upload) and r.status == Upload.Status.IMPORTED]
    refused = [r for r in results if not (isinstance(r, Upload) and r.status == Upload.Status.IMPORTED)]
    assert len(imported) == 1 and len(refused) == 1, results
    assert isinstance(refused[0], Conflict) or refused[0].status == Upload.Status.FAILED, refused
    assert UsageRecord.objects.filter(event_id="evt-race").count() == 1
    summary = MonthlySummary.objects.get()
    assert summary.record_count == 1
    assert summary.quantity == UsageRecord.objects.get().quantity
