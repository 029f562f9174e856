"""The revenue kept by month billed, currency and service stays equal to what the issued invoices' lines and their
credit notes make, issue after issue and note after note, and the rebuild makes it so again."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.management import call_command

from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice, InvoiceItem, ServiceRevenue
from ledger.services.billing import billing_config_update
from ledger.services.invoices import credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.revenue_totals import FIELDS, revenue_by_line

pytestmark = pytest.mark.django_db
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)


def kept() -> dict:
    return {
        (row.month, row.currency, row.service_id, row.source): {field: getattr(row, field) for field in FIELDS}
        for row in ServiceRevenue.objects.all()
    }


def issued(customer, period: date, lines: list[tuple]) -> Invoice:
    invoice = invoice_create_manual(
        actor=None,
        customer=customer,
        period=period,
        lines=[
            {"description": "Charge", "quantity": D(1), "unit_price": D(amount), "service": service}
            for amount, service in lines
        ],
    )
    return invoice_issue(actor=None, invoice=invoice, send=False)


def test_issues_and_credit_notes_add_to_the_month_billed_and_equal_the_lines():
    acme = CustomerFactory(currency="EUR")
    billing_config_update(actor=None, customer=acme, tax_rate=D("0.2"))
    kyc, aml = ServiceFactory(name="KYC check"), ServiceFactory(name="AML screening")
    invoice = issued(acme, OCTOBER, [("100.00", kyc), ("50.00", aml), ("30.00", None)])

    assert kept() == revenue_by_line(Invoice.objects.all())
    assert kept()[OCTOBER, "EUR", kyc.pk, ""]["invoiced"] == D("100.00")
    assert kept()[OCTOBER, "EUR", None, InvoiceItem.Source.MANUAL]["invoiced"] == D("30.00")

    credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("36.00"))  # 30.00 net at 20 %
    assert kept() == revenue_by_line(Invoice.objects.all())
    credited = {key: figures["credited"] for key, figures in kept().items()}
    assert credited == {
        (OCTOBER, "EUR", kyc.pk, ""): D("16.67"),  # 30.00 over 100 : 50 : 30
        (OCTOBER, "EUR", aml.pk, ""): D("8.33"),
        (OCTOBER, "EUR", None, InvoiceItem.Source.MANUAL): D("5.00"),
    }

    credit_note_issue(actor=None, invoice=invoice, reason="Cancelled")  # the rest, in full
    assert kept() == revenue_by_line(Invoice.objects.all())
    assert all(figures["invoiced"] == figures["credited"] for figures in kept().values())

    globex = CustomerFactory(currency="GBP")
    issued(globex, NOVEMBER, [("70.00", kyc)])
    assert kept() == revenue_by_line(Invoice.objects.all())
    assert kept()[NOVEMBER, "GBP", kyc.pk, ""] == {"invoiced": D("70.00"), "credited": D("0.00")}


def test_the_rebuild_makes_the_kept_revenue_equal_to_the_lines_again():
    acme = CustomerFactory(currency="EUR")
    kyc = ServiceFactory()
    invoice = issued(acme, OCTOBER, [("100.00", kyc), ("20.00", None)])
    credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("12.00"))
    expected = kept()

    ServiceRevenue.objects.filter(service=kyc).update(invoiced=D("1.00"))
    ServiceRevenue.objects.filter(service__isnull=True).delete()
    assert kept() != expected

    call_command("rebuild_ledger_monthly_totals")
    assert kept() == expected == revenue_by_line(Invoice.objects.all())
