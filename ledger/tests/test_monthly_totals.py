"""The customers' monthly totals stay equal to what their invoices, credit notes, payments and refunds make,
write after write, and the rebuild makes them so again."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from catalog.tests.factories import CustomerFactory
from ledger.models import MonthlyGrandTotal, MonthlyTotal, TrailingRevenue
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.monthly_totals import (
    FIELDS,
    add_months,
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


def stored_windows() -> dict:
    return {(row.customer_id, row.month, row.currency): row.amount for row in TrailingRevenue.objects.all()}


def stored_grand_totals() -> dict:
    return {
        (row.month, row.currency): {field: getattr(row, field) for field in FIELDS}
        for row in MonthlyGrandTotal.objects.all()
    }


def windows_by_hand(totals: dict) -> dict:
    """The twelve-month windows, added up here from the monthly totals: each window ending in a month from the
    first with revenue to eleven months after the last, summing the months it holds."""
    revenue_months: dict = {}
    for (customer_id, month, currency), figures in totals.items():
        if figures["revenue"] or figures["revenue_credited"]:
            revenue_months[customer_id, month, currency] = figures["revenue"] - figures["revenue_credited"]
    windows = {}
    for customer_id, first, currency in revenue_months:
        for offset in range(12):
            end = add_months(first, offset)
            windows[customer_id, end, currency] = sum(
                (
                    amount
                    for (other, month, other_currency), amount in revenue_months.items()
                    if (other, other_currency) == (customer_id, currency) and add_months(end, -11) <= month <= end
                ),
                D("0.00"),
            )
    return windows


def grand_by_hand(totals: dict) -> dict:
    grand: dict = {}
    for (_, month, currency), figures in totals.items():
        row = grand.setdefault((month, currency), dict.fromkeys(FIELDS, D("0.00")))
        for field in FIELDS:
            row[field] += figures[field]
    return grand


def assert_kept() -> None:
    """The monthly totals equal what the rows make; the windows and the grand totals equal what they make."""
    totals = computed_monthly_totals()
    assert stored() == totals
    assert stored_windows() == windows_by_hand(totals)
    assert stored_grand_totals() == grand_by_hand(totals)


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
    assert_kept()
    assert month_row(customer, this_month)["invoiced"] == D("120.00")
    assert month_row(customer, OCTOBER)["revenue"] == D("100.00")

    payment_record(
        actor=None, customer=customer, amount=D("50.00"), received_at=RECEIVED, bank_reference="BANK-1"
    )  # received in November
    assert_kept()
    assert month_row(customer, NOVEMBER)["received"] == D("50.00")

    credit_note_issue(actor=None, invoice=invoice, reason="Discount agreed", amount=D("24.00"))
    assert_kept()
    assert month_row(customer, this_month)["credited"] == D("24.00")
    assert month_row(customer, OCTOBER)["revenue_credited"] == D("20.00")  # the note's subtotal, in the month billed

    payment_record(
        actor=None, customer=customer, amount=D("100.00"), received_at=RECEIVED, bank_reference="BANK-2"
    )  # 46.00 pays the rest, 54.00 stays as credit
    refund_record(actor=None, customer=customer, amount=D("54.00"), reason="Closing the account")
    assert_kept()
    assert month_row(customer, NOVEMBER)["received"] == D("150.00")
    assert month_row(customer, this_month)["refunded"] == D("54.00")

    full = issued(customer, "10.00", period=NOVEMBER)
    credit_note_issue(actor=None, invoice=full, reason="Billed in error")
    assert_kept()
    assert month_row(customer, NOVEMBER)["revenue"] == month_row(customer, NOVEMBER)["revenue_credited"] == D("10.00")
    assert month_row(customer, this_month)["invoiced"] == month_row(customer, this_month)["credited"] + D("96.00")


def test_other_customers_months_are_their_own(customer):
    other = CustomerFactory(currency="USD")
    issued(customer, "100.00")
    payment_record(actor=None, customer=other, amount=D("7.00"), received_at=RECEIVED, bank_reference="B")
    assert_kept()
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
    assert_kept()


def test_a_rebuild_of_some_customers_moves_the_grand_totals_by_their_difference_only(customer):
    other = CustomerFactory(currency="EUR")
    issued(customer, "100.00")
    payment_record(actor=None, customer=customer, amount=D("5.00"), received_at=RECEIVED, bank_reference="B1")
    payment_record(actor=None, customer=other, amount=D("9.00"), received_at=RECEIVED, bank_reference="B2")
    # The customer's November went wrong, and the grand total with it; its window of October too.
    MonthlyTotal.objects.filter(customer=customer, month=NOVEMBER).update(received=D("999.00"))
    MonthlyGrandTotal.objects.filter(month=NOVEMBER, currency="EUR").update(received=D("1008.00"))
    TrailingRevenue.objects.filter(customer=customer, month=OCTOBER).update(amount=D("1.00"))

    monthly_totals_rebuild(customer_ids=[customer.pk])
    assert_kept()
    assert stored_grand_totals()[NOVEMBER, "EUR"]["received"] == D("14.00")

    # What the others' writes put in the grand totals is theirs: the rebuild of one customer leaves it alone
    # (another customer's payment may commit meanwhile); the rebuild of every customer rewrites it.
    MonthlyGrandTotal.objects.filter(month=NOVEMBER, currency="EUR").update(received=D("20.00"))
    monthly_totals_rebuild(customer_ids=[customer.pk])
    assert stored_grand_totals()[NOVEMBER, "EUR"]["received"] == D("20.00")
    call_command("rebuild_ledger_monthly_totals")
    assert_kept()


def test_revenue_counts_in_the_twelve_windows_that_hold_its_month(customer):
    other = CustomerFactory(currency="EUR")
    invoice = issued(customer, "100.00")  # October's revenue: 100.00
    issued(customer, "30.00", period=NOVEMBER)
    issued(other, "7.00", period=NOVEMBER)
    credit_note_issue(actor=None, invoice=invoice, reason="Discount agreed", amount=D("24.00"))  # 20.00 of revenue

    windows = stored_windows()
    september_next_year, october_next_year = date(2027, 9, 1), date(2027, 10, 1)
    assert (customer.pk, date(2026, 9, 1), "EUR") not in windows
    assert windows[customer.pk, OCTOBER, "EUR"] == D("80.00")
    assert windows[customer.pk, NOVEMBER, "EUR"] == windows[customer.pk, september_next_year, "EUR"] == D("110.00")
    assert windows[customer.pk, october_next_year, "EUR"] == D("30.00")  # October has left the window
    assert (customer.pk, date(2027, 11, 1), "EUR") not in windows
    assert windows[other.pk, NOVEMBER, "EUR"] == D("7.00")
    grand = stored_grand_totals()
    assert grand[NOVEMBER, "EUR"]["revenue"] == D("37.00")
    assert grand[OCTOBER, "EUR"]["revenue_credited"] == D("20.00")
    assert_kept()


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
