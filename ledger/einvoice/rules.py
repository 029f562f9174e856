"""The checks a generated e-invoice passes before it is stored or sent, in either syntax.

Each syntax reads its XML back into a `Reading` (ubl.read, cii.read) and `problems` checks the EN 16931 rules
that decide whether a document is whole: mandatory terms, the sums (BR-CO-10 to BR-CO-17), the VAT breakdown per
category and rate (BR-S-08 and its siblings), the VAT identifiers each category needs, and O never beside another
category. Beside them the XML schema (schema.py). The official validator (tests/einvoice/en16931/) checks every
rule in the tests; these run at issue, so a broken document is never stored or sent.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from billing_project.money import round_amount

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class TaxGroup:
    category: str
    percent: str  # as written; "" when the document gives none (category O)
    taxable: Decimal
    tax: Decimal
    reason: str  # the exemption reason or its code


@dataclass
class Reading:
    """What the checks need of a document, read back from its XML."""

    mandatory: dict[str, tuple[str, str]]  # rule -> (the term it requires, its text: "" when missing)
    lines: list[tuple[str, str, Decimal]]  # (category, percent, net amount) per line
    net: Decimal
    tax_exclusive: Decimal
    tax_inclusive: Decimal
    tax: Decimal
    prepaid: Decimal
    payable: Decimal
    groups: list[TaxGroup] = field(default_factory=list)
    seller_vat: str = ""
    buyer_vat: str = ""
    buyer_registration: str = ""


def decimal(text: str | None) -> Decimal:
    text = (text or "").strip()
    return Decimal(text) if text else ZERO


def problems(reading: Reading) -> list[str]:
    """The rules the document breaks, each as "BR-CO-10: what is wrong"."""
    found = [f"{rule}: {name} is missing" for rule, (name, text) in reading.mandatory.items() if not text.strip()]
    if not reading.lines:
        found.append("BR-16: the document has no line")
    line_sum = sum((amount for *_, amount in reading.lines), ZERO)
    if line_sum != reading.net:
        found.append(f"BR-CO-10: the lines add up to {line_sum}, the document says {reading.net}")
    if reading.tax_exclusive != reading.net:
        found.append(f"BR-CO-13: the total without VAT {reading.tax_exclusive} is not the lines' {reading.net}")
    if reading.tax_inclusive != reading.tax_exclusive + reading.tax:
        found.append(
            f"BR-CO-15: the total with VAT {reading.tax_inclusive} is not {reading.tax_exclusive} + {reading.tax}"
        )
    if reading.payable != reading.tax_inclusive - reading.prepaid:
        found.append(f"BR-CO-16: the amount due {reading.payable} is not the total with VAT less what was paid")

    by_line: dict[tuple[str, str], Decimal] = {}
    for category, percent, amount in reading.lines:
        by_line[(category, percent)] = by_line.get((category, percent), ZERO) + amount
    if sum((group.tax for group in reading.groups), ZERO) != reading.tax:
        found.append(f"BR-CO-14: the VAT breakdown does not add up to the VAT total {reading.tax}")
    breakdown = set()
    for group in reading.groups:
        key = (group.category, group.percent)
        breakdown.add(key)
        if group.taxable != by_line.get(key, ZERO):
            found.append(
                f"BR-{group.category}-08: the {group.category} {group.percent or '-'} % breakdown's taxable amount "
                f"{group.taxable} is not its lines' {by_line.get(key, ZERO)}"
            )
        expected = round_amount(group.taxable * Decimal(group.percent or 0) / 100)
        if abs(group.tax - expected) >= 1:
            found.append(f"BR-CO-17: the {group.category} {group.percent or '-'} % tax {group.tax} is not {expected}")
        if group.category in {"E", "AE", "K", "G", "O"} and not group.reason:
            found.append(f"BR-{group.category}-10: the {group.category} breakdown gives no exemption reason")
    for category, percent in sorted(set(by_line) - breakdown):
        found.append(f"BR-CO-18: the lines of category {category} at {percent or '-'} % have no VAT breakdown")
    categories = {category for category, _ in by_line}
    if "O" in categories and len(categories) > 1:
        found.append("BR-O-11: category O cannot be beside another category on one document")
    if categories & {"S", "Z", "E", "AE", "K", "G"} and not reading.seller_vat:
        found.append("BR-S-02: the seller's VAT identifier is missing")
    if "AE" in categories and not (reading.buyer_vat or reading.buyer_registration):
        found.append("BR-AE-02: reverse charge needs the buyer's VAT identifier")
    if "K" in categories and not reading.buyer_vat:
        found.append("BR-IC-02: an intra-community supply needs the buyer's VAT identifier")
    return found
