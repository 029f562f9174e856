import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from openpyxl import load_workbook
from pypdf import PdfReader

from accounts.roles import Role
from catalog.models import PriceAgreement
from catalog.services import price_agreement_update
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage import report_selectors
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db
URL = "/admin/usage/monthlysummary/report/"


@pytest.fixture
def october(make_user):
    service = ServiceFactory(code="kyc_basic")
    own = CustomerFactory(client_id="OWN-1", name="Own Ltd")
    other = CustomerFactory(client_id="OTHER-1", name="Other Ltd")
    for customer in (own, other):
        PriceAgreementFactory(
            customer=customer,
            service=service,
            unit_price=Decimal("0.05"),
            included_quantity=Decimal("1000"),
            valid_from=date(2026, 1, 1),
        )
    events = [
        {"serviceName": "kyc_basic", "clientId": client, "quantity": "1600", "serviceTime": "2026-10-10T10:00:00Z"}
        for client in ("OWN-1", "OTHER-1")
    ]
    assert usage_import_events(actor=None, events=events, received_at=datetime(2026, 11, 1, tzinfo=UTC)).status == (
        "imported"
    )
    csm = make_user(Role.CUSTOMER_SUCCESS)
    own.csm = csm
    own.save()
    return csm


def test_report_rates_the_month_and_exports_csv(client, make_user, october):
    client.force_login(make_user(Role.FINANCE))
    page = client.get(URL, {"year": 2026, "month": 10})
    assert page.status_code == 200
    assert page.content.decode().count("EUR\u00a030.00") == 2  # 600 units over the allowance at 0.05, each

    export = client.get(URL, {"year": 2026, "month": 10, "export": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert [(row["client_id"], row["allowance_used"], row["overage"], row["amount"]) for row in rows] == [
        ("OTHER-1", "1000.000000", "600.000000", "30.00"),
        ("OWN-1", "1000.000000", "600.000000", "30.00"),
    ]
    xlsx = client.get(URL, {"year": 2026, "month": 10, "export": "xlsx"})
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")


def test_a_csm_sees_only_their_customers_in_the_report(client, october):
    client.force_login(october)
    export = client.get(URL, {"year": 2026, "month": 10, "export": "csv"})
    rows = csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()))
    assert [row["client_id"] for row in rows] == ["OWN-1"]


def test_operations_cannot_open_the_report(client, make_user):
    client.force_login(make_user(Role.OPERATIONS))
    assert client.get(URL, {"year": 2026, "month": 10}).status_code == 403


def test_report_opens_on_last_month(client, make_user, october):
    client.force_login(make_user(Role.FINANCE))
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        page = client.get(URL)
    assert page.status_code == 200
    assert page.context["period"] == date(2026, 10, 1)
    assert "Monthly usage report: October 2026" in page.content.decode()
    assert len(page.context["rows"]) == 2


def test_report_shows_service_names_and_totals_per_currency(client, make_user, october):
    swiss = CustomerFactory(client_id="CHF-1", name="Swiss AG", currency="CHF")
    service = ServiceFactory(code="aml_watch", name="AML watchlist")
    PriceAgreementFactory(
        customer=swiss, service=service, unit_price=Decimal("0.1"), monthly_fee=Decimal("12.5"),
        valid_from=date(2026, 1, 1),
    )  # fmt: skip
    client.force_login(make_user(Role.FINANCE))

    page = client.get(URL, {"year": 2026, "month": 10})

    totals = {total.currency: total for total in page.context["totals"]}
    eur = [row for row in page.context["rows"] if row.currency == "EUR"]
    assert totals["EUR"].amount == sum(row.amount for row in eur) == Decimal("60.00")
    assert totals["EUR"].overage_quantity == Decimal("1200")
    assert totals["CHF"].amount == Decimal("12.50")
    content = page.content.decode()
    assert "AML watchlist" in content and "aml_watch" not in content
    assert "Total EUR" in content and "EUR\u00a060.00" in content
    assert "Total CHF" in content and "CHF\u00a012.50" in content
    assert "Export PDF" in content


