"""History of month-end runs and allocations (the other ledger histories are checked where their writes are).

Transactions and legs keep none: they are never changed (test_journal.py); reports.audit.WITHOUT_HISTORY says
why for each model without one.
"""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory
from ledger.models import Allocation, BillingRun
from ledger.services import month_end
from ledger.services.invoices import invoice_create_draft, invoice_issue
from ledger.services.payments import payment_record
from ledger.tasks import month_end_task

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
RECEIVED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def two_customers(priced_customer, import_usage):
    """ACME with October usage, and a second customer on the same service with October usage too."""
    acme, service = priced_customer
    other = CustomerFactory()
    PriceAgreementFactory(customer=other, service=service, unit_price=D("0.5"), valid_from=date(2026, 1, 1))
    import_usage(acme, service, [(10, "2026-10-05T10:00:00Z")])
    import_usage(other, service, [(20, "2026-10-06T10:00:00Z")])
    return acme, other


def test_a_run_started_from_the_admin_keeps_who_started_it_though_a_worker_runs_it(
    two_customers, finance_user, eager_celery
):
    run_id = month_end_task.delay(period=OCTOBER.isoformat(), actor_id=finance_user.pk).get()

    run = BillingRun.objects.get(pk=run_id)
    versions = list(run.history.order_by("history_date", "history_id"))
    assert [(v.history_type, v.status, v.history_user) for v in (versions[0], versions[-1])] == [
        ("+", BillingRun.Status.RUNNING, finance_user),
        ("~", BillingRun.Status.COMPLETED, None),  # finished by the worker's last customer task
    ]
    assert (versions[-1].customers_done, versions[-1].invoices_created) == (2, 2)  # the final counts


def test_a_failure_is_a_version_of_the_run(two_customers, monkeypatch):
    acme, _ = two_customers
    real_bill = month_end.month_end_bill

    def bill(*, run, customer_ids, actor):
        if acme.pk in customer_ids:
            raise RuntimeError("database went away")
        return real_bill(run=run, customer_ids=customer_ids, actor=actor)

    monkeypatch.setattr(month_end, "month_end_bill", bill)

    run = month_end.month_end_run(actor=None, period=OCTOBER, chunk_size=1)

    failures = [version.failures for version in run.history.order_by("history_date", "history_id")]
    assert failures[0] == []
    assert failures[-1] == [{"stage": "bill", "customers": [acme.pk], "error": "RuntimeError: database went away"}]


def test_an_allocation_is_recorded_with_who_set_the_money_against_the_invoice(priced_customer, import_usage, make_user):
    acme, service = priced_customer
    import_usage(acme, service, [(10, "2026-10-05T10:00:00Z")])
    invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=acme, period=OCTOBER), send=False)
    clerk = make_user("Finance")

    payment_record(actor=clerk, customer=acme, amount=D("6.00"), received_at=RECEIVED, bank_reference="B-1")

    allocation = Allocation.objects.get()
    assert [(v.history_type, v.amount, v.history_user) for v in allocation.history.all()] == [("+", D("6.00"), clerk)]
