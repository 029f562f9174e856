"""Payout batches (orders.services.payouts): gathering a partner's approved, unpaid settlements, approval by another
Finance user that posts `payout`, cancellation, the SEPA bank file and the partner's statement.

Settlements come from SettlementFactory (approved, with their `settlement` posted to the partner's payable), so
these tests do not depend on how settlements are calculated. Two batches built at once are on PostgreSQL below.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal as D
from io import BytesIO
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from django.conf import settings
from django.db import connection
from pypdf import PdfReader

from accounts.roles import Role
from billing_project.errors import Conflict, DomainError, NotAllowed
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import DocumentSequence, Leg, Transaction
from ledger.services.journal import cash_account, payable_account
from ledger.services.reconciliation import ledger_differences
from ledger.tests.test_concurrency import run_at_once
from orders.models import PayoutBatch, Settlement
from orders.services.payouts import (
    payout_batch_approve,
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pain001,
    payout_statement_pdf,
)
from orders.tests.factories import PartnerOrderFactory, SettlementFactory

CUT_OFF = date(2026, 12, 3)
PAIN_XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


@pytest.fixture
def partner(db):
    return PartnerFactory(name="Formations Partner GmbH", iban="DE02120300000000202051", bic="BYLADEM1001")


@pytest.fixture
def maker(make_user):
    return make_user(Role.FINANCE, email="maker@x.example")


@pytest.fixture
def checker(make_user):
    return make_user(Role.FINANCE, email="checker@x.example")


def settle(partner, amount: str, *, currency: str = "EUR", approved: datetime | None = None, **fields) -> Settlement:
    """An approved settlement of a new order of `partner` in `currency`."""
    customer = CustomerFactory(currency=currency)
    order = PartnerOrderFactory(partner=partner, customer=customer)
    extra = {"approved_at": approved} if approved else {}
    return SettlementFactory(order=order, amount=D(amount), **extra, **fields)


def owed_to(partner, currency: str = "EUR") -> D:
    """What the partner's payable says we owe (a payable's balance is a credit: negative)."""
    return -payable_account(partner, currency).balance


def payouts() -> list[Transaction]:
    return list(Transaction.objects.filter(kind=Transaction.Kind.PAYOUT))


# --- Creating batches -------------------------------------------------------------------------------------------


def test_a_batch_gathers_the_partners_approved_unpaid_settlements_up_to_the_cut_off(partner, maker):
    first, second = settle(partner, "291.00"), settle(partner, "141.00")
    later = settle(partner, "50.00", approved=datetime(2026, 12, 4, 9, tzinfo=UTC))
    calculated = settle(partner, "80.00", status=Settlement.Status.CALCULATED, approved_at=None)
    someone_elses = settle(PartnerFactory(iban="FR1420041010050500013M02606"), "99.00")

    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert re.fullmatch(r"PO-\d{4}-\d{6}", batch.number)
    assert (batch.partner, batch.currency, batch.total, batch.cut_off) == (partner, "EUR", D("432.00"), CUT_OFF)
    assert (batch.iban, batch.bic, batch.status, batch.created_by) == (
        partner.iban,
        partner.bic,
        PayoutBatch.Status.CREATED,
        maker,
    )
    assert set(batch.settlements.all()) == {first, second}
    for waiting in (later, calculated, someone_elses):
        waiting.refresh_from_db()
        assert waiting.payout is None
    # Nothing is paid before approval.
    assert payouts() == []
    assert owed_to(partner) == D("291.00") + D("141.00") + D("50.00")


def test_the_cut_off_day_counts_whole_in_the_billing_time_zone(partner, maker, settings):
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    # 23:30 UTC on 3 Dec is 00:30 on 4 Dec in Berlin: after the cut-off day.
    on_the_day = settle(partner, "10.00", approved=datetime(2026, 12, 3, 22, 30, tzinfo=UTC))
    settle(partner, "20.00", approved=datetime(2026, 12, 3, 23, 30, tzinfo=UTC))

    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert list(batch.settlements.all()) == [on_the_day]


def test_one_batch_per_partner_and_currency_numbered_in_the_po_series(partner, maker):
    other = PartnerFactory(name="Other Partner", iban="FR1420041010050500013M02606", bic="")
    settle(partner, "100.00")
    settle(partner, "30.00", currency="GBP")
    settle(other, "70.00")

    batches = payout_batch_create(actor=maker, partners=[other, partner], cut_off=CUT_OFF)

    made = sorted((b.partner.name, b.currency, b.total) for b in batches)
    assert made == [
        ("Formations Partner GmbH", "EUR", D("100.00")),
        ("Formations Partner GmbH", "GBP", D("30.00")),
        ("Other Partner", "EUR", D("70.00")),
    ]
    numbers = sorted(int(b.number.rsplit("-", 1)[1]) for b in batches)
    assert numbers == [1, 2, 3]
    assert DocumentSequence.objects.get(series="PO").last_number == 3


def test_a_currency_whose_settlements_do_not_come_to_more_than_zero_waits(partner, maker):
    settle(partner, "100.00")
    gbp = [settle(partner, "40.00", currency="GBP"), settle(partner, "-60.00", currency="GBP")]

    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert (batch.currency, batch.total) == ("EUR", D("100.00"))
    assert Settlement.objects.filter(pk__in=[s.pk for s in gbp], payout__isnull=True).count() == 2


def test_a_negative_correction_is_netted_in_the_batch(partner, maker):
    first = settle(partner, "291.00")
    correction = SettlementFactory(order=first.order, sequence=2, amount=D("-150.00"))

    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert batch.total == D("141.00")
    assert set(batch.settlements.all()) == {first, correction}


def test_nothing_to_pay_is_refused_and_makes_nothing(partner, maker):
    settle(partner, "60.00", approved=datetime(2026, 12, 10, tzinfo=UTC))
    settle(partner, "-10.00", currency="GBP")

    with pytest.raises(DomainError) as refused:
        payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert refused.value.code == "nothing_to_pay"
    assert refused.value.message.startswith("Nothing to pay to Formations Partner GmbH up to 3 Dec 2026: ")
    assert "come to -GBP\xa010.00" in refused.value.message
    assert PayoutBatch.objects.count() == 0
    assert not Settlement.objects.filter(payout__isnull=False).exists()
    assert not DocumentSequence.objects.filter(series="PO", last_number__gt=0).exists()


def test_a_partner_with_nothing_at_all_is_named(maker):
    idle = PartnerFactory(name="Idle Partner", iban="DE02120300000000202051")

    with pytest.raises(DomainError, match="Nothing to pay to Idle Partner up to 3 Dec 2026: Idle Partner has no "):
        payout_batch_create(actor=maker, partners=[idle], cut_off=CUT_OFF)


def test_a_partner_without_iban_is_refused_and_nothing_is_made(partner, maker):
    no_bank = PartnerFactory(name="No Bank Partner", iban="", bic="")
    settle(partner, "100.00")
    settle(no_bank, "50.00")

    with pytest.raises(DomainError, match="No Bank Partner has no IBAN: add their bank details") as refused:
        payout_batch_create(actor=maker, partners=[partner, no_bank], cut_off=CUT_OFF)

    assert refused.value.code == "no_iban"
    assert PayoutBatch.objects.count() == 0
    assert not Settlement.objects.filter(payout__isnull=False).exists()


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.CUSTOMER_SUCCESS])
def test_only_finance_and_admin_create_batches(partner, make_user, role):
    settle(partner, "100.00")

    with pytest.raises(NotAllowed):
        payout_batch_create(actor=make_user(role), partners=[partner], cut_off=CUT_OFF)

    assert PayoutBatch.objects.count() == 0


# --- Approving --------------------------------------------------------------------------------------------------


def test_approval_by_another_finance_user_posts_the_payout_and_marks_the_settlements_paid(partner, maker, checker):
    paid = [settle(partner, "291.00"), settle(partner, "141.00")]
    waiting = settle(partner, "50.00", approved=datetime(2026, 12, 4, 9, tzinfo=UTC))
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    approved = payout_batch_approve(actor=checker, batch=batch)

    assert (approved.status, approved.approved_by) == (PayoutBatch.Status.APPROVED, checker)
    assert approved.approved_at is not None
    (payout,) = payouts()
    assert approved.ledger_transaction == payout
    assert (payout.reference, payout.currency, payout.idempotency_key) == (batch.number, "EUR", f"payout:{batch.pk}")
    legs = {(leg.account.code, leg.debit, leg.credit) for leg in Leg.objects.filter(transaction=payout)}
    assert legs == {
        (payable_account(partner, "EUR").code, D("432.00"), D("0.00")),
        (cash_account("EUR").code, D("0.00"), D("432.00")),
    }
    for settlement in paid:
        settlement.refresh_from_db()
        assert settlement.status == Settlement.Status.PAID
        assert settlement.paid_at == approved.approved_at
    waiting.refresh_from_db()
    assert (waiting.status, waiting.payout) == (Settlement.Status.APPROVED, None)
    # The payable: the sum of the partner's settlements less its payouts.
    settled = sum(s.amount for s in Settlement.objects.filter(partner=partner))
    paid_out = sum(b.total for b in PayoutBatch.objects.filter(partner=partner, status=PayoutBatch.Status.APPROVED))
    assert owed_to(partner) == settled - paid_out == D("50.00")
    assert ledger_differences()[0] == []


def test_a_correction_after_payment_leaves_the_payable_equal_to_settlements_minus_payouts(partner, maker, checker):
    first = settle(partner, "291.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    payout_batch_approve(actor=checker, batch=batch)

    SettlementFactory(order=first.order, sequence=2, amount=D("-150.00"))

    assert owed_to(partner) == D("291.00") - D("150.00") - D("291.00") == D("-150.00")
    assert ledger_differences()[0] == []
    with pytest.raises(DomainError, match="come to -EUR\xa0150.00"):
        payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)


def test_approving_your_own_batch_is_refused_and_changes_nothing(partner, maker):
    settlement = settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    with pytest.raises(NotAllowed, match=rf"You created {batch.number}; another Finance user approves it") as refused:
        payout_batch_approve(actor=maker, batch=batch)

    assert refused.value.code == "own_batch"
    batch.refresh_from_db()
    settlement.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CREATED
    assert settlement.status == Settlement.Status.APPROVED
    assert payouts() == []


def test_approving_twice_is_refused_and_pays_once(partner, maker, checker, admin_user):
    settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    payout_batch_approve(actor=checker, batch=batch)

    with pytest.raises(Conflict, match=rf"{batch.number} is already approved and paid") as refused:
        payout_batch_approve(actor=admin_user, batch=batch)

    assert refused.value.code == "already_approved"
    assert len(payouts()) == 1
    assert owed_to(partner) == D("0.00")


def test_operations_cannot_approve(partner, maker, operations_user):
    settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    with pytest.raises(NotAllowed):
        payout_batch_approve(actor=operations_user, batch=batch)

    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CREATED


# --- Cancelling -------------------------------------------------------------------------------------------------


def test_cancelling_releases_the_settlements_for_a_new_batch(partner, maker, checker):
    settlement = settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    cancelled = payout_batch_cancel(actor=checker, batch=batch, reason="Wrong cut-off")

    assert (cancelled.status, cancelled.cancel_reason, cancelled.cancelled_by) == (
        PayoutBatch.Status.CANCELLED,
        "Wrong cut-off",
        checker,
    )
    settlement.refresh_from_db()
    assert (settlement.payout, settlement.status) == (None, Settlement.Status.APPROVED)
    (again,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    assert list(again.settlements.all()) == [settlement]
    with pytest.raises(Conflict, match="is cancelled"):
        payout_batch_approve(actor=checker, batch=batch)


def test_cancelling_needs_a_reason_and_an_unapproved_batch(partner, maker, checker):
    settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    with pytest.raises(DomainError, match="Say why") as refused:
        payout_batch_cancel(actor=checker, batch=batch, reason="  ")
    assert refused.value.fields == {"reason": ["Say why the batch is cancelled."]}

    payout_batch_approve(actor=checker, batch=batch)
    with pytest.raises(Conflict, match="only a batch awaiting approval is cancelled"):
        payout_batch_cancel(actor=checker, batch=batch, reason="Too late")
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.APPROVED
    assert not Settlement.objects.filter(payout__isnull=True).exists()


# --- The bank file ----------------------------------------------------------------------------------------------


def approved_batch(partner, maker, checker, *amounts: str, currency: str = "EUR") -> PayoutBatch:
    for amount in amounts:
        settle(partner, amount, currency=currency)
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    return payout_batch_approve(actor=checker, batch=batch)


def test_the_bank_file_validates_against_the_pain_001_schema_and_sums_to_the_batch(partner, maker, checker):
    batch = approved_batch(partner, maker, checker, "291.00", "141.00", "0.35")
    orders = [s.order.number for s in batch.settlements.select_related("order")]

    xml = payout_batch_pain001(batch)

    schema = xmlschema.XMLSchema(str(PAIN_XSD))
    schema.validate(xml.decode())  # raises on any departure from the schema
    tree = schema.to_etree(schema.to_dict(xml.decode()))
    header = tree.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.find("p:MsgId", NS).text == batch.number
    assert D(header.find("p:CtrlSum", NS).text) == batch.total == D("432.35")
    assert header.find("p:NbOfTxs", NS).text == "1"
    info = tree.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert D(info.find("p:CtrlSum", NS).text) == batch.total
    assert info.find("p:DbtrAcct/p:Id/p:IBAN", NS).text == settings.PAYOUT_ACCOUNT["iban"]
    (transfer,) = info.findall("p:CdtTrfTxInf", NS)
    assert transfer.find("p:PmtId/p:EndToEndId", NS).text == batch.number
    amount = transfer.find("p:Amt/p:InstdAmt", NS)
    assert (D(amount.text), amount.get("Ccy")) == (D("432.35"), "EUR")
    assert transfer.find("p:CdtrAcct/p:Id/p:IBAN", NS).text == partner.iban
    assert transfer.find("p:CdtrAgt/p:FinInstnId/p:BIC", NS).text == partner.bic
    assert transfer.find("p:Cdtr/p:Nm", NS).text == partner.name
    remittance = transfer.find("p:RmtInf/p:Ustrd", NS).text
    assert remittance.startswith(f"{batch.number} revenue share: ")
    assert all(number in remittance for number in orders)


def test_a_long_list_of_orders_is_cut_to_what_a_transfer_carries(partner, maker, checker):
    batch = approved_batch(partner, maker, checker, *["10.00"] * 12)

    xml = payout_batch_pain001(batch)

    xmlschema.XMLSchema(str(PAIN_XSD)).validate(xml.decode())
    remittance = re.search(rb"<Ustrd>(.*?)</Ustrd>", xml).group(1).decode()
    assert len(remittance) <= 140
    assert re.search(r"\+\d+ more$", remittance)


def test_a_bank_file_is_euro_only(partner, maker, checker):
    batch = approved_batch(partner, maker, checker, "30.00", currency="GBP")

    with pytest.raises(DomainError, match=rf"{batch.number} is in GBP: a SEPA bank file carries euros only") as refused:
        payout_batch_pain001(batch)

    assert refused.value.code == "not_sepa_currency"


def test_a_bank_file_waits_for_approval(partner, maker):
    settle(partner, "30.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    with pytest.raises(DomainError, match="its bank file is made once it is approved"):
        payout_batch_pain001(batch)


# --- The statement ----------------------------------------------------------------------------------------------


def test_the_statement_lists_each_settlement_with_its_order_and_the_total(partner, maker, checker):
    first = settle(partner, "291.00")
    SettlementFactory(order=first.order, sequence=2, amount=D("-150.00"))
    settle(partner, "1234.50")
    batch = approved_batch(partner, maker, checker)  # gathers the three above

    pdf = payout_statement_pdf(batch)

    assert pdf.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    assert f"Payout statement {batch.number}" in text
    assert partner.name in text
    for settlement in batch.settlements.select_related("order__order_type"):
        assert settlement.order.number in text
        assert settlement.order.order_type.name in text
    assert "correction #2" in text and "-150.00" in text and "1,234.50" in text
    assert "Completed 20 Nov 2026" in text
    assert "Total paid" in text and "EUR 1,375.50" in text


def test_a_cancelled_batch_has_no_statement(partner, maker, checker):
    settle(partner, "30.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    cancelled = payout_batch_cancel(actor=checker, batch=batch, reason="Duplicate")

    with pytest.raises(DomainError, match="is cancelled: it pays nothing"):
        payout_statement_pdf(cancelled)


# --- Two batches at once (PostgreSQL) ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL; SQLite runs one writer")
@pytest.mark.django_db(transaction=True)
def test_two_batches_built_at_once_pay_each_settlement_once(make_user):
    partner = PartnerFactory(name="Racing Partner", iban="DE02120300000000202051")
    settlements = [settle(partner, f"{10 + n}.00") for n in range(8)]
    makers = [make_user(Role.FINANCE, email=f"maker{n}@x.example") for n in range(4)]
    checker = make_user(Role.FINANCE, email="checker@x.example")

    results = run_at_once(
        *[lambda m=m: payout_batch_create(actor=m, partners=[partner], cut_off=CUT_OFF) for m in makers]
    )

    made = [batch for result in results if isinstance(result, list) for batch in result]
    refused = [result for result in results if isinstance(result, DomainError)]
    assert len(made) + len(refused) == len(makers), results
    assert len(made) == 1
    assert all(error.code == "nothing_to_pay" for error in refused)
    (batch,) = made
    assert {s.payout_id for s in Settlement.objects.filter(pk__in=[s.pk for s in settlements])} == {batch.pk}
    assert batch.total == sum(s.amount for s in settlements)

    approvals = run_at_once(*[lambda: payout_batch_approve(actor=checker, batch=batch) for _ in range(3)])

    assert sum(isinstance(result, PayoutBatch) for result in approvals) == 1
    assert all(isinstance(r, PayoutBatch) or getattr(r, "code", "") == "already_approved" for r in approvals)
    assert len(payouts()) == 1
    assert owed_to(partner) == D("0.00")
    assert ledger_differences()[0] == []