def test_report_xlsx_has_numbers_and_a_total_that_is_their_sum(client, make_user, october):
    client.force_login(make_user(Role.FINANCE))

    export = client.get(URL, {"year": 2026, "month": 10, "export": "xlsx"})

    sheet = load_workbook(io.BytesIO(b"".join(export.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    amount = header.index("amount")
    assert all(isinstance(row[amount], (int, float)) for row in body)
    assert total[0] == "Total" and total[header.index("currency")] == "EUR"
    assert total[amount] == sum(row[amount] for row in body) == 60
    assert sheet.freeze_panes == "A2"
    assert sheet.cell(row=2, column=amount + 1).number_format == "#,##0.00"


def test_report_pdf_prints_filters_totals_and_page_numbers(client, make_user, october):
    client.force_login(make_user(Role.FINANCE))

    export = client.get(URL, {"year": 2026, "month": 10, "export": "pdf"})

    assert export["Content-Type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(export.content))
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "Usage report, October 2026" in text
    assert "Month: October 2026" in text and "Customer: All customers" in text
    assert "Total EUR" in text and "60.00" in text
    assert f"Page 1 of {len(pdf.pages)}" in text
    assert pdf.pages[0].mediabox.width > pdf.pages[0].mediabox.height  # nine columns: landscape


def test_the_report_rates_a_page_of_customers_with_totals_over_every_page(client, make_user, october, monkeypatch):
    monkeypatch.setattr("usage.views.CUSTOMERS_PER_PAGE", 1)
    client.force_login(make_user(Role.FINANCE))

    first = client.get(URL, {"year": 2026, "month": 10})
    second = client.get(URL, {"year": 2026, "month": 10, "page": 2})

    assert [row.client_id for row in first.context["rows"]] == ["OTHER-1"]
    assert [row.client_id for row in second.context["rows"]] == ["OWN-1"]
    for page, number in ((first, 1), (second, 2)):
        (total,) = page.context["totals"]
        assert total.amount == Decimal("60.00")  # both customers' 30.00
        assert f"Page {number} of 2 (2 customers; totals over all of them)" in page.content.decode()
    assert "Next ›" in first.content.decode() and "‹ Previous" in second.content.decode()


def test_the_totals_are_rated_once_and_again_when_usage_or_prices_change(client, make_user, october, monkeypatch):
    ratings = []
    rate = report_selectors.usage_month_report
    monkeypatch.setattr(
        report_selectors, "usage_month_report", lambda **kwargs: ratings.append(kwargs) or rate(**kwargs)
    )
    client.force_login(make_user(Role.FINANCE))
    month = {"year": 2026, "month": 10}

    def total():
        (each,) = client.get(URL, month).context["totals"]
        return each.amount

    assert total() == Decimal("60.00") and len(ratings) == 1
    assert total() == Decimal("60.00") and len(ratings) == 1  # kept: nothing it rates changed

    event = {"serviceName": "kyc_basic", "clientId": "OWN-1", "quantity": "100", "serviceTime": "2026-10-11T10:00:00Z"}
    usage_import_events(actor=None, events=[event], received_at=datetime(2026, 11, 1, tzinfo=UTC))
    assert total() == Decimal("65.00") and len(ratings) == 2  # 100 more at 0.05

    agreement = PriceAgreement.objects.get(customer__client_id="OTHER-1")
    price_agreement_update(actor=None, agreement=agreement, included_quantity=Decimal("1600"))
    assert total() == Decimal("35.00") and len(ratings) == 3  # OTHER-1's 1,600 now all included


def test_a_csm_report_rates_only_their_customers(client, october):
    client.force_login(october)

    page = client.get(URL, {"year": 2026, "month": 10})

    assert [row.client_id for row in page.context["rows"]] == ["OWN-1"]
    (total,) = page.context["totals"]
    assert total.amount == Decimal("30.00")
