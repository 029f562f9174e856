"""Amounts beyond the ledger's range and money input once accepted silently: services, API and admin forms.

MAX_AMOUNT (by default 1,000,000,000.00) bounds any single amount, typed or derived; MAX_QUANTITY (by default
100,000,000,000) any single quantity; a date given for money is from 2000-01-01 to a day ahead; a payment is in
its customer's currency; an id is a whole number. Each refusal names the field and writes nothing.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from billing_project.errors import DomainError
from catalog.models import PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import Account, BillingRun, CreditNote, Invoice, Payment, Transaction
from ledger.selectors import customer_balance
from ledger.services.billing import billing_config_update
from ledger.services.invoices import (
    InvoiceBeyondBounds,
    credit_note_issue,
    invoice_add_line,
    invoice_create_draft,
    invoice_create_manual,
    invoice_issue,
    invoice_regenerate,
)
from ledger.services.journal import cash_account
from ledger.services.month_end import month_end_run
from ledger.services.payments import adjustment_record, payment_record, refund_record
from ledger.services.reconciliation import ledger_differences

pytestmark = pytest.mark.django_db

MAX = D("1000000000.00")
OVER = D("1000000000.01")
AMOUNT_BOUND = "1,000,000,000.00 (MAX_AMOUNT)"
QUANTITY_BOUND = "100,000,000,000 (MAX_QUANTITY)"
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
OCTOBER = date(2026, 10, 1)
DIALOG = {"_form_submitted": "on"}


@pytest.fixture
def customer(priced_customer):
    customer, _ = priced_customer
    return customer  # ACME, EUR, tax 20%


def issued(customer, amount) -> Invoice:
    invoice = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(amount)}]
    )
    return invoice_issue(actor=None, invoice=invoice, send=False)


def pay(customer, amount, reference="BANK-1", *, received_at=RECEIVED, **extra) -> Payment:
    return payment_record(
        actor=None, customer=customer, amount=D(amount), received_at=received_at, bank_reference=reference, **extra
    )


def journal_size() -> tuple[int, int, int]:
    return Transaction.objects.count(), Payment.objects.count(), CreditNote.objects.count()


# --- Services ---------------------------------------------------------------------------------------------------

REFUSED_AMOUNTS = {
    "payment": lambda customer, amount: pay(customer, amount),
    "refund": lambda customer, amount: refund_record(actor=None, customer=customer, amount=amount, reason="Back"),
    "adjustment": lambda customer, amount: adjustment_record(
        actor=None, customer=customer, direction="debit", amount=amount, reason="Fix"
    ),
}


@pytest.mark.parametrize("movement", REFUSED_AMOUNTS)
def test_a_movement_beyond_max_amount_is_refused_naming_the_field_and_the_bound(customer, movement):
    pay(customer, "5000.00", "CREDIT")  # so that a refund is refused for its size, not for want of credit
    before = journal_size()

    with pytest.raises(DomainError) as refused:
        REFUSED_AMOUNTS[movement](customer, OVER)

    assert AMOUNT_BOUND in refused.value.message
    assert refused.value.fields == {"amount": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]}
    assert journal_size() == before


def test_the_largest_amount_is_accepted_and_posted(customer):
    payment = pay(customer, MAX)

    assert payment.amount == MAX
    assert cash_account("EUR").balance == MAX
    assert customer_balance(customer) == -MAX


def test_a_credit_note_beyond_max_amount_is_refused_naming_the_bound(customer):
    invoice = issued(customer, 100)

    with pytest.raises(DomainError) as refused:
        credit_note_issue(actor=None, invoice=invoice, reason="Too much", amount=OVER)

    assert refused.value.fields == {"amount": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]}
    assert not CreditNote.objects.exists()


@pytest.mark.parametrize(
    ("quantity", "unit_price", "field", "bound"),
    [
        pytest.param(D("100000000000.000001"), D("0.01"), "quantity", QUANTITY_BOUND, id="quantity"),
        pytest.param(D(1), D("1000000000.000001"), "unit_price", AMOUNT_BOUND, id="unit price"),
        pytest.param(D(1), D("-1000000000.000001"), "unit_price", AMOUNT_BOUND, id="discount"),
        pytest.param(D(3), D("400000000"), "unit_price", AMOUNT_BOUND, id="quantity times price"),
    ],
)
def test_a_manual_line_beyond_the_bounds_is_refused_and_the_draft_stays(customer, quantity, unit_price, field, bound):
    draft = invoice_create_manual(actor=None, customer=customer)

    with pytest.raises(DomainError) as refused:
        invoice_add_line(actor=None, invoice=draft, description="Big", quantity=quantity, unit_price=unit_price)

    assert bound in refused.value.message
    assert list(refused.value.fields) == [field] and bound in refused.value.fields[field][0]
    draft.refresh_from_db()
    assert (draft.items.count(), draft.total) == (0, D("0.00"))


def test_lines_whose_total_goes_beyond_max_amount_are_refused_at_the_line_that_does_it(customer):
    draft = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "One", "quantity": D(1), "unit_price": D(500_000_000)}]
    )  # 600,000,000.00 with tax

    with pytest.raises(InvoiceBeyondBounds, match=r"its total would be EUR\xa01,200,000,000\.00, beyond .*MAX_AMOUNT"):
        invoice_add_line(actor=None, invoice=draft, description="Two", quantity=D(1), unit_price=D(500_000_000))

    draft.refresh_from_db()
    assert (draft.items.count(), draft.total) == (1, D("600000000.00"))


@pytest.fixture
def huge_usage(customer, import_usage):
    """ACME's October: 1,500 units at 1,000,000.00 a unit, a line of 1,500,000,000.00 (each figure within bounds)."""
    service = ServiceFactory(code="appraisal", name="Appraisal")
    PriceAgreementFactory(customer=customer, service=service, unit_price=D(1_000_000), valid_from=date(2026, 1, 1))
    import_usage(customer, service, [(1500, "2026-10-03T10:00:00Z")])
    return customer


