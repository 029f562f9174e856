"""Customer locks come first (catalog/locks.py): a price correction waits for the customer before it locks the
agreement, as a usage import holds the customer and then the agreements its records use.

On PostgreSQL, with each caller in a thread of its own (its own connection): SQLite runs one writer at a time.
"""

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from catalog.models import Customer, PriceAgreement
from catalog.services import price_agreement_change, price_agreement_update
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from usage.models import Upload
from usage.services import usage_import_events

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks and concurrent transactions need PostgreSQL"
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_until(condition, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Caller(threading.Thread):
    """A job in a thread and connection of its own; `outcome` is what it returned or raised."""

    def __init__(self, job):
        super().__init__(daemon=True)
        self.job, self.outcome = job, None

    def run(self):
        try:
            self.outcome = self.job()
        except Exception as error:  # handed back to the test
            self.outcome = error
        finally:
            connection.close()


@pytest.mark.parametrize(
    "correct",
    [
        lambda agreement: price_agreement_update(actor=None, agreement=agreement, monthly_fee=Decimal("5")),
        lambda agreement: price_agreement_change(
            actor=None,
            agreement=agreement,
            effective_from=agreement.valid_from.replace(year=2027),
            unit_price=Decimal("0.06"),
        ),
    ],
    ids=["update", "change"],
)
def test_a_price_correction_waiting_behind_a_usage_import_of_the_same_customer_does_not_deadlock(correct):
    customer = CustomerFactory(client_id="ACME-1")
    service = ServiceFactory(code="kyc_check")
    agreement = PriceAgreementFactory(customer=customer, service=service, unit_price=Decimal("0.05"))
    held, release = threading.Event(), threading.Event()

    def hold_the_customer():
        with transaction.atomic():
            Customer.objects.select_for_update().get(pk=customer.pk)
            held.set()
            release.wait(30)

    holder = Caller(hold_the_customer)
    importer = Caller(
        lambda: usage_import_events(
            actor=None,
            events=[
                {
                    "serviceName": "kyc_check",
                    "clientId": "ACME-1",
                    "quantity": "3",
                    "serviceTime": "2026-03-10T10:00:00Z",
                }
            ],
            received_at=datetime(2026, 3, 11, tzinfo=UTC),
        )
    )
    corrector = Caller(lambda: correct(agreement))
    holder.start()
    assert held.wait(10)
    # The import queues first for the customer, the correction second: once the customer is free, the import
    # holds it and asks for the agreement. A correction that had locked the agreement before queueing for the
    # customer would now wait for the import while the import waits for it.
    importer.start()
    wait_until(lambda: sessions_waiting_for_a_lock() == 1, "the import to wait for the customer")
    corrector.start()
    wait_until(lambda: sessions_waiting_for_a_lock() == 2, "the correction to wait for the customer")
    release.set()
    for caller in (holder, importer, corrector):
        caller.join(timeout=30)
        assert not caller.is_alive(), "still waiting after 30 s"

    assert isinstance(importer.outcome, Upload), importer.outcome
    assert importer.outcome.status == Upload.Status.IMPORTED, importer.outcome.errors
    assert isinstance(corrector.outcome, PriceAgreement), corrector.outcome
