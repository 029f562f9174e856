from datetime import UTC, date, datetime
from decimal import Decimal

import factory

from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import Transaction
from ledger.services.journal import Entry, expense_account, payable_account, transaction_post
from orders.models import (
    Company,
    DocumentType,
    Order,
    OrderType,
    OrderTypeDocument,
    Registrar,
    RevenueShareAgreement,
    Settlement,
)


class DocumentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentType

    code = factory.Sequence(lambda n: f"doc_{n}")
    name = factory.Sequence(lambda n: f"Document {n}")
    accepted_kinds = "pdf,jpeg,png"


class OrderTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderType

    code = factory.Sequence(lambda n: f"type_{n}")
    name = factory.Sequence(lambda n: f"Order type {n}")
    default_fee = Decimal("1000.00")
    default_base_charge = Decimal("120.00")
    target_duration_days = 14


class RequirementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderTypeDocument

    order_type = factory.SubFactory(OrderTypeFactory)
    document_type = factory.SubFactory(DocumentTypeFactory)
    required = True


class RegistrarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Registrar

    name = factory.Sequence(lambda n: f"Registrar {n}")
    jurisdiction = "GB"


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    registration_number = factory.Sequence(lambda n: f"{n:08d}")
    jurisdiction = "GB"
    registrar = factory.SubFactory(RegistrarFactory)
    customer = factory.SubFactory(CustomerFactory)


class PartnerOrderFactory(factory.django.DjangoModelFactory):
    """A completed order brought in by a partner, written directly (its lifecycle is not what these tests test)."""

    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"ORD-2026-{n + 900000:06d}")
    customer = factory.SubFactory(CustomerFactory)
    partner = factory.SubFactory(PartnerFactory, iban="DE02120300000000202051", bic="BYLADEM1001")
    order_type = factory.SubFactory(OrderTypeFactory)
    currency = factory.LazyAttribute(lambda o: o.customer.currency)
    fee = Decimal("1000.00")
    base_charge = Decimal("120.00")
    status = Order.Status.COMPLETED
    start_date = date(2026, 11, 2)
    due_date = date(2026, 11, 16)
    started_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    completed_at = datetime(2026, 11, 20, 15, tzinfo=UTC)


class SettlementFactory(factory.django.DjangoModelFactory):
    """An approved settlement of a partner's order, its `settlement` posted as approval posts it: the partner share
    expense to the partner's payable, so the payable holds what the partner is owed.

    `amount` is what it adds (negative for a correction that gives back); `share` follows it for a first one."""

    class Meta:
        model = Settlement
        skip_postgeneration_save = True

    order = factory.SubFactory(PartnerOrderFactory)
    partner = factory.LazyAttribute(lambda o: o.order.partner)
    agreement = factory.LazyAttribute(
        lambda o: RevenueShareAgreement.objects.get_or_create(
            partner=o.partner, order_type=None, valid_from=date(2026, 1, 1), defaults={"percentage": Decimal("30")}
        )[0]
    )
    sequence = 1
    is_correction = factory.LazyAttribute(lambda o: o.sequence > 1)
    currency = factory.LazyAttribute(lambda o: o.order.currency)
    amount = Decimal("291.00")
    net = factory.LazyAttribute(lambda o: (max(o.amount, Decimal("0")) * 100 / o.percentage).quantize(Decimal("0.01")))
    percentage = Decimal("30.00")
    share = factory.LazyAttribute(lambda o: max(o.amount, Decimal("0")))
    calculation = factory.LazyAttribute(lambda o: {"net": str(o.net), "percentage": str(o.percentage)})
    status = Settlement.Status.APPROVED
    calculated_at = datetime(2026, 11, 20, 16, tzinfo=UTC)
    approved_at = datetime(2026, 11, 21, 10, tzinfo=UTC)

    @factory.post_generation
    def posted(settlement, create, extracted, **kwargs):
        if not create or settlement.amount == 0 or settlement.status not in ("approved", "paid"):
            return
        amount, partner, currency = abs(settlement.amount), settlement.partner, settlement.currency
        expense = expense_account("partner_share", currency, label="Partner revenue share")
        payable = payable_account(partner, currency)
        entries = (
            [Entry(expense, debit=amount), Entry(payable, credit=amount)]
            if settlement.amount > 0
            else [Entry(payable, debit=amount), Entry(expense, credit=amount)]
        )
        settlement.ledger_transaction = transaction_post(
            kind=Transaction.Kind.SETTLEMENT,
            entries=entries,
            description=f"Settlement of {settlement.order.number}",
            reference=settlement.order.number,
            source=settlement,
            actor=None,
        )
        Settlement.objects.filter(pk=settlement.pk).update(ledger_transaction=settlement.ledger_transaction)
