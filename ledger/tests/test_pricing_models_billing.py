"""Graduated, volume and package agreements and minimum commitments on real invoices: imported usage, month-end,
a draft made by hand and its regeneration, with the line descriptions a customer reads."""

from datetime import date
from decimal import Decimal as D

import pytest

from catalog import services as catalog_services
from catalog.models import PricingModel
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.models import Invoice, InvoiceItem
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft, invoice_regenerate

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
DESIGN_TIERS = [
    {"up_to": D(10_000), "unit_price": D("0.010")},
    {"up_to": D(100_000), "unit_price": D("0.008")},
    {"up_to": None, "unit_price": D("0.005")},
]


@pytest.fixture
def api_call():
    return ServiceFactory(code="api_call", name="API call")


def customer_with(service, *, tax="0.2", **terms):
    customer = CustomerFactory()
    catalog_services.price_agreement_create(
        actor=None, customer=customer, service=service, valid_from=date(2026, 1, 1), **terms
    )
    billing_config_update(actor=None, customer=customer, tax_rate=D(tax))
    return customer


def lines(invoice) -> list[tuple]:
    return [
        (item.description, item.quantity, item.amount, item.tax_amount) for item in invoice.items.order_by("position")
    ]


def test_graduated_invoice_has_a_line_per_tier_reached(api_call, import_usage):
    customer = customer_with(api_call, pricing_model=PricingModel.GRADUATED, tiers=DESIGN_TIERS)
    import_usage(customer, api_call, [(100_000, "2026-10-03T10:00:00Z"), (50_000, "2026-10-20T10:00:00Z")])

    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    assert lines(invoice) == [
        ("API call — 1 to 10,000 at 0.01", D(10_000), D("100.00"), D("20.00")),
        ("API call — 10,001 to 100,000 at 0.008", D(90_000), D("720.00"), D("144.00")),
        ("API call — 100,001 to 150,000 at 0.005", D(50_000), D("250.00"), D("50.00")),
    ]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("1070.00"), D("214.00"), D("1284.00"))


def test_volume_and_package_invoices(api_call, import_usage):
    volume = customer_with(api_call, pricing_model=PricingModel.VOLUME, tiers=DESIGN_TIERS)
    package = customer_with(
        api_call,
        pricing_model=PricingModel.PACKAGE,
        package_size=D(1_000),
        package_price=D("5.00"),
        included_quantity=D(200),
    )
    import_usage(volume, api_call, [(150_000, "2026-10-03T10:00:00Z")])
    import_usage(package, api_call, [(1_350, "2026-10-03T10:00:00Z"), (1_000, "2026-10-09T10:00:00Z")])

    assert lines(invoice_create_draft(actor=None, customer=volume, period=OCTOBER)) == [
        ("API call — 150,000 at 0.005 (volume tier 3)", D(150_000), D("750.00"), D("150.00"))
    ]
    assert lines(invoice_create_draft(actor=None, customer=package, period=OCTOBER)) == [
        ("API call — included units", D(200), D("0.00"), D("0.00")),
        ("API call — 3 packages of 1,000 at 5.00", D(3), D("15.00"), D("3.00")),
    ]


def test_commitment_tops_up_the_months_lines_and_is_taxed(api_call, import_usage):
    other = ServiceFactory(code="kyc", name="KYC check")
    customer = customer_with(api_call, pricing_model=PricingModel.GRADUATED, tiers=DESIGN_TIERS)
    catalog_services.price_agreement_create(
        actor=None, customer=customer, service=other, unit_price=D("0.50"), valid_from=date(2026, 1, 1)
    )
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=D("500.00"), valid_from=date(2026, 1, 1)
    )
    import_usage(customer, api_call, [(39_875, "2026-10-03T10:00:00Z")])  # 100.00 + 239.00
    import_usage(customer, other, [(160, "2026-10-04T10:00:00Z")])  # 80.00: 419.00 in all

    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    top_up = invoice.items.get(source=InvoiceItem.Source.COMMITMENT)
    assert (top_up.description, top_up.amount, top_up.tax_amount) == (
        "Minimum commitment top-up",
        D("81.00"),
        D("16.20"),
    )
    assert invoice.subtotal == D("500.00")


def test_month_end_bills_a_commitment_with_no_usage(api_call, import_usage):
    customer = customer_with(api_call, pricing_model=PricingModel.GRADUATED, tiers=DESIGN_TIERS, tax="0")
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=D("250.00"), valid_from=date(2026, 10, 1), valid_to=date(2026, 10, 31)
    )

    month_end.month_end_run(actor=None, period=OCTOBER)

    invoice = Invoice.objects.get(customer=customer, period=OCTOBER)
    assert lines(invoice) == [("Minimum commitment top-up", D(1), D("250.00"), D("0.00"))]


def test_regenerating_a_draft_rates_the_top_up_again(api_call, import_usage):
    customer = customer_with(api_call, pricing_model=PricingModel.GRADUATED, tiers=DESIGN_TIERS, tax="0")
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=D("250.00"), valid_from=date(2026, 10, 1), valid_to=date(2026, 10, 31)
    )
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    assert lines(invoice) == [("Minimum commitment top-up", D(1), D("250.00"), D("0.00"))]

    import_usage(customer, api_call, [(5_000, "2026-10-03T10:00:00Z")])  # 50.00 of usage arrives late
    invoice_regenerate(actor=None, invoice=invoice)

    assert lines(invoice) == [
        ("API call — 1 to 5,000 at 0.01", D(5_000), D("50.00"), D("0.00")),
        ("Minimum commitment top-up", D(1), D("200.00"), D("0.00")),
    ]
    assert invoice.total == D("250.00")


def test_commitment_not_in_force_in_the_month_adds_nothing(api_call, import_usage):
    customer = customer_with(api_call, pricing_model=PricingModel.GRADUATED, tiers=DESIGN_TIERS)
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=D("500.00"), valid_from=date(2026, 11, 1)
    )
    import_usage(customer, api_call, [(100, "2026-10-03T10:00:00Z")])

    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)

    assert not invoice.items.filter(source=InvoiceItem.Source.COMMITMENT).exists()
    assert invoice.subtotal == D("1.00")
