"""The price calculator: what a quantity of one service would cost a customer in one billing month, rated by the
agreement in force exactly as month-end rates it (usage.rating) and taxed as its invoice would be. Writes nothing.

The quote takes the quantity as the month's only usage of the service, all at the price of the latest agreement
overlapping the month. A minimum commitment is the customer's over all its services, so the quote names it
rather than adding its top-up.
"""

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_project.errors import DomainError
from billing_project.formatting import quantity as format_quantity
from catalog.models import Customer, MinimumCommitment, PriceAgreement, PricingModel, Service
from ledger.models import BillingConfig
from ledger.services.invoices import usage_lines
from ledger.services.month_end import InvoicePreview, invoice_preview
from ledger.vat import vat_treatment
from usage.rating import Tier, rate_usage, tiered_rating
from usage.report_selectors import UsageReportRow


@dataclass(frozen=True)
class PriceQuote:
    customer: Customer
    service: Service
    period: date
    quantity: Decimal
    agreement: PriceAgreement
    invoice: InvoicePreview  # the lines, their tax and the totals
    commitment: MinimumCommitment | None  # in force in the month, over all the customer's services


def _rating(agreement: PriceAgreement, quantity: Decimal):
    if agreement.pricing_model == PricingModel.PER_UNIT:
        return rate_usage(
            usage=[(quantity, agreement.unit_price)] if quantity else [],
            included_quantity=agreement.included_quantity,
            monthly_fee=agreement.monthly_fee,
        )
    return tiered_rating(
        pricing_model=agreement.pricing_model,
        quantity=quantity,
        included_quantity=agreement.included_quantity,
        monthly_fee=agreement.monthly_fee,
        tiers=[Tier(tier.up_to, tier.unit_price, tier.flat_fee) for tier in agreement.tiers.all()],
        package_size=agreement.package_size,
        package_price=agreement.package_price,
    )


def price_quote(*, customer: Customer, service: Service, period: date, quantity: Decimal) -> PriceQuote:
    """The lines and totals `quantity` units of `service` would bill `customer` for the month of `period`."""
    if quantity < 0:
        raise DomainError("The quantity cannot be negative.", fields={"quantity": ["Must be 0 or more."]})
    first = period.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    in_force = PriceAgreement.objects.filter(customer=customer, service=service, valid_from__lte=last)
    agreement = in_force.exclude(valid_to__lt=first).order_by("valid_from").last()
    if agreement is None:
        raise DomainError(
            f"{customer.name} has no price for {service.name} in {first:%B %Y}.",
            code="no_agreement",
            fields={"service": [f"No agreement in force in {first:%B %Y}."]},
        )
    row = UsageReportRow(
        customer_id=customer.pk,
        customer_name=customer.name,
        client_id=customer.client_id,
        currency=customer.currency,
        service_id=service.pk,
        service_code=service.code,
        service_name=service.name,
        period=first,
        record_count=1 if quantity else 0,
        included_quantity=agreement.included_quantity,
        monthly_fee=agreement.monthly_fee,
        rating=_rating(agreement, quantity),
    )
    config = BillingConfig.objects.filter(customer=customer).first() or BillingConfig(customer=customer)
    invoice = invoice_preview(customer, usage_lines([row]), vat_treatment(config, customer))
    if problem := invoice.problem:
        raise DomainError(
            f"No invoice could bill this: {problem}.", code="beyond_bounds", fields={"quantity": [problem]}
        )
    commitments = MinimumCommitment.objects.filter(customer=customer, valid_from__lte=last).exclude(valid_to__lt=first)
    return PriceQuote(
        customer=customer,
        service=service,
        period=first,
        quantity=quantity,
        agreement=agreement,
        invoice=invoice,
        commitment=commitments.order_by("valid_from").last(),
    )


def quote_summary(quote: PriceQuote) -> str:
    """One sentence for the page and the API: what was quoted."""
    return (
        f"{format_quantity(quote.quantity)} × {quote.service.name} for {quote.customer.name} "
        f"in {quote.period:%B %Y}, under the {quote.agreement.get_pricing_model_display().lower()} agreement"
    )