def test_a_usage_draft_beyond_max_amount_is_refused_saying_which_line_and_why(huge_usage):
    with pytest.raises(InvoiceBeyondBounds) as refused:
        invoice_create_draft(actor=None, customer=huge_usage, period=OCTOBER)

    assert refused.value.message == (
        "The invoice of ACME for 2026-10 cannot be made: the line “Appraisal — usage at 1000000” comes to "
        f"EUR\xa01,500,000,000.00, beyond the largest amount accepted, {AMOUNT_BOUND}. Check the usage and prices, "
        "or bill the charges on separate invoices."
    )
    assert not Invoice.objects.exists()


def test_a_price_agreed_before_the_bound_and_beyond_it_is_named_when_billed(customer, import_usage):
    service = ServiceFactory(code="legacy", name="Legacy")
    PriceAgreement.objects.create(  # as old data may hold it: written before MAX_AMOUNT, without full_clean
        customer=customer, service=service, unit_price=D(2_000_000_000), valid_from=date(2026, 1, 1)
    )
    import_usage(customer, service, [(D("0.1"), "2026-10-03T10:00:00Z")])  # 200,000,000.00: the line is fine

    with pytest.raises(InvoiceBeyondBounds, match=r"the line “Legacy — usage at 2000000000” has a unit price of "):
        invoice_create_draft(actor=None, customer=customer, period=OCTOBER)


def test_rating_a_draft_again_beyond_max_amount_is_refused_and_the_draft_stays(customer, import_usage):
    service = ServiceFactory(code="appraisal", name="Appraisal")
    PriceAgreementFactory(customer=customer, service=service, unit_price=D(1_000_000), valid_from=date(2026, 1, 1))
    import_usage(customer, service, [(10, "2026-10-03T10:00:00Z")])
    draft = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    import_usage(customer, service, [(1000, "2026-10-20T10:00:00Z")])

    with pytest.raises(InvoiceBeyondBounds, match="beyond the largest amount accepted"):
        invoice_regenerate(actor=None, invoice=draft)

    draft.refresh_from_db()
    assert (draft.total, draft.items.get().quantity) == (D("12000000.00"), D(10))


