from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.services.billing import billing_config_update
from usage.models import Upload
from usage.services import usage_import_events

RECEIVED = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def import_usage(db):
    """import_usage(customer, service, [(quantity, "2026-10-03T10:00:00Z"), ...]) through the one pipeline."""

    def run(customer, service, events):
        upload = usage_import_events(
            actor=None,
            events=[
                {"serviceName": service.code, "clientId": customer.client_id, "quantity": str(q), "serviceTime": t}
                for q, t in events
            ],
            received_at=RECEIVED,
        )
        assert upload.status == Upload.Status.IMPORTED, upload.errors
        return upload

    return run


@pytest.fixture
def priced_customer(db):
    """A customer priced 0.50 per check for one KYC service from 2026-01-01, tax 20%, net 14 days."""
    customer = CustomerFactory(client_id="ACME", name="Acme", currency="EUR")
    service = ServiceFactory(code="kyc_check", name="KYC check")
    PriceAgreementFactory(customer=customer, service=service, unit_price=Decimal("0.5"), valid_from=date(2026, 1, 1))
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"), payment_terms_days=14)
    return customer, service
