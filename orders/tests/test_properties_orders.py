"""Random sequences of orders, receipts, credit notes, expenses, settlements and payouts keep the books consistent.

The ledger's state machine (ledger/tests/test_properties.py, `Books`: charges, payments, refunds, adjustments and
credit notes on one or two customers) is extended here by a subclass, so its rules and invariants run beside the
orders' own: orders with or without a partner, under a general or a type-specific revenue-share agreement or
none; their invoices issued, paid, credited in part or in full; expenses recorded and reversed; orders started,
completed or failed; settlements approved by a second Finance user; and payout batches made and approved.

After every step, besides the ledger's invariants: every transaction balances and every balance chain is unbroken;
each partner's payable is what its approved settlements add up to less its approved payouts; and every ended
order's settlements follow DESIGN.md ("Settlements"): at most one calculated, sequences one per change, and the
latest share equal to the share this test works out itself from what it did (fee, tax rate, base charge, its
credit notes in turn, its expenses, the agreement it chose) and what the ledger says was paid on the invoice.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test

from accounts.roles import Role
from approvals.services import ApprovalNotAllowed, approval_approve, request_for
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from catalog.models import Partner
from catalog.tests.factories import PartnerFactory
from ledger.models import Account, Invoice, Leg
from ledger.services.invoices import invoice_issue
from ledger.services.payments import payment_record
from ledger.tests.test_concurrency import assert_chains_unbroken
from ledger.tests.test_properties import RECEIVED, Books, CustomerModel, InvoiceModel
from orders.models import Expense, Order, OrderType, PayoutBatch, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.billing import order_credit
from orders.services.expenses import expense_record, expense_reverse
from orders.services.orders import order_create, order_transition
from orders.services.payouts import payout_batch_approve, payout_batch_create
from orders.tests.factories import OrderTypeFactory

CENT = D("0.01")
ZERO = D("0.00")
Status = Order.Status
LIVE_GIVEN = (Settlement.Status.APPROVED, Settlement.Status.PAID)
IBAN, BIC = "DE89370400440532013000", "COBADEFFXXX"


def cents(value: D) -> D:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(low: int, high: int):
    """Amounts from low to high cents."""
    return st.integers(min_value=low, max_value=high).map(lambda n: D(n).scaleb(-2))


RATES = st.lists(st.sampled_from([D(0), D("0.2"), D("0.075"), D("0.05")]), min_size=1, max_size=2)  # as Books
fees = st.one_of(st.just(ZERO), money(1, 300_000))  # 0.00, or 0.01 .. 3,000.00
base_charges = st.one_of(st.just(ZERO), money(1, 50_000))
percentages = st.one_of(st.sampled_from([D("30.00"), D("50.00"), D("12.50"), D("33.33")]), money(1, 10_000))
expense_amounts = money(1, 50_000)


@dataclass
class OrderModel:
    """What the machine did to one order, for working out its share without the settlement service."""

    pk: int
    customer: CustomerModel
    partner: str | None  # "A", "B" or None
    order_type: str  # "T1" or "T2"
    fee: D
    base_charge: D
    status: str = Status.STARTED
    invoice: InvoiceModel | None = None  # once issued
    notes: list[tuple[bool, D]] = field(default_factory=list)  # (full, total) of each credit note, in turn
    expenses: dict[int, D] = field(default_factory=dict)  # expense pk -> amount, while not reversed

    @property
    def ended(self) -> bool:
        return self.status in (Status.COMPLETED, Status.FAILED)

    @property
    def fee_with_tax(self) -> D:
        return self.fee + cents(self.fee * self.customer.tax_rate)


class OrderBooks(Books):
    """The ledger's machine, with orders, expenses, settlements and payouts on its customers."""

    maker = None  # Finance users, made by the test: the maker acts, the checker approves
    checker = None

    def __init__(self):
        super().__init__()
        self.orders: list[OrderModel] = []
        self.partners: dict[str, Partner] = {}
        self.order_types: dict[str, OrderType] = {}
        self.percentages: dict[tuple[str, str | None], D] = {}  # (partner, order type or None) -> percentage

    @initialize(
        rates=RATES,
        general=percentages,
        specific=percentages,
        other=percentages,
        seed=st.sampled_from([None, D(1), D("0.5")]),
    )
    def open_books(self, rates, general, specific, other, seed):
        """The ledger's customers; partner A with a general agreement and a T1-specific one, partner B with a
        T2-specific one only (so its T1 orders have no agreement in force); and one order of DESIGN.md's terms
        for partner A, issued and paid in full, in part or not at all, so that every example has a share."""
        Books.open_books(self, rates)
        since = billing_today() - timedelta(days=365)
        self.order_types = {"T1": OrderTypeFactory(), "T2": OrderTypeFactory()}
        self.partners = {name: PartnerFactory(iban=IBAN, bic=BIC) for name in ("A", "B")}
        for partner, order_type, percentage in (("A", None, general), ("A", "T1", specific), ("B", "T2", other)):
            revenue_share_agreement_create(
                actor=None,
                partner=self.partners[partner],
                order_type=self.order_types[order_type] if order_type else None,
                percentage=percentage,
                valid_from=since,
            )
            self.percentages[(partner, order_type)] = percentage
        order = self.create_with_terms(0, "A", "T1", D("1000.00"), D("120.00"))
        self.issue(order)
        if seed is not None:
            self.pay(order, seed)

    def invoices_of(self, model: CustomerModel) -> list[InvoiceModel]:
        ours = [order.invoice for order in self.orders if order.customer is model and order.invoice is not None]
        return [*model.invoices, *ours]

    def percentage(self, order: OrderModel) -> D | None:
        """A type-specific agreement wins over the partner's general one; neither: no settlement."""
        if order.partner is None:
            return None
        return self.percentages.get((order.partner, order.order_type), self.percentages.get((order.partner, None)))

    def pick(self, data, label: str, *, where) -> OrderModel:
        return data.draw(st.sampled_from([order for order in self.orders if where(order)]), label=label)

    def has(self, test) -> bool:
        return any(test(order) for order in self.orders)

    # --- operations ---------------------------------------------------------------------------------------------

    @precondition(lambda self: self.customers and len(self.orders) < 4)
    @rule(
        index=st.integers(0, 1),
        partner=st.sampled_from([None, "A", "A", "B"]),
        kind=st.sampled_from(["T1", "T2"]),
        terms=st.one_of(st.just((D("1000.00"), D("120.00"))), st.tuples(fees, base_charges)),
        issue=st.booleans(),
        part=st.sampled_from([None, D(1), D("0.5")]),
    )
    def create_order(self, index, partner, kind, terms, issue, part):
        """DESIGN.md's terms (1,000.00 and 120.00) or others; its invoice issued at once (and paid, in part or in
        full) or left a draft."""
        order = self.create_with_terms(index, partner, kind, *terms)
        if issue and order.invoice is None and (order.fee or order.base_charge):
            self.issue(order)
            if part is not None:
                self.pay(order, part)

    def create_with_terms(self, index, partner, kind, fee, base_charge):
        model = self.model(index)
        order = order_create(
            actor=self.maker,
            customer=model.customer,
            order_type=self.order_types[kind],
            partner=self.partners[partner] if partner else None,
            fee=fee,
            base_charge=base_charge,
        )
        assert order.status == Status.STARTED
        assert (order.invoice_id is None) == (fee == base_charge == ZERO)
        self.orders.append(OrderModel(order.pk, model, partner, kind, fee, base_charge))
        return self.orders[-1]

    @precondition(lambda self: self.has(lambda o: o.invoice is None and (o.fee or o.base_charge)))
    @rule(data=st.data())
    def issue_invoice(self, data):
        self.issue(self.pick(data, "order", where=lambda o: o.invoice is None and (o.fee or o.base_charge)))

    def issue(self, order: OrderModel) -> None:
        invoice = invoice_issue(actor=None, invoice=Order.objects.get(pk=order.pk).invoice, send=False)
        total = order.fee_with_tax + order.base_charge
        assert invoice.total == total and invoice.kind == Invoice.Kind.ORDER
        order.customer.charges += total
        order.invoice = InvoiceModel(invoice.pk, total)

    @precondition(lambda self: self.has(lambda o: o.invoice is not None))
    @rule(data=st.data(), part=st.sampled_from([D(1), D(1), D("0.5"), D("0.3")]))
    def pay_order(self, data, part):
        """A payment of (part of) what the order's invoice still owes; the ledger allocates it, oldest first."""
        self.pay(self.pick(data, "order", where=lambda o: o.invoice is not None), part)

    def pay(self, order: OrderModel, part: D) -> None:
        outstanding = Invoice.objects.get(pk=order.invoice.pk).outstanding
        amount = max(CENT, cents(outstanding * part))
        payment_record(
            actor=None,
            customer=order.customer.customer,
            amount=amount,
            received_at=RECEIVED,
            bank_reference=f"BANK-{next(self.references)}",
        )
        order.customer.payments += amount

    @precondition(lambda self: self.has(lambda o: o.invoice is not None and not o.invoice.void))
    @rule(data=st.data(), full=st.booleans())
    def credit_order(self, data, full):
        """Part of the fee with its tax back (a failed order's partial refund), or all that is left."""
        order = self.pick(data, "order", where=lambda o: o.invoice is not None and not o.invoice.void)
        invoice = order.invoice
        credited = sum((total for _, total in order.notes), ZERO)
        # a partial credit gives back the fee with its tax; an untaxed invoice has no taxed line to tell it by
        taxed = order.fee > 0 and order.customer.tax_rate > 0
        limit = max(order.fee_with_tax - credited, ZERO) if taxed else invoice.creditable
        amount = None
        if not full and limit > 0:
            amount = data.draw(money(1, int(limit * 100)), label="amount")
        note = order_credit(actor=self.maker, order=Order.objects.get(pk=order.pk), amount=amount, reason="Refund")
        total = invoice.creditable if amount is None else amount
        voids = total == invoice.creditable
        assert (note.total, note.full) == (total, voids)
        order.notes.append((voids, total))
        order.customer.credit_notes += total
        invoice.credited += total
        invoice.void = voids

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), amount=expense_amounts, category=st.sampled_from(Expense.Category.values))
    def record_expense(self, data, amount, category):
        order = self.pick(data, "order", where=lambda o: True)
        expense = expense_record(
            actor=self.maker,
            order=Order.objects.get(pk=order.pk),
            amount=amount,
            date=billing_today(),
            payee="Companies House",
            category=category,
        )
        order.expenses[expense.pk] = amount

    @precondition(lambda self: self.has(lambda o: o.expenses))
    @rule(data=st.data())
    def reverse_expense(self, data):
        order = self.pick(data, "order", where=lambda o: o.expenses)
        pk = data.draw(st.sampled_from(sorted(order.expenses)), label="expense")
        reversal = expense_reverse(actor=self.maker, expense=Expense.objects.get(pk=pk), reason="Not ours")
        assert reversal.amount == -order.expenses.pop(pk)

    def start_order_of(self, order: OrderModel) -> None:
        order_transition(actor=self.maker, order=Order.objects.get(pk=order.pk), to_status=Status.IN_PROGRESS)
        order.status = Status.IN_PROGRESS

    @precondition(lambda self: self.has(lambda o: not o.ended))
    @rule(data=st.data(), outcome=st.sampled_from([Status.COMPLETED, Status.FAILED]), approve=st.booleans())
    def end_order(self, data, outcome, approve):
        """Complete or fail an order, starting work on it first if it has not started; its settlement approved
        at once by the checker, or left for `approve_settlement`."""
        order = self.pick(data, "order", where=lambda o: not o.ended)
        if order.status == Status.STARTED:
            self.start_order_of(order)
        reason = "Registrar refused" if outcome == Status.FAILED else ""
        order_transition(actor=self.maker, order=Order.objects.get(pk=order.pk), to_status=outcome, reason=reason)
        order.status = outcome
        settlement = Settlement.objects.filter(order_id=order.pk, status=Settlement.Status.CALCULATED).first()
        if approve and settlement is not None:
            approval_approve(actor=self.checker, request=request_for(settlement), comment="Checked")

    @precondition(lambda self: Settlement.objects.filter(status=Settlement.Status.CALCULATED).exists())
    @rule(data=st.data(), by_maker=st.booleans())
    def approve_settlement(self, data, by_maker):
        """A second Finance user approves; whoever made the settlement (the order's maker) is refused."""
        pending = list(
            Settlement.objects.filter(status=Settlement.Status.CALCULATED).order_by("pk").values_list("pk", flat=True)
        )
        settlement = Settlement.objects.get(pk=data.draw(st.sampled_from(pending), label="settlement"))
        request = request_for(settlement)
        if by_maker and request.opened_by_id == self.maker.pk:
            before = (Leg.objects.count(), list(Settlement.objects.values_list("pk", "status").order_by("pk")))
            with pytest.raises(ApprovalNotAllowed):
                approval_approve(actor=self.maker, request=request, comment="My own")
            assert (Leg.objects.count(), list(Settlement.objects.values_list("pk", "status").order_by("pk"))) == before
            return
        approval_approve(actor=self.checker, request=request, comment="Checked")
        settlement.refresh_from_db()
        assert settlement.status == Settlement.Status.APPROVED
        assert (settlement.ledger_transaction_id is None) == (settlement.amount == 0)

    @precondition(lambda self: Settlement.objects.filter(status=Settlement.Status.APPROVED, payout=None).exists())
    @rule(data=st.data())
    def pay_out(self, data):
        due = sorted(
            set(
                Settlement.objects.filter(status=Settlement.Status.APPROVED, payout=None).values_list(
                    "partner_id", flat=True
                )
            )
        )
        partner = Partner.objects.get(pk=data.draw(st.sampled_from(due), label="partner"))
        before = (Leg.objects.count(), PayoutBatch.objects.count())
        try:
            batches = payout_batch_create(actor=self.maker, partners=[partner], cut_off=billing_today())
        except DomainError:  # corrections that leave nothing to pay
            assert (Leg.objects.count(), PayoutBatch.objects.count()) == before
            return
        for batch in batches:
            payout_batch_approve(actor=self.checker, batch=batch)

    # --- invariants ---------------------------------------------------------------------------------------------

    @invariant()
    def every_transaction_balances_and_every_chain_is_unbroken(self):
        assert_chains_unbroken()

    @invariant()
    def each_partners_payable_is_its_approved_settlements_less_its_payouts(self):
        for partner in self.partners.values():
            # Summed here, not in SQL: SQLite sums decimals as floating point.
            given: dict[str, D] = defaultdict(lambda: ZERO)
            for currency, amount in Settlement.objects.filter(partner=partner, status__in=LIVE_GIVEN).values_list(
                "currency", "amount"
            ):
                given[currency] += amount
            paid_out: dict[str, D] = defaultdict(lambda: ZERO)
            for currency, total in PayoutBatch.objects.filter(
                partner=partner, status=PayoutBatch.Status.APPROVED
            ).values_list("currency", "total"):
                paid_out[currency] += total
            payables = {
                account.currency: -account.balance
                for account in Account.objects.filter(partner=partner, kind=Account.Kind.PAYABLE)
            }
            for currency in set(given) | set(paid_out) | set(payables):
                expected = given.get(currency, ZERO) - paid_out.get(currency, ZERO)
                assert payables.get(currency, ZERO) == expected, (partner, currency)

    def expected_share(self, order: OrderModel, percentage: D) -> D:
        """The share from first principles (DESIGN.md, "Settlements"): what was billed, less each credit note in
        turn (a partial one off the fee with its tax first, then the base charge; a full one all that is left);
        what the ledger says was paid, up to what is owed after them, split between the two in proportion, each
        part rounded; the fee's tax left out; less the expenses; never below zero."""
        fee_left = base_left = ZERO
        paid = ZERO
        if order.invoice is not None:
            fee_left, base_left = order.fee_with_tax, order.base_charge
            for full, total in order.notes:
                if full:
                    fee_left = base_left = ZERO
                    continue
                off_fee = min(total, fee_left)
                fee_left, base_left = fee_left - off_fee, base_left - (total - off_fee)
            paid = Invoice.objects.get(pk=order.invoice.pk).amount_paid
        owed = fee_left + base_left
        received = min(paid, owed)
        fee_part = cents(received * fee_left / owed) if owed > 0 else ZERO
        base_part = cents(received * base_left / owed) if owed > 0 else ZERO
        fee_net = cents(fee_part / (1 + order.customer.tax_rate))
        net = max(fee_net + base_part - sum(order.expenses.values(), ZERO), ZERO)
        return cents(net * percentage / 100)

    @invariant()
    def every_ended_order_is_settled_by_the_rule(self):
        for order in self.orders:
            rows = list(Settlement.objects.filter(order_id=order.pk).order_by("sequence"))
            assert [row.sequence for row in rows] == list(range(1, len(rows) + 1))
            live = [row for row in rows if row.status != Settlement.Status.VOID]
            pending = [row for row in live if row.status == Settlement.Status.CALCULATED]
            assert len(pending) <= 1
            percentage = self.percentage(order)
            if not order.ended or percentage is None:
                assert live == [], (order, live)  # not ended, no partner or no agreement in force: nothing due
                continue
            assert live, order  # an ended order under an agreement has a settlement (rejections aside)
            share = self.expected_share(order, percentage)
            latest = live[-1]
            assert pending == [] or pending[0] is latest
            assert latest.share == share, (latest.calculation, share)
            assert {row.percentage for row in live} == {percentage}
            assert {row.partner_id for row in live} == {self.partners[order.partner].pk}
            given = sum((row.amount for row in live if row.status in LIVE_GIVEN), ZERO)
            assert given + sum((row.amount for row in pending), ZERO) == share
            for row in live:
                opened = request_for(row)
                assert (opened is not None and opened.status == "pending") == (row.status == "calculated")


@pytest.mark.timeout(600)  # a failure is shrunk to its shortest sequence of steps, which takes a few minutes
@pytest.mark.django_db
def test_random_orders_settlements_and_payouts_keep_the_books_consistent(make_user):
    OrderBooks.maker = make_user(Role.FINANCE, email="maker@countinghouse.example")
    OrderBooks.checker = make_user(Role.FINANCE, email="checker@countinghouse.example")
    run_state_machine_as_test(
        OrderBooks,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
