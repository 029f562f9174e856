"""The price calculator (admin page and API), and one check that the month-end preview, the invoice, the monthly
usage report and the calculator agree for every pricing model."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from accounts.roles import Role
from catalog import services as catalog_services
from catalog.models import PricingModel
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.quotes import price_quote
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft
from ledger.services.month_end import month_end_preview
from usage.report_selectors import usage_month_report

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
TIERS = [
    {"up_to": D(1_000), "unit_price": D("0.10"), "flat_fee": D("2.00")},
    {"up_to": D(5_000), "unit_price": D("0.07")},
    {"up_to": None, "unit_price": D("0.045"), "flat_fee": D("9.99")},
]
MODELS = {
    "per_unit": {"unit_price": D("0.085")},
    "graduated": {"pricing_model": PricingModel.GRADUATED, "tiers": TIERS},
    "volume": {"pricing_model": PricingModel.VOLUME, "tiers": TIERS},
    "package": {"pricing_model": PricingModel.PACKAGE, "package_size": D(250), "package_price": D("19.90")},
}


@pytest.fixture
def api_call():
    return ServiceFactory(code="api_call", name="API call")


def priced_customer(service, terms, **customer):
    customer = CustomerFactory(**customer)
    catalog_services.price_agreement_create(
        actor=None,
        customer=customer,
        service=service,
        valid_from=date(2026, 1, 1),
        included_quantity=D(300),
        monthly_fee=D("15.00"),
        **terms,
    )
    billing_config_update(actor=None, customer=customer, tax_rate=D("0.19"))
    return customer


@pytest.mark.parametrize("commitment", [D("50.00"), D("2500.00")])
@pytest.mark.parametrize("model", MODELS)
def test_preview_invoice_report_and_calculator_agree(model, commitment, api_call, import_usage):
    customer = priced_customer(api_call, MODELS[model])
    catalog_services.minimum_commitment_create(actor=None, customer=customer, amount=commitment, valid_from=OCTOBER)
    events = [(1_234.5, "2026-10-02T08:00:00Z"), (3_000, "2026-10-12T08:00:00Z"), (2_765.25, "2026-10-30T22:00:00Z")]
    import_usage(customer, api_call, events)
    used = sum((D(str(quantity)) for quantity, _ in events), D(0))

    (preview,) = month_end_preview(period=OCTOBER, customer_ids=[customer.pk]).invoices
    invoice = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    rows = usage_month_report(year=2026, month=10, customer_ids=[customer.pk])
    quote = price_quote(customer=customer, service=api_call, period=OCTOBER, quantity=used)

    invoiced = [(item.description, item.quantity, item.amount, item.tax_amount) for item in invoice.items.all()]
    previewed = [(item.description, item.quantity, item.amount, item.tax_amount) for item in preview.items]
    quoted = [(item.description, item.quantity, item.amount, item.tax_amount) for item in quote.invoice.items]
    assert invoiced == previewed
    assert sum(row.amount for row in rows) == invoice.subtotal == preview.subtotal
    assert rows[0].quantity == used
    # The calculator quotes the service alone; the commitment's top-up, when there is one, is the invoice's last line.
    top_ups = [line for line in invoiced if line[0] == "Minimum commitment top-up"]
    assert invoiced == quoted + top_ups
    assert quote.invoice.subtotal + sum(line[2] for line in top_ups) == invoice.subtotal
    assert invoice.subtotal == max(commitment, quote.invoice.subtotal)
    assert (len(rows), bool(top_ups)) == ((2, True) if commitment > quote.invoice.subtotal else (1, False))


def test_calculator_page_shows_the_lines_and_totals(client, api_call, make_user):
    customer = priced_customer(api_call, MODELS["graduated"], name="Acme Ltd", currency="EUR")
    sales = make_user(Role.SALES)
    client.force_login(sales)

    response = client.get(
        reverse("admin:ledger_price_calculator"),
        {"customer": customer.pk, "service": api_call.pk, "period": "2026-10", "quantity": "6300"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "6,300 × API call for Acme Ltd in October 2026, under the graduated tiers agreement" in html
    # 300 free, then 1,000 at 0.10 + 2.00, 4,000 at 0.07, 1,000 at 0.045 + 9.99, and the 15.00 fee.
    assert "API call — 1 to 1,000 at 0.10" in html
    assert "API call — 1,001 to 5,000 at 0.07" in html
    assert "API call — 5,001 to 6,000 at 0.045" in html
    quote = response.context["quote"]
    assert quote.invoice.subtotal == D("15.00") + D("100.00") + D("2.00") + D("280.00") + D("45.00") + D("9.99")
    assert "EUR\u00a0451.99" in html


def test_calculator_says_when_there_is_no_price(client, api_call, finance_user):
    customer = priced_customer(api_call, MODELS["per_unit"])
    other = ServiceFactory(name="Unpriced service")
    client.force_login(finance_user)

    response = client.get(
        reverse("admin:ledger_price_calculator"),
        {"customer": customer.pk, "service": other.pk, "period": "2026-10", "quantity": "10"},
    )

    assert response.status_code == 200
    assert f"{customer.name} has no price for Unpriced service in October 2026." in response.content.decode()


def test_calculator_api_answers_the_same_as_the_page(client_for, api_call, finance_user):
    customer = priced_customer(api_call, MODELS["package"])

    response = client_for(finance_user).get(
        "/api/price-quote", {"customer": customer.pk, "service": "api_call", "month": "2026-10", "quantity": "800"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    # 300 free, 500 chargeable: 2 packages of 250 at 19.90, and the 15.00 fee.
    assert [(line["description"], line["amount"]) for line in body["lines"]] == [
        ("API call — monthly fee", "15.00"),
        ("API call — included units", "0.00"),
        ("API call — 2 packages of 250 at 19.90", "39.80"),
    ]
    assert (body["subtotal"], body["tax"], body["total"], body["pricing_model"]) == (
        "54.80",
        "10.41",
        "65.21",
        "package",
    )


def test_calculator_api_refuses_a_customer_the_caller_cannot_see(client_for, api_call, make_user):
    customer = priced_customer(api_call, MODELS["per_unit"])
    csm = make_user(Role.CUSTOMER_SUCCESS)

    response = client_for(csm).get(
        "/api/price-quote", {"customer": customer.pk, "service": "api_call", "month": "2026-10", "quantity": "1"}
    )

    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]


def test_a_quote_no_invoice_could_hold_is_refused(api_call, client_for, finance_user):
    customer = CustomerFactory()
    catalog_services.price_agreement_create(
        actor=None, customer=customer, service=api_call, valid_from=date(2026, 1, 1), unit_price=D("900000000")
    )

    response = client_for(finance_user).get(
        "/api/price-quote", {"customer": customer.pk, "service": "api_call", "month": "2026-10", "quantity": "100"}
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "beyond_bounds"
    assert "quantity" in response.json()["error"]["fields"]
