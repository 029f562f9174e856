"""The portal's usage page: the customer's own rows of the admin's monthly usage report (same rating, same
costs), last month unless asked, a clear empty state, and CSV, XLSX and PDF downloads of the same rows."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory
from usage.models import Upload
from usage.report_selectors import usage_month_report
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db
USAGE = reverse("portal:usage")
ADMIN_REPORT = "/admin/usage/monthlysummary/report/"


def events(client_id: str, service: str, *usage: tuple[str, str]) -> list[dict]:
    return [{"serviceName": service, "clientId": client_id, "quantity": q, "serviceTime": t} for q, t in usage]


@pytest.fixture
def october():
    """DESIGN.md's example for the portal user's customer: allowance 1,000, 0.05 until the 15th and 0.04 after,
    700 units on the 10th and 900 on the 20th, and a 10.00 monthly fee; another customer used the same service."""
    membership = PortalMembershipFactory(customer__client_id="ACME", customer__name="Acme", customer__currency="EUR")
    own, other = membership.customer, CustomerFactory(client_id="GLOBEX", name="Globex", currency="EUR")
    checks = ServiceFactory(code="kyc_check", name="Identity check")
    allowance = {"included_quantity": Decimal(1000), "service": checks}
    PriceAgreementFactory(
        customer=own, unit_price=Decimal("0.05"), valid_from=date(2026, 1, 1), valid_to=date(2026, 10, 15), **allowance
    )
    PriceAgreementFactory(
        customer=own, unit_price=Decimal("0.04"), monthly_fee=Decimal(10), valid_from=date(2026, 10, 16), **allowance
    )
    PriceAgreementFactory(customer=other, unit_price=Decimal("0.9"), valid_from=date(2026, 1, 1), service=checks)
    batch = events("ACME", "kyc_check", ("700", "2026-10-10T10:00:00Z"), ("900", "2026-10-20T10:00:00Z"))
    batch += events("GLOBEX", "kyc_check", ("5000", "2026-10-12T10:00:00Z"))
    upload = usage_import_events(actor=None, events=batch, received_at=datetime(2026, 11, 1, tzinfo=UTC))
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    return membership


def test_the_portal_shows_the_months_usage_with_the_admin_reports_costs(client, make_user, october):
    client.force_login(october.user)

    page = client.get(USAGE, {"month": "2026-10"})

    (row,) = page.context["rows"]
    assert (row.client_id, row.service_name, row.allowance_used, row.overage_quantity) == (
        "ACME", "Identity check", Decimal(1000), Decimal(600)
    )  # fmt: skip
    assert row.amount == Decimal("34.00")  # 10.00 fee + 600 at 0.04
    content = page.content.decode()
    for shown in ["Usage in October 2026", "Identity check", "600 × EUR\u00a00.04", "EUR\u00a010.00", "EUR\u00a034.00"]:
        assert shown in content, shown
    assert "Globex" not in content and "GLOBEX" not in content and "4,500" not in content

    client.force_login(make_user(Role.FINANCE))
    admin_rows = client.get(ADMIN_REPORT, {"year": 2026, "month": 10}).context["rows"]
    assert [admin for admin in admin_rows if admin.client_id == "ACME"] == [row]  # the same rating, not a second


def test_the_portal_opens_on_last_month_and_steps_between_months(client, october):
    client.force_login(october.user)

    with time_machine.travel(datetime(2026, 11, 18, 9, tzinfo=UTC), tick=False):
        page = client.get(USAGE)

    assert page.context["period"] == date(2026, 10, 1)
    content = page.content.decode()
    assert '?month=2026-09">← September 2026' in content and '?month=2026-11">November 2026 →' in content


def test_a_month_without_usage_says_so(client, october):
    client.force_login(october.user)

    page = client.get(USAGE, {"month": "2026-09"})

    assert page.context["rows"] == []
    assert "No usage recorded for September 2026" in page.content.decode()
    assert "export=csv" not in page.content.decode()


def test_the_csv_holds_only_the_customers_rows(client, october):
    client.force_login(october.user)

    export = client.get(USAGE, {"month": "2026-10", "export": "csv"})

    assert export["Content-Disposition"] == 'attachment; filename="usage-2026-10.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(row["client_id"], row["service"], row["overage"], row["amount"]) for row in rows] == [
        ("ACME", "Identity check", "600.000000", "34.00")
    ]


def test_the_xlsx_has_numbers_and_a_total_equal_to_their_sum(client, october):
    extra = ServiceFactory(code="aml_watch", name="Watchlist screening")
    PriceAgreementFactory(
        customer=october.customer, service=extra, unit_price=Decimal("0.125"), valid_from=date(2026, 1, 1)
    )
    batch = events("ACME", "aml_watch", ("333", "2026-10-05T10:00:00Z"))
    usage_import_events(actor=None, events=batch, received_at=datetime(2026, 11, 1, tzinfo=UTC))
    client.force_login(october.user)

    export = client.get(USAGE, {"month": "2026-10", "export": "xlsx"})

    sheet = load_workbook(io.BytesIO(b"".join(export.streaming_content))).active
    header, *body, total = list(sheet.iter_rows(values_only=True))
    amount, quantity = header.index("amount"), header.index("quantity")
    assert [row[header.index("service")] for row in body] == ["Watchlist screening", "Identity check"]  # by code
    assert all(isinstance(row[amount], int | float) and isinstance(row[quantity], int | float) for row in body)
    assert [row[amount] for row in body] == [pytest.approx(41.63), 34]  # 333 at 0.125 = 41.625, half up
    assert total[0] == "Total" and total[amount] == pytest.approx(sum(row[amount] for row in body))
    expected = sum(row.amount for row in usage_month_report(year=2026, month=10, customer_ids=[october.customer_id]))
    assert Decimal(str(total[amount])) == expected == Decimal("75.63")


def test_the_pdf_prints_the_month_the_customer_and_the_total(client, october):
    client.force_login(october.user)

    export = client.get(USAGE, {"month": "2026-10", "export": "pdf"})

    reader = PdfReader(io.BytesIO(export.content))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Usage report, October 2026" in text and "Customer: Acme (ACME)" in text
    assert "Total EUR" in text and "34.00" in text and "Page 1 of 1" in text
    assert "GLOBEX" not in text


@pytest.mark.parametrize("asked", ["0001-01", "2026-13", "october"])
def test_a_month_that_cannot_be_read_shows_last_month_instead(client, october, asked):
    client.force_login(october.user)

    with time_machine.travel(datetime(2026, 11, 18, 9, tzinfo=UTC), tick=False):
        page = client.get(USAGE, {"month": asked})

    assert page.status_code == 200 and page.context["period"] == date(2026, 10, 1)
    assert "Enter a month as YYYY-MM; showing October 2026." in page.content.decode()
