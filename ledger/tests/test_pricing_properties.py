"""Properties of tiered, volume and package invoices over random tier tables and usage (hypothesis): the lines add up
to the invoice, and a month's usage billed as one record or split into many gives the same invoice."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import services as catalog_services
from catalog.models import PricingModel
from catalog.tests.factories import CustomerFactory, ServiceFactory
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft
from usage.services import usage_import_events
from usage.tests.test_rating_models import falling_tier_tables

OCTOBER = date(2026, 10, 1)


@st.composite
def pricing(draw):
    model = draw(st.sampled_from([PricingModel.GRADUATED, PricingModel.VOLUME, PricingModel.PACKAGE]))
    terms = {"pricing_model": model, "included_quantity": D(draw(st.integers(0, 2_000)))}
    if model == PricingModel.PACKAGE:
        terms |= {"package_size": D(draw(st.integers(1, 5_000))), "package_price": D(draw(st.integers(0, 10**5))) / 100}
    else:
        tiers = draw(falling_tier_tables())
        fees = draw(st.lists(st.integers(0, 5_000), min_size=len(tiers), max_size=len(tiers)))
        terms["tiers"] = [
            {"up_to": tier.up_to, "unit_price": tier.unit_price, "flat_fee": D(fee) / 100}
            for tier, fee in zip(tiers, fees, strict=True)
        ]
    return terms


# Quantities with up to three decimals, split into 1 to 12 records on different days.
splits = st.lists(st.integers(1, 5 * 10**7), min_size=1, max_size=12).map(lambda parts: [D(p) / 1000 for p in parts])


def billed(service, terms, quantities, tax_rate):
    customer = CustomerFactory()
    catalog_services.price_agreement_create(
        actor=None, customer=customer, service=service, valid_from=date(2026, 1, 1), **terms
    )
    billing_config_update(actor=None, customer=customer, tax_rate=tax_rate, send_zero_invoices=True)
    usage_import_events(
        actor=None,
        events=[
            {
                "serviceName": service.code,
                "clientId": customer.client_id,
                "quantity": str(quantity),
                "serviceTime": f"2026-10-{1 + index * 2:02d}T10:00:00Z",
            }
            for index, quantity in enumerate(quantities)
        ],
        received_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    return invoice_create_draft(actor=None, customer=customer, period=OCTOBER)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(terms=pricing(), parts=splits, tax=st.sampled_from([D(0), D("0.07"), D("0.2"), D("0.19")]))
def test_split_or_whole_usage_bills_the_same_and_the_lines_add_up(terms, parts, tax):
    service = ServiceFactory()

    split = billed(service, terms, parts, tax)
    whole = billed(service, terms, [sum(parts, D(0))], tax)

    def lines(invoice):
        return [(i.description, i.quantity, i.unit_price, i.amount, i.tax_amount) for i in invoice.items.all()]

    assert lines(split) == lines(whole)
    assert (split.subtotal, split.tax, split.total) == (whole.subtotal, whole.tax, whole.total)
    items = list(split.items.all())
    assert split.subtotal == sum((item.amount for item in items), D(0))
    assert split.tax == sum((item.tax_amount for item in items), D(0))
    assert split.total == split.subtotal + split.tax
