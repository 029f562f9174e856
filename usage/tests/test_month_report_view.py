import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
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
    assert page.content.decode().count("30.00") == 2  # 600 units over the allowance at 0.05, per customer

    export = client.get(URL, {"year": 2026, "month": 10, "export": "csv"})
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(row["client_id"], row["allowance_used"], row["overage"], row["amount"]) for row in rows] == [
        ("OTHER-1", "1000.000000", "600.000000", "30.00"),
        ("OWN-1", "1000.000000", "600.000000", "30.00"),
    ]
    xlsx = client.get(URL, {"year": 2026, "month": 10, "export": "xlsx"})
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")


def test_a_csm_sees_only_their_customers_in_the_report(client, october):
    client.force_login(october)
    export = client.get(URL, {"year": 2026, "month": 10, "export": "csv"})
    assert [row["client_id"] for row in csv.DictReader(io.StringIO(export.content.decode()))] == ["OWN-1"]


def test_operations_cannot_open_the_report(client, make_user):
    client.force_login(make_user(Role.OPERATIONS))
    assert client.get(URL, {"year": 2026, "month": 10}).status_code == 403
