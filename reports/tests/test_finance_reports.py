"""The finance reports' figures (reports.finance) against hand-computed ones: aging buckets at their boundaries,
as of today and of a past day; the invoice register; the payments register; revenue by month and service; the
tax report per rate; per-currency totals; and what a CSM sees (their customers only).

Billing time zone UTC. "Today" is 10 Apr 2026.
"""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest

from accounts.roles import Role
from catalog.models import Service
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice, InvoiceItem, ServiceRevenue
from ledger.services.revenue_totals import revenue_totals_rebuild
from reports import finance
from reports.tests.finance_data import (
    D,
    at,
    change_invoice,
    exempt,
    make_credit_note,
    make_invoice,
    make_payment,
    make_refund,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 4, 10)
MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}
S = InvoiceItem.Source


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(at("2026-04-10 12:00"), tick=False)


@pytest.fixture
def people(make_user):
    return {
        "finance": make_user(Role.FINANCE),
        "sales": make_user(Role.SALES),
        "csm": make_user(Role.CUSTOMER_SUCCESS),
        "operations": make_user(Role.OPERATIONS),
    }


@pytest.fixture
def customers(people):
    return {
        "acme": CustomerFactory(name="Acme", currency="EUR", csm=people["csm"]),
        "globex": CustomerFactory(name="Globex", currency="GBP"),
        "initech": CustomerFactory(name="Initech", currency="EUR"),
    }


def _one_line(total: str):
    return [(total, "0", None, S.MANUAL)]


@pytest.fixture
def aging(customers):
    """Acme's open invoices, issued 1 Dec 2025, due 0, 1, 30, 31, 60, 61, 90 and 91 days before today; one of them
    paid in part on 1 Apr, one credited in part; a paid one and a draft that never count; Globex owes in GBP;
    invoice P was open on 1 Mar and paid on 20 Mar."""
    acme, globex = customers["acme"], customers["globex"]
    for days, total in [(0, "100"), (1, "110"), (30, "130"), (31, "131"), (60, "160"), (61, "161"), (90, "190"),
                        (91, "191")]:  # fmt: skip
        due = (TODAY - timedelta(days=days)).isoformat()
        invoice = make_invoice(acme, f"A{days}", issued="2025-12-01 10:00", due=due, lines=_one_line(total),
                               credited="10.00" if days == 60 else "0.00")  # fmt: skip
        if days == 31:
            change_invoice(invoice, "2026-04-01 09:00", amount_paid="31.00")
    make_invoice(acme, "PAID", issued="2025-12-01 10:00", due="2026-01-01", lines=_one_line("999"),
                 status=Invoice.Status.PAID, paid="999.00")  # fmt: skip
    draft = make_invoice(acme, "DRAFT", issued="2025-12-01 10:00", due="2026-01-01", lines=_one_line("888"))
    Invoice.objects.filter(pk=draft.pk).update(number=None, status=Invoice.Status.DRAFT, issued_at=None)
    make_invoice(globex, "G1", issued="2026-04-01 10:00", due="2026-04-30", lines=_one_line("500"))
    paid_later = make_invoice(
        acme, "P", issued="2026-02-01 10:00", due="2026-02-15", lines=[("200", "0.2", None, S.MANUAL)]
    )
    change_invoice(paid_later, "2026-03-20 10:00", amount_paid="240.00", status=Invoice.Status.PAID)


def _rows(table, *keys):
    return [tuple(row[key] for key in keys) for row in table.rows]


def _by(table, key, value):
    return next(row for row in table.totals if row[key] == value)


BUCKET_KEYS = ("customer", "currency", "invoices", "current", "days_1_30", "days_31_60", "days_61_90", "days_over_90",
               "total")  # fmt: skip


def test_aging_today_puts_each_invoice_in_its_bucket_at_the_boundaries(aging, people):
    table = finance.aged_receivables(people["finance"], as_of=TODAY)
    # current: due today (100); 1–30: 1 and 30 days (110 + 130); 31–60: 31 days, 131 less 31 paid, and 60 days,
    # 160 less 10 credited; 61–90: 61 and 90 days (161 + 190); over 90: 91 days (191).
    assert _rows(table, *BUCKET_KEYS) == [
        ("Acme", "EUR", 8, D("100"), D("240"), D("250"), D("351"), D("191"), D("1132")),
        ("Globex", "GBP", 1, D("500"), D(0), D(0), D(0), D(0), D("500")),
    ]
    assert [(row["customer"], row["total"]) for row in table.totals] == [
        ("Total EUR", D("1132")),
        ("Total GBP", D("500")),
    ]
    eur = table.rows[0]
    assert sum((eur[key] for key, _ in finance.BUCKETS), D(0)) == eur["total"]


