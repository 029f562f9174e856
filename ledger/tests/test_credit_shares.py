"""What a credit note takes from each invoice line (ledger/credit_shares.py): the one rule the ledger's posting and
the credit note's e-invoice both follow."""

from decimal import Decimal as D

from ledger.credit_shares import credit_shares, reconcile
from ledger.models import InvoiceItem


def item(amount: str, rate: str) -> InvoiceItem:
    amount = D(amount)
    return InvoiceItem(amount=amount, tax_rate=D(rate), tax_amount=(amount * D(rate)).quantize(D("0.01")))


def order_lines() -> list[InvoiceItem]:
    """An order invoice: fee 1,000.00 at 20 % and a disbursement of 120.00 untaxed, 1,320.00."""
    return [item("1000.00", "0.2"), item("120.00", "0")]


def test_a_partial_note_comes_off_the_highest_rate_first():
    shares = credit_shares(order_lines(), amount=D("60.00"), full=False, earlier_totals=[])

    assert [(share.amount, share.tax_amount) for share in shares] == [(D("50.00"), D("10.00"))]


def test_a_partial_note_reaching_past_the_taxed_lines_takes_the_untaxed_ones():
    shares = credit_shares(order_lines(), amount=D("100.00"), full=False, earlier_totals=[D("1200.00")])

    assert [(share.amount, share.tax_amount) for share in shares] == [(D("100.00"), D("0.00"))]


def test_the_rest_after_partial_notes_is_what_they_left_of_each_line_and_each_rates_tax():
    lines = order_lines()
    earlier = [D("60.00"), D("33.33")]
    taken = [credit_shares(lines, amount=D("60.00"), full=False, earlier_totals=[])]
    taken.append(credit_shares(lines, amount=D("33.33"), full=False, earlier_totals=[D("60.00")]))

    rest = credit_shares(lines, amount=D("1226.67"), full=True, earlier_totals=earlier)

    for line in lines:
        credited = sum(share.amount for shares in [*taken, rest] for share in shares if share.item is line)
        assert credited == line.amount
    tax = sum(share.tax_amount for shares in [*taken, rest] for share in shares)
    assert tax == sum(line.tax_amount for line in lines)
    assert [share.tax_amount for share in rest if share.item.tax_rate == 0] == [D("0.00")]
    assert sum(share.amount + share.tax_amount for share in rest) == D("1226.67")


def test_a_first_full_note_takes_every_line_whole():
    lines = order_lines()

    shares = credit_shares(lines, amount=D("1320.00"), full=True, earlier_totals=[])

    assert [(share.item, share.amount, share.tax_amount) for share in shares] == [
        (line, line.amount, line.tax_amount) for line in lines
    ]


def test_reconcile_puts_a_cent_of_difference_on_the_largest_share():
    shares = credit_shares(order_lines(), amount=D("1320.00"), full=True, earlier_totals=[])

    reconcile(shares, subtotal=D("1120.01"), tax=D("199.99"))

    assert [(share.amount, share.tax_amount) for share in shares] == [
        (D("1000.01"), D("199.99")),
        (D("120.00"), D("0.00")),
    ]
