"""Random sequences of charges, payments, refunds, adjustments and credit notes keep the books consistent.

A hypothesis state machine drives the services on one or two customers and keeps its own model of what
was done (amounts it chose, totals it computed itself). After every step it checks the journal against
itself (ledger_differences), the receivable against the model, and invoices, payments, credit notes and
customer credit against each other. Each example runs in a savepoint that is rolled back afterwards, so
every example starts from empty books; it runs on SQLite and on PostgreSQL.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP
from decimal import Decimal as D
from itertools import count

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billing_project.errors import DomainError
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory
from ledger.models import Account, Adjustment, Allocation, CreditNote, Invoice, Leg, Payment, Refund, Transaction
from ledger.services.billing import billing_config_update
from ledger.services.credit import available_credit
from ledger.services.invoices import InvoiceNotEditable, credit_note_issue, invoice_create_manual, invoice_issue
from ledger.services.payments import adjustment_record, payment_record, refund_record
from ledger.services.reconciliation import ledger_differences

CENT = D("0.01")
ZERO = D("0.00")
RECEIVED = datetime(2026, 11, 20, 10, tzinfo=UTC)
NOT_ISSUED = [Invoice.Status.DRAFT, Invoice.Status.CANCELLED]  # drafts bill nothing yet (an order's, say)


def cents(value: D) -> D:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


amounts = st.integers(min_value=1, max_value=300_000).map(lambda n: D(n).scaleb(-2))  # 0.01 .. 3,000.00
quantities = st.integers(min_value=1, max_value=4_000).map(lambda n: D(n).scaleb(-2))  # 0.01 .. 40.00
unit_prices = st.one_of(
    st.integers(min_value=1, max_value=2_000_000).map(lambda n: D(n).scaleb(-4)),  # 0.0001 .. 200.0000
    st.integers(min_value=0, max_value=9_999).map(lambda n: D(n).scaleb(-2) + D("0.005")),  # x.xx5: rounding shows
)
lines = st.lists(st.tuples(st.one_of(st.just(D(1)), quantities), unit_prices), min_size=1, max_size=3)
who = st.integers(min_value=0, max_value=1)


@dataclass
class InvoiceModel:
    pk: int
    total: D
    credited: D = ZERO  # the sum of its credit notes' totals
    void: bool = False

    @property
    def creditable(self) -> D:
        return ZERO if self.void else self.total - self.credited


@dataclass
class CustomerModel:
    customer: Customer
    tax_rate: D
    charges: D = ZERO
    payments: D = ZERO
    refunds: D = ZERO
    credit_notes: D = ZERO
    debits: D = ZERO  # adjustments the customer owes more by
    credits: D = ZERO  # adjustments the customer owes less by
    invoices: list[InvoiceModel] = field(default_factory=list)

    @property
    def trade(self) -> D:
        """What the customer owes through invoices, payments, refunds and credit notes; negative: credit."""
        return self.charges - self.payments + self.refunds - self.credit_notes

    @property
    def balance(self) -> D:
        return self.trade + self.debits - self.credits

    @property
    def credit(self) -> D:
        """Credit is always set against open invoices at once, so it is what is left once they are paid."""
        return max(-self.trade, ZERO)


class Books(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self._example = transaction.atomic()
        self._example.__enter__()  # a savepoint: everything this example writes is rolled back in teardown
        self.customers: list[CustomerModel] = []
        self.references = count(1)

    def teardown(self):
        transaction.set_rollback(True)
        self._example.__exit__(None, None, None)

    def model(self, index: int) -> CustomerModel:
        return self.customers[index % len(self.customers)]

    @initialize(rates=st.lists(st.sampled_from([D(0), D("0.2"), D("0.075"), D("0.05")]), min_size=1, max_size=2))
    def open_books(self, rates):
        assert not Customer.objects.exists() and not Transaction.objects.exists()  # the last example was rolled back
        for position, rate in enumerate(rates):
            customer = CustomerFactory(currency=["EUR", "USD"][position])
            billing_config_update(actor=None, customer=customer, tax_rate=rate)
            self.customers.append(CustomerModel(customer, rate))

    # --- operations ---------------------------------------------------------------------------------------------

    @rule(index=who, lines=lines)
    def charge(self, index, lines):
        model = self.model(index)
        draft = invoice_create_manual(
            actor=None,
            customer=model.customer,
            lines=[{"description": "Work", "quantity": q, "unit_price": p} for q, p in lines],
        )
        invoice = invoice_issue(actor=None, invoice=draft, send=False)
        total = sum((cents(q * p) + cents(cents(q * p) * model.tax_rate) for q, p in lines), ZERO)
        assert invoice.total == total
        model.charges += total
        model.invoices.append(InvoiceModel(invoice.pk, total))

    @rule(index=who, amount=amounts)
    def pay(self, index, amount):
        model = self.model(index)
        payment_record(
            actor=None,
            customer=model.customer,
            amount=amount,
            received_at=RECEIVED,
            bank_reference=f"BANK-{next(self.references)}",
        )
        model.payments += amount

    @precondition(lambda self: self.customers)
    @rule(index=who, share=st.integers(min_value=1, max_value=100), beyond=st.booleans(), extra=amounts)
    def refund(self, index, share, beyond, extra):
        """Up to the credit the model says the customer holds; any more is refused and changes nothing."""
        model = self.model(index)
        if beyond or model.credit == 0:
            before = self.snapshot(model)
            with pytest.raises(DomainError) as refused:
                refund_record(actor=None, customer=model.customer, amount=model.credit + extra, reason="Too much")
            assert refused.value.code == "insufficient_credit"
            assert self.snapshot(model) == before
            return
        amount = max(CENT, (model.credit * share / 100).quantize(CENT, rounding=ROUND_DOWN))
        refund_record(actor=None, customer=model.customer, amount=amount, reason="Customer asked")
        model.refunds += amount

    @rule(
        index=who,
        direction=st.sampled_from(Adjustment.Direction.values),
        amount=amounts,
        reason=st.sampled_from(["Goodwill", "Late fee", "Rounding", " "]),
    )
    def adjust(self, index, direction, amount, reason):
        """A manual correction with a reason; without one it is refused and changes nothing."""
        model = self.model(index)
        if not reason.strip():
            before = self.snapshot(model)
            with pytest.raises(DomainError, match="reason"):
                adjustment_record(
                    actor=None, customer=model.customer, direction=direction, amount=amount, reason=reason
                )
            assert self.snapshot(model) == before
            return
        adjustment_record(actor=None, customer=model.customer, direction=direction, amount=amount, reason=reason)
        if direction == Adjustment.Direction.DEBIT:
            model.debits += amount
        else:
            model.credits += amount

    @precondition(lambda self: any(invoice.total > 0 for model in self.customers for invoice in model.invoices))
    @rule(data=st.data(), how=st.sampled_from(["full", "part", "part", "too much"]), extra=amounts)
    def credit_note(self, data, how, extra):
        """In full (voids), in part (voids if it credits all that is left); more than is left, or on a void
        invoice, is refused and changes nothing."""
        choices = [(m, i) for m in self.customers for i in m.invoices if i.total > 0]
        model, invoice = data.draw(st.sampled_from(choices), label="invoice")
        locked = Invoice.objects.get(pk=invoice.pk)
        if invoice.void or how == "too much":
            before = self.snapshot(model)
            refusal = InvoiceNotEditable if invoice.void else DomainError
            with pytest.raises(refusal, match="only issued invoices" if invoice.void else "at most"):
                amount = None if invoice.void else invoice.creditable + extra
                credit_note_issue(actor=None, invoice=locked, reason="Too much", amount=amount)
            assert self.snapshot(model) == before
            return
        if how == "full":
            amount = invoice.creditable
        else:  # up to all that is left: crediting the rest in part voids the invoice all the same
            amount = data.draw(st.integers(1, int(invoice.creditable * 100)).map(lambda n: D(n).scaleb(-2)))
        voids = amount == invoice.creditable
        note = credit_note_issue(
            actor=None, invoice=locked, reason="Disputed", amount=None if how == "full" else amount
        )
        assert (note.total, note.full) == (amount, voids)
        model.credit_notes += amount
        invoice.credited += amount
        invoice.void = voids

    # --- invariants ---------------------------------------------------------------------------------------------

    def snapshot(self, model: CustomerModel) -> tuple:
        """What a refused operation must leave untouched."""
        return (
            Leg.objects.count(),
            Refund.objects.count(),
            Adjustment.objects.count(),
            CreditNote.objects.count(),
            self.receivable(model).balance,
            sorted(Invoice.objects.filter(customer=model.customer).values_list("pk", "status", "amount_credited")),
            sorted(Payment.objects.filter(customer=model.customer).values_list("pk", "unallocated")),
        )

    @staticmethod
    def receivable(model: CustomerModel) -> Account:
        return Account.objects.get(customer=model.customer, kind=Account.Kind.RECEIVABLE)

    @invariant()
    def the_journal_agrees_with_itself(self):
        assert ledger_differences()[0] == []

    @invariant()
    def each_receivable_is_what_the_operations_add_up_to(self):
        for model in self.customers:
            receivable = self.receivable(model)
            assert receivable.balance == model.balance
            by_kind = {
                row["transaction__kind"]: (row["debit"], row["credit"])
                for row in Leg.objects.filter(account=receivable)
                .values("transaction__kind")
                .annotate(debit=Sum("debit"), credit=Sum("credit"))
                .order_by()
            }
            expected = {
                Transaction.Kind.CHARGE: (model.charges, ZERO),
                Transaction.Kind.PAYMENT: (ZERO, model.payments),
                Transaction.Kind.REFUND: (model.refunds, ZERO),
                Transaction.Kind.CREDIT_NOTE: (ZERO, model.credit_notes),
                Transaction.Kind.ADJUSTMENT: (model.debits, model.credits),
            }
            assert by_kind == {kind: sides for kind, sides in expected.items() if sides != (ZERO, ZERO)}

    @staticmethod
    def allocated(model: CustomerModel, by: str) -> dict[int, D]:
        """Allocations to the customer's invoices, summed per invoice, payment or credit note (`by`)."""
        totals: dict[int, D] = {}
        for key, amount in Allocation.objects.filter(invoice__customer=model.customer).values_list(by, "amount"):
            if key is not None:
                totals[key] = totals.get(key, ZERO) + amount
        return totals

    def invoices_of(self, model: CustomerModel) -> list[InvoiceModel]:
        """The issued invoices the machine made for the customer (a subclass adds the ones it makes)."""
        return model.invoices

    @invariant()
    def invoices_are_settled_consistently(self):
        for model in self.customers:
            issued = Invoice.objects.filter(customer=model.customer).exclude(status__in=NOT_ISSUED)
            invoices = issued.in_bulk()
            allocated = self.allocated(model, "invoice_id")
            notes: dict[int, list[CreditNote]] = {}
            for note in CreditNote.objects.filter(customer=model.customer):
                notes.setdefault(note.invoice_id, []).append(note)
            assert set(invoices) == {invoice.pk for invoice in self.invoices_of(model)}
            for expected in self.invoices_of(model):
                invoice = invoices[expected.pk]
                assert invoice.total == expected.total
                assert invoice.amount_paid >= 0 and 0 <= invoice.amount_credited <= expected.credited
                assert invoice.amount_paid + invoice.amount_credited <= invoice.total
                assert allocated.get(invoice.pk, ZERO) == invoice.amount_paid
                assert sum((note.total for note in notes.get(invoice.pk, [])), ZERO) == expected.credited
                if expected.void:
                    assert invoice.status == Invoice.Status.VOID
                    assert [note.full for note in notes[invoice.pk]].count(True) == 1
                else:
                    settled = invoice.outstanding == 0
                    assert invoice.status == (Invoice.Status.PAID if settled else Invoice.Status.ISSUED)
                    assert (invoice.paid_at is not None) == settled

    @invariant()
    def credit_is_never_negative_and_never_idle_beside_an_open_invoice(self):
        for model in self.customers:
            credit = available_credit(model.customer)
            assert credit >= 0
            assert credit == model.credit
            open_invoices = Invoice.objects.filter(customer=model.customer, status__in=Invoice.OPEN)
            outstanding = sum((invoice.outstanding for invoice in open_invoices), ZERO)
            assert outstanding == max(model.trade, ZERO)

    @invariant()
    def payments_and_credit_notes_account_for_every_allocation_and_refund(self):
        """A payment is allocated, still unallocated, or (part of it) refunded; so is a credit note's excess over
        what it took off its invoice. Refunds do not say which credit they used: their shares add up."""
        for model in self.customers:
            refunded = ZERO
            by_payment = self.allocated(model, "payment_id")
            for payment in Payment.objects.filter(customer=model.customer):
                assert 0 <= payment.unallocated <= payment.amount
                share = payment.amount - payment.unallocated - by_payment.get(payment.pk, ZERO)
                assert share >= 0, (payment, by_payment.get(payment.pk))
                refunded += share
            by_note = self.allocated(model, "credit_note_id")
            for note in CreditNote.objects.filter(customer=model.customer):
                assert 0 <= note.unallocated <= note.total
                refunded += note.total - note.unallocated - by_note.get(note.pk, ZERO)
            taken_off_invoices = Invoice.objects.filter(customer=model.customer).aggregate(
                total=Sum("amount_credited")
            )["total"]
            assert refunded - (taken_off_invoices or ZERO) == model.refunds


@pytest.mark.timeout(600)  # a failure is shrunk to its shortest sequence of steps, which takes up to five minutes
@pytest.mark.django_db
def test_random_operations_keep_the_books_consistent():
    run_state_machine_as_test(
        Books,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