def test_month_end_notes_a_customer_beyond_the_bounds_as_failed_and_bills_the_others(huge_usage, import_usage):
    fine = CustomerFactory(client_id="FINE")
    service = ServiceFactory(code="kyc_basic")
    PriceAgreementFactory(customer=fine, service=service, unit_price=D("0.50"), valid_from=date(2026, 1, 1))
    import_usage(fine, service, [(10, "2026-10-03T10:00:00Z")])

    run = month_end_run(actor=None, period=OCTOBER)

    assert run.status == BillingRun.Status.FAILED
    assert [(failure["stage"], failure["customers"]) for failure in run.failures] == [("bill", [huge_usage.pk])]
    assert "InvoiceBeyondBounds: The invoice of ACME for 2026-10 cannot be made" in run.failures[0]["error"]
    assert f"EUR\xa01,500,000,000.00, beyond the largest amount accepted, {AMOUNT_BOUND}" in run.failures[0]["error"]
    assert list(Invoice.objects.values_list("customer__client_id", "total")) == [("FINE", D("5.00"))]


@pytest.mark.parametrize(
    ("received_at", "problem"),
    [
        pytest.param(datetime(1, 1, 1, tzinfo=UTC), "is before 2000-01-01", id="year 1"),
        pytest.param(datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "is before 2000-01-01", id="1999"),
        pytest.param(datetime(9999, 12, 31, tzinfo=UTC), "is more than a day in the future", id="year 9999"),
        pytest.param(timezone.now() + timedelta(days=2), "is more than a day in the future", id="in two days"),
    ],
)
def test_a_payment_received_outside_the_booking_window_is_refused_naming_received_at(customer, received_at, problem):
    with pytest.raises(DomainError) as refused:
        pay(customer, "10.00", received_at=received_at)

    assert refused.value.message.startswith("The date received ") and problem in refused.value.message
    assert list(refused.value.fields) == ["received_at"]
    assert problem in refused.value.fields["received_at"][0]
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "received_at",
    [datetime(2000, 1, 1, tzinfo=UTC), timezone.now() + timedelta(hours=23)],
    ids=["first day", "later today"],
)
def test_a_payment_received_inside_the_booking_window_is_booked(customer, received_at):
    assert pay(customer, "10.00", received_at=received_at).received_at == received_at


def test_a_payment_in_another_currency_than_the_customers_is_refused(customer):
    with pytest.raises(DomainError) as refused:
        pay(customer, "10.00", currency="USD")

    assert refused.value.code == "currency_mismatch"
    assert refused.value.fields == {"currency": ["Must be the customer's currency, EUR."]}
    assert not Payment.objects.exists()
    assert pay(customer, "10.00", currency="EUR").currency == "EUR"


@pytest.mark.parametrize("period", [date(1, 1, 1), date(1999, 12, 1), date(9999, 12, 1)])
@pytest.mark.parametrize("create", [invoice_create_draft, invoice_create_manual])
def test_an_invoice_for_a_month_outside_the_booking_window_is_refused_naming_the_period(customer, create, period):
    with pytest.raises(DomainError) as refused:
        create(actor=None, customer=customer, period=period)

    assert list(refused.value.fields) == ["period"]
    assert not Invoice.objects.exists()


def test_month_end_for_a_month_outside_the_booking_window_is_refused(customer):
    with pytest.raises(DomainError, match="The month 1999-12-01 is before 2000-01-01"):
        month_end_run(actor=None, period=date(1999, 12, 1))

    assert not BillingRun.objects.exists()


def test_a_sales_approval_threshold_beyond_max_amount_is_refused(customer):
    with pytest.raises(ValidationError) as refused:
        billing_config_update(actor=None, customer=customer, sales_approval_above=OVER)

    assert refused.value.message_dict == {
        "sales_approval_above": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]
    }


# --- API --------------------------------------------------------------------------------------------------------


def payment_body(payer, **changes) -> dict:
    body = {
        "customer": payer.pk,
        "amount": "10.00",
        "received_at": "2026-11-20T10:00:00Z",
        "bank_reference": "BANK-API",
    }
    return body | changes