def test_aging_as_of_a_past_day_reads_the_invoices_as_they_were(aging, people):
    table = finance.aged_receivables(people["finance"], as_of=date(2026, 3, 1), currency="EUR")
    # On 1 Mar: A0–A31 not yet due (100 + 110 + 130 + 131, A31 not yet paid); 1–30: A60 (20 days, 150 open),
    # A61 (21 days) and P (14 days, 240 open, paid only on 20 Mar); 31–60: A90 (50 days) and A91 (51 days).
    assert _rows(table, *BUCKET_KEYS) == [
        ("Acme", "EUR", 9, D("471"), D("551"), D("381"), D(0), D(0), D("1403")),
    ]
    assert finance.aged_receivables(people["finance"], as_of=date(2025, 11, 30)).rows == []


def test_aging_filters_by_customer_and_a_csm_sees_only_their_customers(aging, people, customers):
    assert _rows(finance.aged_receivables(people["csm"], as_of=TODAY), "customer") == [("Acme",)]
    assert _rows(finance.aged_receivables(people["finance"], as_of=TODAY, customer=customers["globex"]), "total") == [
        (D("500"),)
    ]


@pytest.fixture
def march(customers):
    """Invoices and credit notes around March 2026 (see the tests for the figures)."""
    acme, globex, initech = customers["acme"], customers["globex"], customers["initech"]
    kyc = ServiceFactory(name="KYC check", category=Service.Category.KYC)
    aml = ServiceFactory(name="AML screening", category=Service.Category.AML)
    exempt(initech, "Intra-EU reverse charge")
    inv0 = make_invoice(acme, "INV-0", issued="2026-02-28 23:59:59", period="2026-02-01",
                        lines=[("80", "0.2", kyc, S.USAGE)])  # fmt: skip
    inv1 = make_invoice(acme, "INV-1", issued="2026-03-01 00:00:00", period="2026-02-01",
                        lines=[("100", "0.2", kyc, S.USAGE), ("50", "0.1", aml, S.USAGE)])  # fmt: skip
    make_invoice(acme, "INV-2", issued="2026-03-31 23:59:59", period="2026-03-01", kind=Invoice.Kind.ORDER,
                 lines=[("1000", "0.2", None, S.ORDER_FEE), ("30", "0", None, S.DISBURSEMENT)])  # fmt: skip
    make_invoice(initech, "INV-3", issued="2026-03-10 10:00", period="2026-03-01",
                 lines=[("200", "0", kyc, S.USAGE)])  # fmt: skip
    make_invoice(acme, "INV-4", issued="2026-04-01 00:00:00", period="2026-03-01",
                 lines=[("70", "0.2", kyc, S.USAGE)])  # fmt: skip
    make_invoice(globex, "INV-5", issued="2026-03-15 10:00", period="2026-03-01", status=Invoice.Status.PAID,
                 lines=[("300", "0.2", aml, S.USAGE)])  # fmt: skip
    make_credit_note(inv1, "CN-1", issued="2026-03-20 10:00", subtotal="30.00", tax="5.00")
    make_credit_note(inv0, "CN-2", issued="2026-03-05 10:00", subtotal="80.00", tax="16.00")
    revenue_totals_rebuild()  # written behind the ledger's services, as by a bulk load


REGISTER_KEYS = ("number", "document", "customer", "status", "currency", "net", "tax", "total")


def test_invoice_register_lists_the_period_with_credit_notes_negative(march, people):
    table = finance.invoice_register(people["finance"], **MARCH)
    assert _rows(table, *REGISTER_KEYS) == [
        ("INV-1", "Invoice", "Acme", "Issued", "EUR", D("150"), D("25"), D("175")),
        ("CN-2", "Credit note", "Acme", "Issued", "EUR", D("-80"), D("-16"), D("-96")),
        ("INV-3", "Invoice", "Initech", "Issued", "EUR", D("200"), D(0), D("200")),
        ("INV-5", "Invoice", "Globex", "Paid", "GBP", D("300"), D("60"), D("360")),
        ("CN-1", "Credit note", "Acme", "Issued", "EUR", D("-30"), D("-5"), D("-35")),
        ("INV-2", "Invoice", "Acme", "Issued", "EUR", D("1030"), D("200"), D("1230")),
    ]
    assert table.rows[0]["issued"] == date(2026, 3, 1)
    assert table.rows[0]["month"] == date(2026, 2, 1)
    assert len(table.rows) == 6
    assert table.rows[4:6][1]["number"] == "INV-2"
    eur, gbp = table.totals
    assert (eur["net"], eur["tax"], eur["total"], eur["documents"]) == (D("1270"), D("204"), D("1474"), 5)
    assert (gbp["net"], gbp["tax"], gbp["total"], gbp["documents"]) == (D("300"), D("60"), D("360"), 1)
    assert eur["total"] == sum((row["total"] for row in table.rows if row["currency"] == "EUR"), D(0))


