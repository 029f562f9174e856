"""Usage within MAX_QUANTITY and the booking window, and monthly summaries that never overflow.

A row beyond a bound is refused naming its row, column and the bound, on a file and through the API alike; a
month whose usage adds up beyond what one invoice line may hold is imported and summed (the summaries are wide
enough for any number of records) and then refused, with its reason, when it is billed.
"""

import io
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import BillingRun, Invoice
from ledger.services.invoices import InvoiceBeyondBounds, invoice_create_draft
from ledger.services.month_end import month_end_run
from usage.models import MonthlySummary, Upload, UsageRecord
from usage.services import usage_import_events, usage_import_file

pytestmark = pytest.mark.django_db

RECEIVED_AT = datetime(2026, 11, 15, 12, tzinfo=UTC)
QUANTITY_REASON = "is beyond the largest quantity accepted, 100,000,000,000 (MAX_QUANTITY)"


@pytest.fixture
def priced(db):
    """ACME priced 1,000,000.00 a unit for appraisals from 2026-01-01: each figure within the bounds."""
    customer = CustomerFactory(client_id="ACME", currency="EUR")
    service = ServiceFactory(code="appraisal", name="Appraisal")
    PriceAgreementFactory(customer=customer, service=service, unit_price=D(1_000_000), valid_from=date(2026, 1, 1))
    return customer, service


def import_csv(*rows: str) -> Upload:
    text = "\n".join(["serviceName,clientId,quantity,serviceTime", *rows]) + "\n"
    return usage_import_file(
        actor=None, stream=io.BytesIO(text.encode()), name="usage.csv", keep_file=False, received_at=RECEIVED_AT
    )


def errors_of(upload: Upload) -> list[tuple]:
    assert upload.status == Upload.Status.FAILED
    assert not UsageRecord.objects.exists() and not MonthlySummary.objects.exists()
    return [(error["row"], error["column"], error["value"], error["reason"]) for error in upload.errors]


def test_a_file_row_beyond_max_quantity_is_refused_naming_row_column_and_bound(priced):
    upload = import_csv(
        "appraisal,ACME,100000000000,2026-10-03T10:00:00Z",
        "appraisal,ACME,100000000000.000001,2026-10-03T11:00:00Z",
    )

    assert errors_of(upload) == [(3, "quantity", "100000000000.000001", QUANTITY_REASON)]


@pytest.mark.parametrize(
    ("service_time", "reason"),
    [
        ("1999-12-31T23:59:59Z", "is before 2000-01-01"),
        ("0001-01-01T00:00:00Z", "is before 2000-01-01"),
        ("0001-01-01T00:00:00+01:00", "is before 2000-01-01"),
        ("9999-12-31T23:30:00-01:00", "is more than a day in the future"),
        ("9999-12-31T23:59:59Z", "is more than a day in the future"),
    ],
)
def test_a_file_row_outside_the_booking_window_is_refused_naming_row_and_column(priced, service_time, reason):
    upload = import_csv(f"appraisal,ACME,1,{service_time}", "appraisal,ACME,1,2026-10-03T10:00:00Z")

    ((row, column, _, found),) = errors_of(upload)
    assert (row, column, found) == (2, "serviceTime", reason)


def test_the_first_day_of_the_booking_window_is_accepted(priced):
    PriceAgreementFactory(customer=priced[0], service=ServiceFactory(code="old"), valid_from=date(2000, 1, 1))

    upload = import_csv("old,ACME,1,2000-01-01T00:00:00Z")

    assert upload.status == Upload.Status.IMPORTED, upload.errors


def test_api_events_beyond_max_quantity_are_a_400_naming_each(priced, finance_user, client_for):
    events = [
        {"serviceName": "appraisal", "clientId": "ACME", "quantity": "1", "serviceTime": "2026-10-03T10:00:00Z"},
        {"serviceName": "appraisal", "clientId": "ACME", "quantity": "1e12", "serviceTime": "2026-10-03T10:00:00Z"},
        {"serviceName": "appraisal", "clientId": "ACME", "quantity": 200000000000, "serviceTime": "2026-10-03T10:00Z"},
    ]

    response = client_for(finance_user).post("/api/usage/events", {"events": events}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {
        "events[2].quantity": [f"'1e12' {QUANTITY_REASON}"],
        "events[3].quantity": [f"'200000000000' {QUANTITY_REASON}"],
    }
    assert not UsageRecord.objects.exists()


def test_an_api_event_outside_the_booking_window_is_a_400_naming_it(priced, finance_user, client_for):
    events = [
        {"serviceName": "appraisal", "clientId": "ACME", "quantity": "1", "serviceTime": "2026-10-03T10:00:00Z"},
        {"serviceName": "appraisal", "clientId": "ACME", "quantity": 1, "serviceTime": "0001-01-01T00:00:00+01:00"},
    ]

    response = client_for(finance_user).post("/api/usage/events", {"events": events}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {
        "events[2].serviceTime": ["'0001-01-01T00:00:00+01:00' is before 2000-01-01"]
    }
    assert not UsageRecord.objects.exists()


@pytest.fixture
def beyond_a_line(priced):
    """20 records of 100,000,000,000 units (the most one record may hold) in October 2026: 2,000,000,000,000 units
    at 1,000,000.00, beyond what one summary held before its columns were widened, and beyond one invoice line."""
    customer, service = priced
    events = [
        {
            "serviceName": "appraisal",
            "clientId": "ACME",
            "quantity": "100000000000",
            "serviceTime": f"2026-10-{day:02}T10:00:00Z",
        }
        for day in range(1, 21)
    ]
    upload = usage_import_events(actor=None, events=events, received_at=RECEIVED_AT)
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    return customer


def test_a_month_beyond_what_a_line_holds_is_imported_and_summed_exactly(beyond_a_line, finance_user, client_for):
    summary = MonthlySummary.objects.get()
    assert (summary.quantity, summary.record_count) == (D(2_000_000_000_000), 20)
    assert summary.amount == D(2_000_000_000_000_000_000)

    response = client_for(finance_user).get("/api/usage?group_by=month")

    assert response.status_code == 200, response.content
    (total,) = response.json()["results"]
    assert (D(total["quantity"]), D(total["amount"])) == (D(2_000_000_000_000), D(2_000_000_000_000_000_000))


def test_a_month_beyond_what_a_line_holds_is_refused_when_billed_saying_why(beyond_a_line, finance_user, client_for):
    with pytest.raises(InvoiceBeyondBounds) as refused:
        invoice_create_draft(actor=None, customer=beyond_a_line, period=date(2026, 10, 1))
    run = month_end_run(actor=None, period=date(2026, 10, 1))

    assert "the line “Appraisal — usage at 1000000” has 2,000,000,000,000 units, beyond the largest quantity " in (
        refused.value.message
    )
    assert "accepted, 100,000,000,000 (MAX_QUANTITY)" in refused.value.message
    assert run.status == BillingRun.Status.FAILED
    assert run.failures[0]["customers"] == [beyond_a_line.pk]
    assert "has 2,000,000,000,000 units, beyond the largest quantity accepted" in run.failures[0]["error"]
    assert not Invoice.objects.exists()