def refusal(response, field: str) -> list[str]:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field], error
    return error["fields"][field]


@pytest.fixture
def finance_api(finance_user, client_for):
    return client_for(finance_user)


def test_the_reported_overflowing_payments_are_refused_and_the_cash_account_keeps_working(finance_api):
    first, second = CustomerFactory(currency="USD"), CustomerFactory(currency="USD")

    for amount in ["9999999999999999.99", "9999999999990000.00", str(OVER)]:
        response = finance_api.post("/api/payments", payment_body(first, amount=amount), format="json")
        assert refusal(response, "amount") == [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]
    response = finance_api.post("/api/payments", payment_body(second, amount="10000.00"), format="json")

    assert response.status_code == 201, response.content
    assert list(Payment.objects.values_list("customer", "amount")) == [(second.pk, D("10000.00"))]
    assert finance_api.post("/api/payments", payment_body(first, amount=str(MAX)), format="json").status_code == 201


def test_the_schema_says_how_large_an_amount_may_be(finance_api):
    schema = finance_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    pattern = re.compile(schema["components"]["schemas"]["PaymentCreateRequest"]["properties"]["amount"]["pattern"])
    assert [bool(pattern.search(text)) for text in ["1000000000.00", "-1000000000", "999999999.99", "0.5"]] == [
        True
    ] * 4
    assert not any(pattern.search(text) for text in ["1000000000.01", "1000000001", "9999999999999999.99", "1.001"])


@pytest.mark.parametrize(
    "customer_id",
    [
        pytest.param(lambda pk: pk + 0.5, id="2.5"),
        pytest.param(lambda pk: f"{pk}.5", id="'2.5'"),
        pytest.param(lambda pk: f"{pk}.0", id="'2.0'"),
        pytest.param(lambda pk: True, id="true"),
        pytest.param(lambda pk: [pk], id="a list"),
    ],
)
def test_a_customer_id_that_is_not_a_whole_number_is_refused_everywhere(customer_id, finance_api, customer):
    payment = finance_api.post(
        "/api/payments", payment_body(customer, customer=customer_id(customer.pk)), format="json"
    )
    draft = finance_api.post(
        "/api/invoices", {"customer": customer_id(customer.pk), "period": "2026-10"}, format="json"
    )

    for response in (payment, draft):
        assert refusal(response, "customer")[0].startswith("Give the id as a whole number, not ")
    assert not Payment.objects.exists() and not Invoice.objects.exists()


def test_a_customer_id_as_digits_is_still_accepted(finance_api, customer):
    response = finance_api.post("/api/payments", payment_body(customer, customer=str(customer.pk)), format="json")

    assert response.status_code == 201, response.content


def test_a_payment_in_another_currency_is_a_400_naming_currency(finance_api, customer):
    response = finance_api.post("/api/payments", payment_body(customer, currency="USD"), format="json")

    assert refusal(response, "currency") == ["Must be the customer's currency, EUR."]
    assert response.json()["error"]["code"] == "currency_mismatch"
    assert not Payment.objects.exists()
    response = finance_api.post("/api/payments", payment_body(customer, currency="EUR"), format="json")
    assert (response.status_code, response.json()["currency"]) == (201, "EUR")


@pytest.mark.parametrize(
    "received_at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z", "9999-12-31T00:00Z"]
)
def test_a_payment_received_outside_the_booking_window_is_a_400_naming_received_at(finance_api, customer, received_at):
    response = finance_api.post("/api/payments", payment_body(customer, received_at=received_at), format="json")

    refusal(response, "received_at")
    assert not Payment.objects.exists()


def test_a_credit_note_beyond_max_amount_is_a_400_naming_amount(finance_api, customer):
    invoice = issued(customer, 100)

    response = finance_api.post(
        f"/api/invoices/{invoice.pk}/credit-notes", {"reason": "x", "amount": str(OVER)}, format="json"
    )

    assert refusal(response, "amount") == [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]
    assert not CreditNote.objects.exists()