def test_invoice_register_filters(march, people, customers):
    paid = finance.invoice_register(people["finance"], **MARCH, status=Invoice.Status.PAID)
    assert _rows(paid, "number") == [("INV-5",)]
    notes = finance.invoice_register(people["finance"], **MARCH, status=finance.CREDIT_NOTE, currency="EUR")
    assert _rows(notes, "number") == [("CN-2",), ("CN-1",)]
    initech = finance.invoice_register(people["finance"], **MARCH, customer=customers["initech"])
    assert _rows(initech, "number") == [("INV-3",)]


def test_invoice_register_of_a_csm_holds_their_customers_only(march, people):
    table = finance.invoice_register(people["csm"], **MARCH)
    assert {row["customer"] for row in table.rows} == {"Acme"}
    assert [(row["currency"], row["total"]) for row in table.totals] == [("EUR", D("175") - 96 - 35 + 1230)]


TAX_KEYS = ("currency", "rate", "exemption", "invoiced_base", "invoiced_tax", "credited_base", "credited_tax",
            "base", "tax")  # fmt: skip


def test_tax_report_per_rate_and_exemption(march, people):
    table = finance.tax_report(people["finance"], **MARCH)
    # 20 %: INV-1's 100 and INV-2's 1,000; CN-1 (35.00 on INV-1's 100 at 20 % and 50 at 10 %) comes off the
    # highest rate first, as the ledger posts it: all of it on the 20 % line (30.00 + 5.00 as stored, a cent
    # rule away from the 29.17 + 5.83 issued today); CN-2 credits INV-0's 80 + 16 in full.
    assert _rows(table, *TAX_KEYS) == [
        ("EUR", D("0.2"), "", D("1100"), D("220"), D("110"), D("21"), D("990"), D("199")),
        ("EUR", D("0.1"), "", D("50"), D("5"), D(0), D(0), D("50"), D("5")),
        ("EUR", D(0), finance.DISBURSEMENT_LABEL, D("30"), D(0), D(0), D(0), D("30"), D(0)),
        ("EUR", D(0), "Exempt: Intra-EU reverse charge", D("200"), D(0), D(0), D(0), D("200"), D(0)),
        ("GBP", D("0.2"), "", D("300"), D("60"), D(0), D(0), D("300"), D("60")),
    ]
    eur = _by(table, "currency", "EUR")
    assert (eur["base"], eur["tax"]) == (D("1270"), D("204"))  # what the register says was invoiced, net and tax


def test_tax_report_of_one_currency_and_customer(march, people, customers):
    table = finance.tax_report(people["finance"], **MARCH, customer=customers["globex"])
    assert _rows(table, "currency", "base", "tax") == [("GBP", D("300"), D("60"))]
    assert finance.tax_report(people["finance"], **MARCH, currency="USD").rows == []


REVENUE_KEYS = ("month", "category", "service", "currency", "invoiced", "credited", "revenue")


def test_revenue_by_month_and_service(march, people):
    table = finance.revenue_by_service(people["finance"], start=date(2026, 1, 1), end=date(2026, 4, 30))
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    # February: INV-0 (80 KYC, credited in full by CN-2) and INV-1 (100 KYC + 50 AML; CN-1's 30 on the KYC line,
    # the highest rate's).
    # March: the order invoice issued on 31 Mar; Initech's 200 and INV-4's 70 (issued in April, bills March).
    assert _rows(table, *REVENUE_KEYS) == [
        (feb, "AML", "AML screening", "EUR", D("50"), D(0), D("50")),
        (feb, "KYC", "KYC check", "EUR", D("180"), D("110"), D("70")),
        (mar, "KYC", "KYC check", "EUR", D("270"), D(0), D("270")),
        (mar, "Other", "Disbursement (no tax)", "EUR", D("30"), D(0), D("30")),
        (mar, "Other", "Order fee", "EUR", D("1000"), D(0), D("1000")),
        (mar, "AML", "AML screening", "GBP", D("300"), D(0), D("300")),
    ]
    eur, gbp = table.totals
    assert (eur["invoiced"], eur["credited"], eur["revenue"]) == (D("1530"), D("110"), D("1420"))
    assert gbp["revenue"] == D("300")


