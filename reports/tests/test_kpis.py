"""The dashboard's figures (reports.kpis) against hand-computed fixtures: per currency, at their boundaries.

Expected amounts are added up here, in Python, from the fixture's own numbers.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from accounts.tests.factories import UserFactory
from catalog.models import Service
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice
from orders.models import Order
from reports import kpis, order_kpis
from reports.kpis import AgingFigure, Scope
from reports.tests.dashboard_data import TODAY, at, balance, credit_note, invoice, payment, refund, usage
from reports.tests.order_data import make_order

pytestmark = pytest.mark.django_db

EVERYONE = Scope(None)
DECEMBER, NOVEMBER = date(2026, 12, 1), date(2026, 11, 1)
D = Decimal


@pytest.fixture
def eur():
    return CustomerFactory(currency="EUR", name="Acme Payments")


@pytest.fixture
def usd():
    return CustomerFactory(currency="USD", name="Globex Screening")


def test_month_helpers():
    assert kpis.last_months(TODAY, 3) == [date(2026, 10, 1), NOVEMBER, DECEMBER]
    assert kpis.last_months(date(2027, 1, 31), 2) == [DECEMBER, date(2027, 1, 1)]
    assert kpis.add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)


def test_invoiced_and_collected_by_month_per_currency(eur, usd):
    # Issued in December, its first moment included; November's last second belongs to November.
    invoice(eur, "100.10", issued=at(DECEMBER, 0, 0, 0))
    december = invoice(eur, "200.20", issued=at(TODAY))
    invoice(eur, "40.00", issued=at(NOVEMBER + timedelta(days=29), 23, 59, 59))
    invoice(eur, "999.00")  # a draft: not invoiced
    credit_note(december, "50.05", issued=at(date(2026, 12, 5)))
    invoice(usd, "300.00", issued=at(date(2026, 12, 2)), status=Invoice.Status.PAID)
    payment(eur, "500.00", received=at(date(2026, 12, 3)))
    payment(eur, "20.50", received=at(TODAY))
    payment(eur, "70.00", received=at(date(2026, 11, 20)))
    refund(eur, "30.00", made=at(date(2026, 12, 10)))
    payment(usd, "300.00", received=at(date(2026, 12, 4)))

    monthly = kpis.invoiced_and_collected_by_month(EVERYONE, kpis.last_months(TODAY))

    assert monthly.month(monthly.invoiced, DECEMBER) == {
        "EUR": D("100.10") + D("200.20") - D("50.05"),
        "USD": D("300.00"),
    }
    assert monthly.month(monthly.invoiced, NOVEMBER) == {"EUR": D("40.00")}
    assert monthly.month(monthly.collected, DECEMBER) == {"EUR": D("500.00") + D("20.50") - D("30.00"), "USD": D("300")}
    assert monthly.month(monthly.collected, NOVEMBER) == {"EUR": D("70.00")}
    assert len(monthly.invoiced["EUR"]) == 12
    # The same figure straight from the period's days:
    assert kpis.invoiced(EVERYONE, start=DECEMBER, end=date(2026, 12, 31)) == {"EUR": D("250.25"), "USD": D("300.00")}


def test_receivables_and_credit_held_per_currency(eur, usd):
    balance(eur, "1000.00")
    balance(CustomerFactory(currency="EUR"), "234.56")
    balance(CustomerFactory(currency="EUR"), "-75.00")
    balance(CustomerFactory(currency="EUR"), "0.00")
    balance(usd, "300.00")
    balance(CustomerFactory(currency="USD"), "-10.01")

    held = kpis.balances(EVERYONE)

    assert held.receivables == {"EUR": D("1000.00") + D("234.56"), "USD": D("300.00")}
    assert held.credit_held == {"EUR": D("75.00"), "USD": D("10.01")}


def test_aging_buckets_at_their_boundaries(eur, usd):
    # (days past due on TODAY, total, paid, credited)
    open_invoices = [(-5, "105.00", "5.00", "0.00"), (0, "100.00", "0.00", "0.00")]
    open_invoices += [(1, "101.00", "1.00", "0.00"), (30, "130.00", "0.00", "30.00")]
    open_invoices += [(31, "131.00", "0.00", "0.00"), (60, "160.00", "60.00", "0.00")]
    open_invoices += [(61, "161.00", "0.00", "0.00"), (90, "190.00", "0.00", "0.00")]
    open_invoices += [(91, "191.00", "0.00", "0.00"), (400, "400.40", "0.00", "0.00")]
    for days, total, paid, credited in open_invoices:
        status = Invoice.Status.OVERDUE if days > 0 else Invoice.Status.ISSUED
        invoice(eur, total, issued=at(date(2026, 6, 1)), status=status, due=TODAY - timedelta(days=days), paid=paid,
                credited=credited)  # fmt: skip
    invoice(eur, "500.00", issued=at(date(2026, 6, 1)), status=Invoice.Status.PAID, due=TODAY - timedelta(days=45))
    invoice(eur, "500.00", due=TODAY - timedelta(days=45))  # a draft
    invoice(usd, "75.25", issued=at(date(2026, 11, 1)), due=TODAY - timedelta(days=31), status=Invoice.Status.OVERDUE)

    aged = kpis.aging(EVERYONE, on=TODAY)

    def open_on(days: int) -> Decimal:
        _, total, paid, credited = next(row for row in open_invoices if row[0] == days)
        return D(total) - D(paid) - D(credited)

    assert aged["EUR"] == {
        "current": AgingFigure(open_on(-5) + open_on(0), 2),
        "1-30": AgingFigure(open_on(1) + open_on(30), 2),
        "31-60": AgingFigure(open_on(31) + open_on(60), 2),
        "61-90": AgingFigure(open_on(61) + open_on(90), 2),
        "90+": AgingFigure(open_on(91) + open_on(400), 2),
    }
    zero = AgingFigure(D("0.00"), 0)
    assert aged["USD"] == {
        "current": zero,
        "1-30": zero,
        "31-60": AgingFigure(D("75.25"), 1),
        "61-90": zero,
        "90+": zero,
    }
    past_due = sum((open_on(days) for days in (1, 30, 31, 60, 61, 90, 91, 400)), D(0))
    assert kpis.overdue(aged) == {"EUR": AgingFigure(past_due, 8), "USD": AgingFigure(D("75.25"), 1)}


def test_dso_divides_receivables_by_the_90_days_to_today_rounding_half_up(eur, usd):
    first, last = kpis.dso_window(TODAY)
    assert (first, last) == (TODAY - timedelta(days=89), TODAY)
    invoice(eur, "1000.00", issued=at(first, 0, 0, 0))  # the window's first moment
    invoice(eur, "1300.00", issued=at(TODAY, 23, 59, 59))  # its last second
    invoice(eur, "999.99", issued=at(first - timedelta(days=1), 23, 59, 59))  # before it
    credit_note(invoice(eur, "100.00", issued=at(date(2026, 6, 1))), "500.00", issued=at(TODAY))
    balance(eur, "610.00")
    balance(usd, "10.00")  # owed, nothing invoiced in the window

    sales = kpis.invoiced(EVERYONE, start=first, end=last)
    figures = kpis.dso(kpis.balances(EVERYONE).receivables, sales)

    assert sales == {"EUR": D("1000.00") + D("1300.00") - D("500.00")}
    # 610.00 ÷ 1,800.00 × 90 = 30.5 days: half up, 31.
    assert figures == {"EUR": 31, "USD": None}


def test_dso_rounds_below_half_down():
    assert kpis.dso({"EUR": D("1005.00")}, {"EUR": D("3000.00")}) == {"EUR": 30}  # 30.15
    assert kpis.dso({}, {"EUR": D("3000.00")}) == {"EUR": 0}


def test_drafts_waiting_count_drafts_and_approved_invoices(eur, usd):
    invoice(eur, "10.00")
    invoice(eur, "20.00", status=Invoice.Status.APPROVED)
    invoice(usd, "30.00")
    invoice(eur, "40.00", status=Invoice.Status.PENDING_APPROVAL)
    invoice(eur, "50.00", status=Invoice.Status.REJECTED)
    invoice(eur, "60.00", issued=at(TODAY))

    waiting = kpis.drafts_waiting(EVERYONE)

    assert waiting.invoices == 3
    assert waiting.amounts == {"EUR": D("10.00") + D("20.00"), "USD": D("30.00")}


def test_usage_by_category_and_month_to_date_from_the_monthly_summaries(eur, usd):
    kyc = ServiceFactory(category=Service.Category.KYC)
    aml = ServiceFactory(category=Service.Category.AML)
    usage(eur, kyc, "12.345678901234", period=DECEMBER)
    usage(eur, aml, "0.004321098766", period=DECEMBER)
    usage(eur, kyc, "7.000000000000", period=NOVEMBER)
    usage(usd, kyc, "3.333333333333", period=DECEMBER)
    usage(usd, kyc, "99.000000000000", period=date(2025, 12, 1))  # thirteen months ago

    figures = kpis.usage_by_category(EVERYONE, kpis.last_months(TODAY))

    # Rounded once, after adding: 12.345678901234 + 0.004321098766 = 12.35 exactly.
    assert figures.month_total(DECEMBER) == {"EUR": D("12.35"), "USD": D("3.33")}
    assert figures.month_total(NOVEMBER) == {"EUR": D("7.00")}
    assert figures.amounts["EUR"]["kyc"][-2:] == [D("7"), D("12.345678901234")]
    assert figures.amounts["EUR"]["aml"][-1] == D("0.004321098766")
    assert sum(figures.amounts["USD"]["kyc"]) == D("3.333333333333")


def test_top_customers_by_revenue_per_currency_without_tax_less_credit_notes(usd):
    months = kpis.last_months(TODAY)
    customers = [CustomerFactory(currency="EUR", name=f"Customer {n:02d}") for n in range(12)]
    for rank, customer in enumerate(customers):
        invoice(customer, f"{1200 - rank * 10}.00", subtotal=f"{1000 - rank * 10}.00", issued=at(date(2026, 3, 1)),
                period=date(2026, 2, 1))  # fmt: skip
    # Customer 11 gets more revenue from an order invoice issued in the window, whatever its period.
    invoice(customers[11], "500.00", issued=at(date(2026, 12, 1)), period=date(2020, 1, 1), kind=Invoice.Kind.ORDER)
    # Customer 00 loses 600.00 of revenue to a credit note; its invoice billed a month in the window.
    credit_note(Invoice.objects.get(customer=customers[0]), "720.00", subtotal="600.00", issued=at(TODAY))
    invoice(customers[1], "5000.00", issued=at(date(2025, 12, 5)), period=date(2025, 11, 1))  # billed before
    invoice(customers[2], "5000.00")  # a draft
    invoice(usd, "10.00", issued=at(TODAY), period=DECEMBER)

    top = kpis.top_customers(EVERYONE, months[-1], limit=10)

    eur = [(row.name, row.amount) for row in top["EUR"]]
    assert eur[0] == ("Customer 11", D("890.00") + D("500.00"))
    assert eur[1:] == [(f"Customer {n:02d}", D(1000 - n * 10)) for n in range(1, 10)]
    assert [(row.name, row.amount) for row in top["USD"]] == [("Globex Screening", D("10.00"))]


def test_order_counts_per_status_with_open_and_overdue(eur, usd):
    upcoming = make_order(eur, created="2026-12-01 09:00", fee="100.10")
    Order.objects.filter(pk=upcoming.pk).update(due_date=TODAY + timedelta(days=1))
    late = make_order(eur, created="2026-11-01 09:00", status=Order.Status.IN_PROGRESS, fee="20.02")
    Order.objects.filter(pk=late.pk).update(due_date=TODAY - timedelta(days=1))
    due_today = make_order(eur, created="2026-11-01 09:00", status=Order.Status.DOCUMENTS_PENDING, fee="3.00")
    Order.objects.filter(pk=due_today.pk).update(due_date=TODAY)
    old_done = make_order(eur, status=Order.Status.COMPLETED, ended="2026-02-01 10:00", fee="999.00")
    make_order(usd, created="2026-12-01 09:00", status=Order.Status.CANCELLED, ended="2026-12-02 10:00", fee="5.00")
    usd_open = make_order(usd, created="2026-12-01 09:00", fee="7.50")
    Order.objects.filter(pk=usd_open.pk).update(due_date=TODAY)
    Order.objects.filter(pk=old_done.pk).update(due_date=date(2026, 1, 10))  # ended: never overdue

    counts = kpis.order_counts(UserFactory(is_superuser=True), today=TODAY)

    assert counts.by_status == {
        "started": 2,
        "documents_pending": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 0,
        "cancelled": 1,
    }
    assert (counts.open, counts.overdue) == (4, 1)
    assert counts.open_fees == {"EUR": D("123.12"), "USD": D("7.50")}
    # The orders open now are the orders open, by their timestamps, at the end of today.
    today_only = order_kpis.unrealised_revenue(UserFactory(is_superuser=True), start=TODAY, end=TODAY)
    assert {currency: figure.amount for currency, figure in today_only.items()} == counts.open_fees
