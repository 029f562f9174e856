"""Who a change is recorded under, for customers, invoices and payments: the signed-in user in the admin, the
token's user in the API (Bearer), and nobody ("system" in the audit log) for management commands and Celery jobs.

Services put their actor on the instance; the history middleware covers the rest of a request. DRF
authenticates a token after the middlewares ran, but it sets the user on the very request the middleware
exposes, so a write that names no actor is still recorded under the token's user (the last API test).
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts.services import api_token_create
from billing_project.billing_time import billing_today
from catalog import services as catalog_services
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from catalog.tests.test_admin import customer_form
from ledger.models import Allocation, Invoice, Payment
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft, invoice_issue
from ledger.services.payments import payment_record
from ledger.tasks import mark_overdue_task, month_end_task
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)
RECEIVED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
DIALOG = {"_form_submitted": "on"}  # what an unfold action dialog posts


@pytest.fixture
def acme(db):
    """Priced 0.50 a check, 100 checks in October 2026 (60.00 with 20 % tax), invoices issued at month-end."""
    customer = CustomerFactory(client_id="ACME", name="Acme")
    service = ServiceFactory(code="kyc_check")
    PriceAgreementFactory(customer=customer, service=service, unit_price=Decimal("0.5"), valid_from=date(2026, 1, 1))
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"), auto_issue=True)
    event = {"serviceName": "kyc_check", "clientId": "ACME", "quantity": "100", "serviceTime": "2026-10-03T10:00:00Z"}
    usage_import_events(actor=None, events=[event], received_at=RECEIVED)
    return customer


@pytest.fixture
def draft(acme):
    return invoice_create_draft(actor=None, customer=acme, period=OCTOBER)


@pytest.fixture
def bearer(finance_user) -> dict:
    _, raw_key = api_token_create(actor=None, user=finance_user, name="books")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


def users_of(instance) -> list:
    """history_user of each version, oldest first."""
    return [record.history_user for record in instance.history.order_by("history_date", "history_id")]


# The admin: the signed-in user.


def test_a_customer_changed_in_the_admin_is_recorded_under_the_signed_in_user(finance, finance_user, acme):
    response = finance.post(f"/admin/catalog/customer/{acme.pk}/change/", customer_form(acme, legal_name="Acme plc"))

    assert response.status_code == 302
    assert users_of(acme)[-1] == finance_user


def test_an_invoice_issued_in_the_admin_is_recorded_under_the_signed_in_user(finance, finance_user, draft):
    assert finance.post(f"/admin/ledger/invoice/{draft.pk}/issue/", DIALOG).status_code == 302

    assert users_of(draft)[-1] == finance_user


def test_a_payment_booked_in_the_admin_is_recorded_under_the_signed_in_user(finance, finance_user, draft):
    invoice_issue(actor=None, invoice=draft, send=False)
    data = {
        "customer": draft.customer_id,
        "amount": "60.00",
        "method": Payment.Method.BANK_TRANSFER,
        "received_at_0": "2026-11-20",
        "received_at_1": "09:30:00",
        "bank_reference": "BANK-1",
        "note": "",
    }

    assert finance.post("/admin/ledger/payment/add/", data).status_code == 302

    payment = Payment.objects.get()
    assert users_of(payment) == [finance_user, finance_user]  # booked, then set against the invoice
    assert users_of(Allocation.objects.get()) == [finance_user]
    assert users_of(draft)[-1] == finance_user  # paid


# The API with a Bearer token: the token's user.


def test_a_customer_changed_through_the_api_is_recorded_under_the_tokens_user(client, bearer, finance_user, acme):
    response = client.patch(
        f"/api/customers/{acme.pk}", {"legal_name": "Acme plc"}, content_type="application/json", **bearer
    )

    assert response.status_code == 200, response.content
    assert users_of(acme)[-1] == finance_user


def test_an_invoice_issued_through_the_api_is_recorded_under_the_tokens_user(client, bearer, finance_user, draft):
    response = client.post(
        f"/api/invoices/{draft.pk}/issue", {"send": False}, content_type="application/json", **bearer
    )

    assert response.status_code == 200, response.content
    assert users_of(draft)[-1] == finance_user


def test_a_payment_booked_through_the_api_is_recorded_under_the_tokens_user(client, bearer, finance_user, acme):
    body = {"customer": acme.pk, "amount": "30.00", "received_at": RECEIVED.isoformat(), "bank_reference": "BANK-2"}

    response = client.post("/api/payments", body, content_type="application/json", **bearer)

    assert response.status_code == 201, response.content
    assert users_of(Payment.objects.get()) == [finance_user]


def test_a_token_write_that_names_no_actor_is_still_the_tokens_users(client, bearer, finance_user, acme, monkeypatch):
    """The middleware path alone: a save without `_history_user` during a token-authenticated request."""

    def save_without_actor(instance, *, actor, update_fields=None):
        instance.full_clean()
        instance.save(update_fields=update_fields)
        return instance

    monkeypatch.setattr(catalog_services, "_save", save_without_actor)

    response = client.patch(
        f"/api/customers/{acme.pk}", {"legal_name": "Acme plc"}, content_type="application/json", **bearer
    )

    assert response.status_code == 200, response.content
    assert Customer.objects.get(pk=acme.pk).legal_name == "Acme plc"
    assert users_of(acme)[-1] == finance_user


# Management commands and Celery jobs: nobody.


def test_customers_made_by_a_command_are_recorded_under_nobody(settings):
    settings.DEBUG = True  # seed_demo runs only in development

    call_command("seed_demo")

    assert Customer.history.filter(history_type="+").count() == Customer.objects.count() > 0
    assert not Customer.history.filter(history_type="+", history_user__isnull=False).exists()


def test_invoices_and_payments_moved_by_the_month_end_command_are_recorded_under_nobody(acme, finance_user):
    payment = payment_record(
        actor=finance_user, customer=acme, amount=Decimal("100.00"), received_at=RECEIVED, bank_reference="ADVANCE"
    )

    call_command("month_end", "--period", "2026-10")

    invoice = Invoice.objects.get()
    assert invoice.status == Invoice.Status.PAID  # issued at once and paid from the customer's credit
    assert set(users_of(invoice)) == {None}
    assert users_of(payment) == [finance_user, None]  # booked by Finance, then its credit used by the run
    assert users_of(Allocation.objects.get()) == [None]


def test_invoices_and_payments_moved_by_the_month_end_task_are_recorded_under_nobody(acme, finance_user, eager_celery):
    payment = payment_record(
        actor=finance_user, customer=acme, amount=Decimal("100.00"), received_at=RECEIVED, bank_reference="ADVANCE"
    )

    month_end_task.delay(period=OCTOBER.isoformat()).get()

    assert set(users_of(Invoice.objects.get())) == {None}
    assert users_of(payment) == [finance_user, None]


def test_an_invoice_marked_overdue_by_the_daily_task_is_recorded_under_nobody(draft, finance_user, eager_celery):
    invoice = invoice_issue(actor=finance_user, invoice=draft, send=False)
    Invoice.objects.filter(pk=invoice.pk).update(due_date=billing_today() - timedelta(days=1))

    assert mark_overdue_task.delay().get() == 1

    latest = invoice.history.latest()
    assert (latest.status, latest.history_user) == (Invoice.Status.OVERDUE, None)
    assert users_of(invoice)[-2] == finance_user  # the issue before it