def test_revenue_for_every_customer_reads_the_kept_revenue_and_agrees_with_each_customers_lines(
    march, people, customers
):
    year = {"start": date(2026, 1, 1), "end": date(2026, 4, 30)}
    added: dict[tuple, Decimal] = defaultdict(Decimal)
    for customer in customers.values():  # one customer: read from its invoice lines
        for row in finance.revenue_by_service(people["finance"], **year, customer=customer).rows:
            for figure in ("invoiced", "credited"):
                added[row["month"], row["service"], row["currency"], figure] += row[figure]
    every = finance.revenue_by_service(people["finance"], **year).rows
    assert {
        (row["month"], row["service"], row["currency"], figure): row[figure]
        for row in every
        for figure in ("invoiced", "credited")
    } == added

    ServiceRevenue.objects.all().delete()  # the kept figures, not the lines, are what every customer's report reads
    assert finance.revenue_by_service(people["finance"], **year).rows == []


def test_revenue_by_category_for_one_month(march, people):
    table = finance.revenue_by_service(
        people["finance"], start=date(2026, 3, 5), end=date(2026, 3, 20), group=finance.BY_CATEGORY, currency="EUR"
    )
    assert _rows(table, "category", "revenue") == [("KYC", D("270")), ("Other", D("1030"))]
    assert "service" not in [column.key for column in table.columns]


@pytest.fixture
def payments(customers):
    acme, globex = customers["acme"], customers["globex"]
    make_payment(acme, "PAY-0", "999.00", received="2026-02-28 23:59:59")
    make_payment(acme, "PAY-1", "500.00", received="2026-03-01 00:00:00", unallocated="100.00")
    make_payment(acme, "PAY-2", "250.00", received="2026-03-31 23:59:59", method="card")
    make_payment(acme, "PAY-3", "777.00", received="2026-04-01 00:00:00")
    make_payment(globex, "PAY-G", "400.00", received="2026-03-15 10:00")
    make_refund(acme, "REF-1", "60.00", paid="2026-03-10 10:00")


def test_payments_register_counts_refunds_negative(payments, people):
    table = finance.payments_register(people["finance"], **MARCH)
    assert _rows(table, "reference", "kind", "method", "currency", "amount", "unallocated") == [
        ("PAY-1", "Payment", "Bank transfer", "EUR", D("500"), D("100")),
        ("REF-1", "Refund", "Bank transfer", "EUR", D("-60"), None),
        ("PAY-G", "Payment", "Bank transfer", "GBP", D("400"), D(0)),
        ("PAY-2", "Payment", "Card", "EUR", D("250"), D(0)),
    ]
    eur, gbp = table.totals
    assert (eur["amount"], eur["unallocated"], eur["kind"]) == (D("690"), D("100"), "3 entries")
    assert gbp["amount"] == D("400")
    refunds = finance.payments_register(people["finance"], **MARCH, kind=finance.REFUND)
    assert _rows(refunds, "reference") == [("REF-1",)]
    assert _rows(finance.payments_register(people["csm"], **MARCH), "reference") == [
        ("PAY-1",),
        ("REF-1",),
        ("PAY-2",),
    ]


def test_each_report_takes_a_constant_number_of_statements(
    march, payments, aging, people, customers, django_assert_max_num_queries
):
    for n in range(20):
        make_invoice(customers["acme"], f"MORE-{n}", issued="2026-03-02 10:00", lines=[("10", "0.2", None, S.MANUAL)])
        make_credit_note(Invoice.objects.get(number=f"MORE-{n}"), f"CN-MORE-{n}", issued="2026-03-03 10:00",
                         subtotal="1.00", tax="0.20")  # fmt: skip
    user = people["csm"]  # scoping adds its own look-ups (the user's roles)
    with django_assert_max_num_queries(4):
        finance.aged_receivables(user, as_of=TODAY)
    with django_assert_max_num_queries(4):
        finance.aged_receivables(user, as_of=date(2026, 3, 1))
    with django_assert_max_num_queries(6):
        table = finance.invoice_register(user, **MARCH)
        table.rows[:50]
    with django_assert_max_num_queries(6):
        table = finance.payments_register(user, **MARCH)
        table.rows[:50]
    with django_assert_max_num_queries(7):  # one customer's lines, their notes and the notes' invoice lines
        finance.revenue_by_service(user, start=date(2026, 1, 1), end=date(2026, 4, 30))
    with django_assert_max_num_queries(4):  # every customer: the revenue kept by month and service
        finance.revenue_by_service(people["finance"], start=date(2026, 1, 1), end=date(2026, 4, 30))
    with django_assert_max_num_queries(6):
        finance.tax_report(user, **MARCH)
