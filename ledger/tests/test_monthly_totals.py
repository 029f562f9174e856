"""The customers' monthly totals stay equal to what their invoices, credit notes, payments and refunds make,
write after write, and the rebuild makes them so again."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from catalog.tests.factories import CustomerFactory
from ledger.models import MonthlyTotal
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.monthly_totals import (
    FIELDS,
    billing_month,
    computed_monthly_totals,
    month_of,
    monthly_totals_rebuild,
)
from ledger.services.payments import payment_record, refund_record

pytestmark = pytest.mark.django_db
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)


def stored() -> dict:
    return {
        (row.customer_id, row.month, row.currency): {field: getattr(row, field) for field in FIELDS}
        for row in MonthlyTotal.objects.all()
    }


def month_row(customer, month: date) -> dict:
    return stored()[customer.pk, month, customer.currency]


def issued(customer, amount: str, *, period: date = OCTOBER):
    invoice = invoice_create_manual(
        actor=None,
        customer=customer,
        period=period,
        lines=[{"description": "Service", "quantity": D(1), "unit_price": D(amount)}],
    )
    return invoice_issue(actor=None, invoice=invoice, send=False)


@pytest.fixture
def customer(priced_customer):
    customer, _ = priced_customer
    return customer  # tax 20%: an invoice of x bills 1.2x


def test_each_write_adds_to_its_month_and_the_months_equal_their_rows(customer):
    this_month = month_of(timezone.now())
    invoice = issued(customer, "100.00")  # October's, issued today
    assert stored() == computed_monthly_totals()
    assert month_row(customer, this_month)["invoiced"] == D("120.00")
    assert month_row(customer, OCTOBER)["revenue"] == D("100.00")

    payment_record(
        actor=None, customer=customer, amount=D("50.00"), received_at=RECEIVED, bank_reference="BANK-1"
    )  # received in November
    assert stored() == computed_monthly_totals()
    assert month_row(customer, NOVEMBER)["received"] == D("50.00")

    credit_note_issue(actor=None, invoice=invoice, reason="Discount agreed", amount=D("24.00"))
    assert stored() == computed_monthly_totals()
    assert month_row(customer, this_month)["credited"] == D("24.00")
    assert month_row(customer, OCTOBER)["revenue_credited"] == D("20.00")  # the note's subtotal, in the month billed

    payment_record(
        actor=None, customer=customer, amount=D("100.00"), received_at=RECEIVED, bank_reference="BANK-2"
    )  # 46.00 pays the rest, 54.00 stays as credit
    refund_record(actor=None, customer=customer, amount=D("54.00"), reason="Closing the account")
    assert stored() == computed_monthly_totals()
    assert month_row(customer, NOVEMBER)["received"] == D("150.00")
    assert month_row(customer, this_month)["refunded"] == D("54.00")

    full = issued(customer, "10.00", period=NOVEMBER)
    credit_note_issue(actor=None, invoice=full, reason="Billed in error")
    assert stored() == computed_monthly_totals()
    assert month_row(customer, NOVEMBER)["revenue"] == month_row(customer, NOVEMBER)["revenue_credited"] == D("10.00")
    assert month_row(customer, this_month)["invoiced"] == month_row(customer, this_month)["credited"] + D("96.00")


def test_other_customers_months_are_their_own(customer):
    other = CustomerFactory(currency="USD")
    issued(customer, "100.00")
    payment_record(actor=None, customer=other, amount=D("7.00"), received_at=RECEIVED, bank_reference="B")
    assert stored() == computed_monthly_totals()
    assert stored()[other.pk, NOVEMBER, "USD"]["received"] == D("7.00")
    assert {key[0] for key in stored()} == {customer.pk, other.pk}


def test_the_rebuild_puts_back_what_went_wrong(customer):
    other = CustomerFactory(currency="EUR")
    issued(customer, "100.00")
    payment_record(actor=None, customer=customer, amount=D("5.00"), received_at=RECEIVED, bank_reference="B1")
    payment_record(actor=None, customer=other, amount=D("9.00"), received_at=RECEIVED, bank_reference="B2")
    right = stored()
    MonthlyTotal.objects.filter(customer=customer, month=NOVEMBER).update(received=D("999.00"))
    MonthlyTotal.objects.filter(customer=other).delete()

    monthly_totals_rebuild(customer_ids=[customer.pk])  # one customer: the other's stays missing
    assert stored() == {key: value for key, value in right.items() if key[0] == customer.pk}

    call_command("rebuild_ledger_monthly_totals")
    assert stored() == right == computed_monthly_totals()


def test_the_command_names_an_unknown_customer():
    with pytest.raises(CommandError, match="No customer with client id NOPE"):
        call_command("rebuild_ledger_monthly_totals", "--customer", "NOPE")


@override_settings(BILLING_TIME_ZONE="Europe/Berlin")
def test_months_are_the_billing_time_zones():
    assert month_of(datetime(2026, 10, 31, 23, 30, tzinfo=UTC)) == NOVEMBER  # 00:30 on 1 November in Berlin
    assert month_of(datetime(2026, 10, 31, 22, 59, tzinfo=UTC)) == OCTOBER


def test_an_order_invoice_counts_in_the_month_it_was_issued():
    issued_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert billing_month("order", OCTOBER, issued_at) == NOVEMBER
    assert billing_month("usage", OCTOBER, issued_at) == OCTOBER
    assert billing_month("manual", OCTOBER, issued_at) == OCTOBER
