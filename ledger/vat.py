"""The VAT category of an invoice line (EN 16931 BT-151), decided at draft time from the billing configuration.

The rate decides the tax, as before: a rate above zero is standard rated (S). A customer exempt from tax is E with
the configuration's reason (and VATEX code when given). A rate of zero is zero rated (Z), unless the configuration
names its category (AE, K, G or O), or the customer's data shows it:

- a customer with a VAT identifier in another country than the seller's: reverse charge (AE), the customer
  accounts for the VAT;
- a customer in another country with no VAT identifier: not subject to VAT here (O).

Disbursements (an order's base charge: a cost paid in the customer's name and passed on at cost) are outside the
taxable amount (Article 79(c) of Directive 2006/112/EC). EN 16931 forbids mixing category O with any other on one
invoice (BR-O-11 to BR-O-14), so a disbursement is expressed as exempt, E at 0 %, with the exemption reason code
VATEX-EU-79-C, beside the fee's category. When the whole invoice is already E or O, the disbursement joins that
category and its reason instead, so the invoice keeps one VAT breakdown for it (BR-E-08, BR-O-08).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from catalog.models import Customer


class VatCategory(models.TextChoices):
    """UNTDID 5305 codes EN 16931 allows (BT-151, BT-118)."""

    STANDARD = "S", "S — standard rate"
    ZERO = "Z", "Z — zero rated"
    EXEMPT = "E", "E — exempt"
    REVERSE_CHARGE = "AE", "AE — reverse charge"
    INTRA_COMMUNITY = "K", "K — intra-community supply"
    EXPORT = "G", "G — export outside the EU"
    NOT_SUBJECT = "O", "O — not subject to VAT"


# The categories a configuration with a rate of zero may name; S follows from a rate, E from the exemption.
ZERO_RATE_CATEGORIES = [
    (code, label) for code, label in VatCategory.choices if code not in {VatCategory.STANDARD, VatCategory.EXEMPT}
]

# The reason printed and sent for each category that needs one (BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
REASONS = {
    VatCategory.REVERSE_CHARGE: ("Reverse charge", "VATEX-EU-AE"),
    VatCategory.INTRA_COMMUNITY: ("Intra-community supply", "VATEX-EU-IC"),
    VatCategory.EXPORT: ("Export outside the EU", "VATEX-EU-G"),
    VatCategory.NOT_SUBJECT: ("Not subject to VAT", "VATEX-EU-O"),
}
# The VATEX exemption reason codes EN 16931 accepts (BT-121), as its validation artefacts list them.
EXEMPTION_CODES = frozenset(
    [
        "VATEX-EU-132",
        "VATEX-EU-132-1A",
        "VATEX-EU-132-1B",
        "VATEX-EU-132-1C",
        "VATEX-EU-132-1D",
        "VATEX-EU-132-1E",
        "VATEX-EU-132-1F",
        "VATEX-EU-132-1G",
        "VATEX-EU-132-1H",
        "VATEX-EU-132-1I",
        "VATEX-EU-132-1J",
        "VATEX-EU-132-1K",
        "VATEX-EU-132-1L",
        "VATEX-EU-132-1M",
        "VATEX-EU-132-1N",
        "VATEX-EU-132-1O",
        "VATEX-EU-132-1P",
        "VATEX-EU-132-1Q",
        "VATEX-EU-135-1",
        "VATEX-EU-143",
        "VATEX-EU-143-1A",
        "VATEX-EU-143-1B",
        "VATEX-EU-143-1C",
        "VATEX-EU-143-1D",
        "VATEX-EU-143-1E",
        "VATEX-EU-143-1F",
        "VATEX-EU-143-1FA",
        "VATEX-EU-143-1G",
        "VATEX-EU-143-1H",
        "VATEX-EU-143-1I",
        "VATEX-EU-143-1J",
        "VATEX-EU-143-1K",
        "VATEX-EU-143-1L",
        "VATEX-EU-144",
        "VATEX-EU-146-1E",
        "VATEX-EU-148",
        "VATEX-EU-148-A",
        "VATEX-EU-148-B",
        "VATEX-EU-148-C",
        "VATEX-EU-148-D",
        "VATEX-EU-148-E",
        "VATEX-EU-148-F",
        "VATEX-EU-148-G",
        "VATEX-EU-151",
        "VATEX-EU-151-1A",
        "VATEX-EU-151-1AA",
        "VATEX-EU-151-1B",
        "VATEX-EU-151-1C",
        "VATEX-EU-151-1D",
        "VATEX-EU-151-1E",
        "VATEX-EU-153",
        "VATEX-EU-159",
        "VATEX-EU-309",
        "VATEX-EU-79-C",
        "VATEX-EU-AE",
        "VATEX-EU-D",
        "VATEX-EU-F",
        "VATEX-EU-G",
        "VATEX-EU-I",
        "VATEX-EU-IC",
        "VATEX-EU-J",
        "VATEX-EU-O",
    ]
)


def validate_exemption_code(value: str) -> None:
    if value not in EXEMPTION_CODES:
        raise ValidationError(f"{value} is not a VATEX exemption reason code (e.g. VATEX-EU-132-1C).")


DISBURSEMENT_REASON = ("Disbursement: paid in the customer's name and passed on at cost", "VATEX-EU-79-C")


@dataclass(frozen=True, slots=True)
class VatTreatment:
    category: str
    rate: Decimal
    exemption_reason: str = ""
    exemption_code: str = ""

    def for_disbursement(self) -> "VatTreatment":
        if self.category in {VatCategory.EXEMPT, VatCategory.NOT_SUBJECT}:
            return self
        reason, code = DISBURSEMENT_REASON
        return VatTreatment(VatCategory.EXEMPT, Decimal(0), reason, code)


def derived_zero_category(customer: Customer) -> str:
    country = customer.country.code if customer.country else ""
    if not country or country == settings.SELLER["country"]:
        return VatCategory.ZERO
    return VatCategory.REVERSE_CHARGE if customer.vat_id else VatCategory.NOT_SUBJECT


def vat_treatment(config, customer: Customer) -> VatTreatment:
    """The treatment of the customer's ordinary lines under its billing configuration (ledger.BillingConfig)."""
    if config.tax_exempt:
        return VatTreatment(VatCategory.EXEMPT, Decimal(0), config.tax_exempt_reason, config.tax_exemption_code)
    if config.tax_rate > 0:
        return VatTreatment(VatCategory.STANDARD, config.tax_rate)
    category = config.vat_category or derived_zero_category(customer)
    reason, code = REASONS.get(category, ("", ""))
    return VatTreatment(category, Decimal(0), reason, code)
