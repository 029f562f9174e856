"""Payout batches in the admin (orders/admin_payouts.py): Finance creates batches, another Finance user approves
one, the bank file and statement download; refusals are shown and change nothing; other roles see none of it."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import Transaction
from orders.models import PayoutBatch, Settlement
from orders.services.payouts import payout_batch_approve, payout_batch_create
from orders.tests.factories import PartnerOrderFactory, SettlementFactory
from orders.tests.test_payouts import CUT_OFF

pytestmark = pytest.mark.django_db

LIST = reverse("admin:orders_payoutbatch_changelist")
CREATE = reverse("admin:orders_payoutbatch_add")


@pytest.fixture
def partner(db):
    return PartnerFactory(name="Formations Partner GmbH", iban="DE02120300000000202051", bic="BYLADEM1001")


@pytest.fixture
def maker(make_user):
    return make_user(Role.FINANCE, email="maker@x.example")


@pytest.fixture
def checker(make_user):
    return make_user(Role.FINANCE, email="checker@x.example")


def settle(partner, amount: str, currency: str = "EUR") -> Settlement:
    order = PartnerOrderFactory(partner=partner, customer=CustomerFactory(currency=currency))
    return SettlementFactory(order=order, amount=Decimal(amount))


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def button(batch: PayoutBatch, name: str) -> str:
    return f"/admin/orders/payoutbatch/{batch.pk}/{name}/"


def test_finance_creates_a_batch_from_the_create_page(client, partner, maker):
    settlement = settle(partner, "291.00")
    client.force_login(maker)

    page = client.get(CREATE)
    assert page.status_code == 200
    assert "Formations Partner GmbH (1 settlement waiting, EUR\xa0291.00)" in page.content.decode()

    response = client.post(CREATE, {"partners": [partner.pk], "cut_off": "2026-12-03"})

    (batch,) = PayoutBatch.objects.all()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:orders_payoutbatch_change", args=[batch.pk]
    )
    assert said(response) == [
        f"Created {batch.number} (Formations Partner GmbH, EUR\xa0291.00). "
        "Another Finance user approves each to pay it."
    ]
    settlement.refresh_from_db()
    assert settlement.payout == batch
    page = client.get(response["Location"]).content.decode()
    assert settlement.order.number in page and "EUR\xa0291.00" in page and "DE02 1203 0000 0000 2020 51" in page


def test_nothing_to_pay_is_shown_on_the_form_and_makes_nothing(client, partner, maker):
    settle(partner, "291.00")
    client.force_login(maker)

    response = client.post(CREATE, {"partners": [partner.pk], "cut_off": "2026-11-01"})

    assert response.status_code == 200
    assert "Nothing to pay to Formations Partner GmbH up to 1 Nov 2026" in response.content.decode()
    assert PayoutBatch.objects.count() == 0


def test_the_create_page_says_when_nothing_waits(client, maker):
    client.force_login(maker)

    page = client.get(CREATE).content.decode()

    assert "No approved settlement is waiting to be paid." in page
    assert 'href="/admin/orders/settlement/?status__exact=calculated"' in page  # where the unapproved ones are
    assert "Create batches" not in page  # no empty form to submit


def test_the_create_page_says_what_each_partner_is_owed(client, partner, maker):
    other = PartnerFactory(name="Nordic Incorporations AB")
    settle(partner, "291.00")
    settle(partner, "1000.00")
    settle(partner, "30.00", currency="GBP")
    settle(other, "12.50")
    client.force_login(maker)

    page = client.get(CREATE).content.decode()

    assert "Formations Partner GmbH (3 settlements waiting, EUR\xa01,291.00 + GBP\xa030.00)" in page
    assert "Nordic Incorporations AB (1 settlement waiting, EUR\xa012.50) — no IBAN yet" in page


def test_the_empty_list_says_how_a_batch_is_made(client, partner, maker):
    client.force_login(maker)

    assert "No payout batch yet." in client.get(LIST).content.decode()
    settle(partner, "10.00")
    payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    assert "No payout batch yet." not in client.get(LIST).content.decode()


def test_a_batch_page_shows_its_status_and_every_amount_with_its_currency(client, partner, maker, checker):
    settlement = settle(partner, "1291.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    client.force_login(checker)
    url = reverse("admin:orders_payoutbatch_change", args=[batch.pk])

    page = client.get(url).content.decode()

    assert "Awaiting approval" in page and "('created'" not in page
    table = page[page.index('data-testid="batch-settlements"') :]
    net, share = f"EUR\xa0{settlement.net:,}", f"EUR\xa0{settlement.share:,}"
    assert net in table and share in table and table.count("EUR\xa01,291.00") >= 2  # its amount and the total
    payout_batch_approve(actor=checker, batch=batch)
    assert "Approved (paid)" in client.get(url).content.decode()


def test_another_finance_user_approves_and_downloads_the_files(client, partner, maker, checker):
    settlement = settle(partner, "291.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    client.force_login(checker)

    response = client.post(button(batch, "approve"), {"_form_submitted": "on"})

    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.APPROVED
    assert said(response)[0].startswith(f"{batch.number} approved: EUR\xa0291.00 to Formations Partner GmbH.")
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.PAID
    bank_file = client.get(button(batch, "bank-file"))
    assert bank_file.status_code == 200 and bank_file["Content-Type"] == "application/xml"
    assert f'filename="{batch.number}-pain001.xml"' in bank_file["Content-Disposition"]
    assert b"<CtrlSum>291.00</CtrlSum>" in bank_file.content
    statement = client.get(button(batch, "statement"))
    assert statement.status_code == 200 and statement.content.startswith(b"%PDF-")


def test_approving_your_own_batch_shows_the_refusal(client, partner, maker):
    settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    client.force_login(maker)

    page = client.get(reverse("admin:orders_payoutbatch_change", args=[batch.pk])).content.decode()
    assert "Approve and pay" not in page and "Cancel" in page
    response = client.post(button(batch, "approve"), {"_form_submitted": "on"})

    assert said(response) == [f"You created {batch.number}; another Finance user approves it (maker-checker)."]
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CREATED
    assert not Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).exists()


def test_cancel_with_a_reason_releases_the_settlements(client, partner, maker, checker):
    settlement = settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    client.force_login(checker)

    client.post(button(batch, "cancel"), {"_form_submitted": "on", "reason": "Wrong partner"})

    batch.refresh_from_db()
    settlement.refresh_from_db()
    assert (batch.status, batch.cancel_reason, settlement.payout) == (
        PayoutBatch.Status.CANCELLED,
        "Wrong partner",
        None,
    )


def test_a_non_euro_bank_file_is_refused_with_a_message(client, partner, maker, checker):
    settle(partner, "30.00", currency="GBP")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    payout_batch_approve(actor=checker, batch=batch)
    client.force_login(checker)

    response = client.get(button(batch, "bank-file"))

    assert response.status_code == 302
    assert said(response)[0].startswith(f"{batch.number} is in GBP: a SEPA bank file carries euros only")


def test_the_list_filters_and_searches(client, partner, maker, django_assert_max_num_queries):
    other = PartnerFactory(name="Other Partner", iban="FR1420041010050500013M02606")
    for who in (partner, other, partner):
        settle(who, "10.00")
    batches = payout_batch_create(actor=maker, partners=[partner, other], cut_off=CUT_OFF)
    client.force_login(maker)

    with django_assert_max_num_queries(15):
        page = client.get(LIST).content.decode()
    assert all(batch.number in page for batch in batches)
    assert "EUR\xa020.00" in page
    found = client.get(LIST, {"q": "Other"}).context["cl"].result_list
    assert [batch.partner for batch in found] == [other]
    assert list(client.get(LIST, {"status__exact": "approved"}).context["cl"].result_list) == []


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.CUSTOMER_SUCCESS])
def test_other_roles_see_no_payout_batches(client, partner, maker, make_user, role):
    settle(partner, "100.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    client.force_login(make_user(role))

    pages = [LIST, CREATE, reverse("admin:orders_payoutbatch_change", args=[batch.pk]), button(batch, "statement")]
    assert [client.get(url).status_code for url in pages] == [403, 403, 403, 403]
    client.post(button(batch, "cancel"), {"_form_submitted": "on", "reason": "x"})
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CREATED