def test_moving_a_payment_by_an_amount_beyond_max_amount_is_a_400_naming_amount(finance_api, customer):
    first, second = issued(customer, 100), issued(customer, 50)
    payment = pay(customer, "120.00")  # pays the first
    before = list(payment.allocations.values_list("invoice", "amount"))

    response = finance_api.post(
        f"/api/payments/{payment.pk}/allocations",
        {"invoice": second.pk, "from_invoice": first.pk, "amount": str(OVER)},
        format="json",
    )

    assert refusal(response, "amount") == [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]
    assert list(payment.allocations.values_list("invoice", "amount")) == before


@pytest.mark.parametrize("period", ["0001-01", "1999-12", "9999-12"])
def test_a_draft_for_a_month_outside_the_booking_window_is_a_400_naming_period(finance_api, customer, period):
    response = finance_api.post("/api/invoices", {"customer": customer.pk, "period": period}, format="json")

    refusal(response, "period")
    assert not Invoice.objects.exists()


def test_a_usage_draft_beyond_max_amount_is_a_400_saying_why(finance_api, huge_usage):
    response = finance_api.post("/api/invoices", {"customer": huge_usage.pk, "period": "2026-10"}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "out_of_range"
    assert "The invoice of ACME for 2026-10 cannot be made" in error["message"]
    assert not Invoice.objects.exists()


# --- Admin forms ------------------------------------------------------------------------------------------------


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


def form_errors(response) -> dict:
    assert response.status_code == 200, response.get("Location")
    return response.context["form"].errors


def test_the_payment_form_refuses_an_amount_beyond_max_amount(finance, customer):
    data = {
        "customer": customer.pk,
        "amount": str(OVER),
        "method": "bank_transfer",
        "received_at_0": "2026-11-20",
        "received_at_1": "09:30:00",
        "bank_reference": "BANK-FORM",
    }

    response = finance.post("/admin/ledger/payment/add/", data)

    assert form_errors(response) == {"amount": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]}
    assert not Payment.objects.exists()


@pytest.mark.parametrize(("day", "problem"), [("1999-12-31", "before 2000-01-01"), ("2999-01-01", "in the future")])
def test_the_payment_form_refuses_a_date_received_outside_the_booking_window(finance, customer, day, problem):
    data = {
        "customer": customer.pk,
        "amount": "10.00",
        "method": "bank_transfer",
        "received_at_0": day,
        "received_at_1": "09:30:00",
        "bank_reference": "BANK-FORM",
    }

    errors = form_errors(finance.post("/admin/ledger/payment/add/", data))

    assert problem in errors["received_at"][0]
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/admin/ledger/refund/add/", {"method": "bank_transfer", "reason": "Back"}),
        ("/admin/ledger/adjustment/add/", {"direction": "debit", "reason": "Fix"}),
    ],
)
def test_the_refund_and_adjustment_forms_refuse_an_amount_beyond_max_amount(finance, customer, url, data):
    response = finance.post(url, {"customer": customer.pk, "amount": str(OVER)} | data)

    assert form_errors(response) == {"amount": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]}
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(
    ("line", "field", "bound"),
    [
        ({"quantity": "100000000000.000001", "unit_price": "1"}, "quantity", QUANTITY_BOUND),
        ({"quantity": "1", "unit_price": "1000000000.000001"}, "unit_price", AMOUNT_BOUND),
    ],
    ids=["quantity", "unit price"],
)
def test_the_add_line_dialog_refuses_figures_beyond_the_bounds(finance, customer, line, field, bound):
    draft = invoice_create_manual(actor=None, customer=customer)

    response = finance.post(f"/admin/ledger/invoice/{draft.pk}/add-line/", DIALOG | {"description": "Big"} | line)

    assert bound in form_errors(response)[field][0]
    assert not draft.items.exists()


