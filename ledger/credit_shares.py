"""What a credit note takes from each line of its invoice, net and tax, to the cent (DESIGN.md, "Invoices").

One rule for the ledger's posting (ledger.services.invoices.credit_note_issue: revenue per service category and
the tax) and for the credit note's e-invoice (ledger.einvoice.terms: its lines, VAT categories and breakdown):

- a first full note takes every line whole;
- a partial note of an amount (tax included) comes off the highest tax rate's lines first, each note after the
  ones before it; a rate's part is split into net and tax at that rate, net = part / (1 + rate) rounded once, and
  the net is spread over the rate's lines in proportion to their amounts;
- a full note after partial ones takes what they left of each line, and of each rate's tax.

Pure functions of the invoice's lines and its earlier notes' totals: the notes of an issued invoice are replayed
in the order they were issued, so the same shares come out whenever they are asked for.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing_project.money import round_amount
from ledger.models import InvoiceItem

ZERO = Decimal("0.00")


@dataclass(slots=True)
class Share:
    """The part of one invoice line a credit note takes back."""

    item: InvoiceItem
    amount: Decimal
    tax_amount: Decimal

    @property
    def service_id(self) -> int | None:
        return self.item.service_id


def _spread(items: Sequence[InvoiceItem], net: Decimal) -> list[Share]:
    """`net` spread over the lines in proportion to their amounts, the last line taking the rounding."""
    gross = sum((item.amount for item in items), ZERO)
    shares, given = [], ZERO
    for position, item in enumerate(items):
        last = position == len(items) - 1
        share = net - given if last or not gross else round_amount(net * item.amount / gross)
        given += share
        shares.append(Share(item, share, ZERO))
    return shares


def _by_rate(items: Sequence[InvoiceItem]) -> list[tuple[Decimal, list[InvoiceItem]]]:
    """The lines grouped by tax rate, highest rate first."""
    groups: dict[Decimal, list[InvoiceItem]] = defaultdict(list)
    for item in items:
        groups[item.tax_rate].append(item)
    return sorted(groups.items(), key=lambda group: group[0], reverse=True)


def partial_shares(items: Sequence[InvoiceItem], *, amount: Decimal, credited_before: Decimal) -> list[Share]:
    """A partial note of `amount` (tax included) after notes of `credited_before`: highest rate first."""
    shares, skip, left = [], credited_before, amount
    groups = _by_rate(items)
    for position, (rate, rate_items) in enumerate(groups):
        rate_gross = sum((item.amount + item.tax_amount for item in rate_items), ZERO)
        taken = min(skip, rate_gross)
        skip -= taken
        part = left if position == len(groups) - 1 else min(left, rate_gross - taken)
        if part <= 0:
            continue
        left -= part
        net = round_amount(part / (1 + rate))
        rate_shares = _spread(rate_items, net)
        rate_shares[-1].tax_amount = part - net
        shares.extend(rate_shares)
    return shares


def rest_shares(items: Sequence[InvoiceItem], *, earlier_totals: Sequence[Decimal]) -> list[Share]:
    """A full note after partial notes of `earlier_totals` (in the order they were issued): what they left of
    each line, and of each rate's tax (on the rate's last line), in the invoice's order of lines."""
    taken_net: dict[int, Decimal] = defaultdict(Decimal)
    taken_tax: dict[Decimal, Decimal] = defaultdict(Decimal)
    credited = ZERO
    for total in earlier_totals:
        for share in partial_shares(items, amount=total, credited_before=credited):
            taken_net[id(share.item)] += share.amount
            taken_tax[share.item.tax_rate] += share.tax_amount
        credited += total
    shares = {id(item): Share(item, item.amount - taken_net[id(item)], ZERO) for item in items}
    for rate, rate_items in _by_rate(items):
        left = sum((item.tax_amount for item in rate_items), ZERO) - taken_tax[rate]
        shares[id(rate_items[-1])].tax_amount = left
    return [shares[id(item)] for item in items]


def reconcile(shares: list[Share], *, subtotal: Decimal, tax: Decimal) -> list[Share]:
    """The shares made to add up to the note's stored subtotal and tax: a note issued under an earlier rule of
    splitting (before credit came off the highest rate first) may be a cent away from its replay. Any difference
    goes to the largest share, and any tax difference to the largest taxed one."""
    if not shares:
        return shares
    difference = subtotal - sum((share.amount for share in shares), ZERO)
    if difference:
        max(shares, key=lambda share: share.amount).amount += difference
    difference = tax - sum((share.tax_amount for share in shares), ZERO)
    if difference:
        taxed = [share for share in shares if share.item.tax_rate > 0] or shares
        max(taxed, key=lambda share: share.amount).tax_amount += difference
    return shares


def credit_shares(
    items: Sequence[InvoiceItem], *, amount: Decimal, full: bool, earlier_totals: Sequence[Decimal]
) -> list[Share]:
    """The shares of a note of `amount` (tax included) on an invoice with these lines, after notes of
    `earlier_totals` in the order they were issued."""
    if full and not earlier_totals:
        return [Share(item, item.amount, item.tax_amount) for item in items]
    if full:
        return rest_shares(items, earlier_totals=earlier_totals)
    return partial_shares(items, amount=amount, credited_before=sum(earlier_totals, ZERO))


def replayed_shares(items: Sequence[InvoiceItem], notes: Sequence) -> list[list[Share]]:
    """The shares of each of an invoice's credit notes (each with total, full, subtotal and tax), given in the order
    they were issued, made to add up to what each note stored."""
    replayed, earlier = [], []
    for note in notes:
        shares = credit_shares(items, amount=note.total, full=note.full, earlier_totals=earlier)
        replayed.append(reconcile(shares, subtotal=note.subtotal, tax=note.tax))
        earlier.append(note.total)
    return replayed