def test_the_add_line_dialog_says_when_quantity_times_price_is_beyond_max_amount(finance, customer):
    draft = invoice_create_manual(actor=None, customer=customer)
    line = {"description": "Big", "quantity": "3", "unit_price": "400000000"}

    response = finance.post(f"/admin/ledger/invoice/{draft.pk}/add-line/", DIALOG | line)

    assert response.status_code == 302
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        f"The line comes to EUR\xa01,200,000,000.00, beyond the largest amount accepted, {AMOUNT_BOUND}."
    ]
    assert not draft.items.exists()


def test_the_credit_dialog_refuses_an_amount_beyond_max_amount(finance, customer):
    invoice = issued(customer, 100)

    response = finance.post(
        f"/admin/ledger/invoice/{invoice.pk}/credit/",
        DIALOG | {"scope": "partial", "amount": str(OVER), "reason": "Too much"},
    )

    assert form_errors(response) == {"amount": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]}
    assert not CreditNote.objects.exists()


def test_the_billing_configuration_refuses_a_threshold_beyond_max_amount(finance, customer):
    config = customer.billing_config
    data = {
        "cycle": "monthly",
        "payment_terms_days": "14",
        "tax_rate": "0.2000",
        "invoice_email": "",
        "reminder_interval_days": "7",
        "approval_rule": "none",
        "sales_approval_above": str(OVER),
    }

    response = finance.post(f"/admin/ledger/billingconfig/{config.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "sales_approval_above": [f"Beyond the largest amount accepted, {AMOUNT_BOUND}."]
    }
    config.refresh_from_db()
    assert config.sales_approval_above is None


@pytest.mark.parametrize("url", ["/admin/ledger/invoice/add/", "/admin/ledger/billingrun/month-end/"])
@pytest.mark.parametrize(("period", "problem"), [("1999-12", "before 2000-01-01"), ("2999-01", "in the future")])
def test_the_month_fields_refuse_a_month_outside_the_booking_window(finance, customer, url, period, problem):
    data = {"customer": customer.pk, "period": period, "kind": "usage", "preview": ""}

    errors = form_errors(finance.post(url, data))

    assert list(errors) == ["period"] and problem in errors["period"][0]
    assert not Invoice.objects.exists() and not BillingRun.objects.exists()


def test_the_month_end_preview_says_which_customer_it_will_not_bill_and_why(finance, huge_usage):
    response = finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "preview": ""})

    content = response.content.decode()
    assert "Month-end will not bill this customer: the line “Appraisal — usage at 1000000” comes to" in content
    assert f"EUR\xa01,500,000,000.00, beyond the largest amount accepted, {AMOUNT_BOUND}." in content


# --- PostgreSQL: balances cannot overflow -----------------------------------------------------------------------

COLUMN_MAX = D("9999999999999999.99")  # the largest amount a payment's column holds: the worst a bound could allow


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="numeric overflow is PostgreSQL's; SQLite stores REAL")
def test_the_largest_amounts_posted_to_many_customers_sharing_one_cash_account_never_overflow(
    finance_api, finance, settings
):
    settings.MAX_AMOUNT = COLUMN_MAX
    customers = [CustomerFactory(currency="USD", client_id=f"USD-{n:02d}") for n in range(12)]
    whale = customers[0]

    for number, payer in enumerate([*customers, whale, whale], start=1):
        body = payment_body(payer, amount=str(COLUMN_MAX), bank_reference=f"BIG-{number}")
        response = finance_api.post("/api/payments", body, format="json")
        assert response.status_code == 201, response.content

    cash = Account.objects.get(code="cash:USD")
    assert cash.balance == 14 * COLUMN_MAX
    assert cash.legs.order_by("id").last().balance_after == 14 * COLUMN_MAX
    assert customer_balance(whale) == -3 * COLUMN_MAX
    assert ledger_differences()[0] == []
    assert finance_api.get(f"/api/customers/{whale.pk}/statement").json()["balance"] == str(-3 * COLUMN_MAX)
    balances = finance_api.get(f"/api/balances?customer={whale.pk}").json()["results"]
    assert [row["balance"] for row in balances] == [str(-3 * COLUMN_MAX)]
    assert finance.get(f"/admin/catalog/customer/{whale.pk}/statement/").status_code == 200
    assert finance.get("/admin/ledger/account/").status_code == 200
