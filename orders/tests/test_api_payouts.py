"""Payout batches in the API (orders/api_payouts.py): create, read, approve by another Finance user, cancel, the
bank file and the statement; refusals in the one error format; only Finance and Admin reach any of it."""

from decimal import Decimal as D

import pytest
import xmlschema
from rest_framework.test import APIClient

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import Transaction
from orders.models import PayoutBatch, Settlement
from orders.services.payouts import payout_batch_create
from orders.tests.factories import PartnerOrderFactory, SettlementFactory
from orders.tests.test_payouts import CUT_OFF, PAIN_XSD

pytestmark = pytest.mark.django_db

URL = "/api/payout-batches"


@pytest.fixture
def partner(db):
    return PartnerFactory(name="Formations Partner GmbH", iban="DE02120300000000202051", bic="BYLADEM1001")


def settle(partner, amount: str, currency: str = "EUR") -> Settlement:
    order = PartnerOrderFactory(partner=partner, customer=CustomerFactory(currency=currency))
    return SettlementFactory(order=order, amount=D(amount))


def api_as(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_create_approve_and_download_through_the_api(partner, make_user):
    maker, checker = make_user(Role.FINANCE), make_user(Role.FINANCE)
    first, second = settle(partner, "291.00"), settle(partner, "141.00")

    created = api_as(maker).post(URL, {"partners": [partner.pk], "cut_off": "2026-12-03"}, format="json")

    assert created.status_code == 201, created.json()
    (row,) = created.json()
    assert (row["partner_name"], row["currency"], row["total"], row["status"], row["settlement_count"]) == (
        "Formations Partner GmbH",
        "EUR",
        "432.00",
        "created",
        2,
    )
    detail = api_as(checker).get(f"{URL}/{row['id']}").json()
    assert {s["order_number"] for s in detail["settlements"]} == {first.order.number, second.order.number}

    own = api_as(maker).post(f"{URL}/{row['id']}/approve")
    assert own.status_code == 403
    assert own.json()["error"]["code"] == "own_batch"

    approved = api_as(checker).post(f"{URL}/{row['id']}/approve")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
    assert all(s["paid_at"] for s in approved.json()["settlements"])

    again = api_as(make_user(Role.ADMIN)).post(f"{URL}/{row['id']}/approve")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_approved")
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).count() == 1

    bank_file = api_as(checker).get(f"{URL}/{row['id']}/bank-file")
    assert bank_file.status_code == 200 and bank_file["Content-Type"] == "application/xml"
    xmlschema.XMLSchema(str(PAIN_XSD)).validate(bank_file.content.decode())
    statement = api_as(checker).get(f"{URL}/{row['id']}/statement")
    assert statement.status_code == 200 and statement.content.startswith(b"%PDF-")


def test_nothing_to_pay_answers_400_and_makes_nothing(partner, finance_user):
    settle(partner, "50.00")

    response = api_as(finance_user).post(URL, {"partners": [partner.pk], "cut_off": "2026-11-01"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "nothing_to_pay"
    assert error["message"].startswith("Nothing to pay to Formations Partner GmbH up to 1 Nov 2026: ")
    assert error["fields"] == {"partners": [error["message"]]}
    assert PayoutBatch.objects.count() == 0


def test_cancel_needs_a_reason_and_releases_the_settlements(partner, make_user):
    maker, checker = make_user(Role.FINANCE), make_user(Role.FINANCE)
    settlement = settle(partner, "50.00")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)

    assert api_as(checker).post(f"{URL}/{batch.pk}/cancel", {}, format="json").status_code == 400
    response = api_as(checker).post(f"{URL}/{batch.pk}/cancel", {"reason": "Wrong cut-off"}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_reason"]) == ("cancelled", "Wrong cut-off")
    settlement.refresh_from_db()
    assert settlement.payout is None


def test_a_non_euro_bank_file_is_refused(partner, make_user):
    maker, checker = make_user(Role.FINANCE), make_user(Role.FINANCE)
    settle(partner, "50.00", currency="GBP")
    (batch,) = payout_batch_create(actor=maker, partners=[partner], cut_off=CUT_OFF)
    api_as(checker).post(f"{URL}/{batch.pk}/approve")

    response = api_as(checker).get(f"{URL}/{batch.pk}/bank-file")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "not_sepa_currency")


def test_the_list_filters_by_partner_currency_and_status(partner, finance_user, django_assert_max_num_queries):
    other = PartnerFactory(iban="FR1420041010050500013M02606")
    settle(partner, "10.00")
    settle(partner, "20.00", currency="GBP")
    settle(other, "30.00")
    payout_batch_create(actor=finance_user, partners=[partner, other], cut_off=CUT_OFF)
    client = api_as(finance_user)

    with django_assert_max_num_queries(8):
        rows = client.get(URL).json()["results"]
    assert len(rows) == 3
    assert {r["total"] for r in client.get(URL, {"partner": partner.pk}).json()["results"]} == {"10.00", "20.00"}
    assert [r["total"] for r in client.get(URL, {"currency": "GBP"}).json()["results"]] == ["20.00"]
    assert client.get(URL, {"status": "approved"}).json()["results"] == []


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.CUSTOMER_SUCCESS])
def test_other_roles_and_the_portal_reach_nothing(partner, finance_user, make_user, portal_user, role):
    settle(partner, "50.00")
    (batch,) = payout_batch_create(actor=finance_user, partners=[partner], cut_off=CUT_OFF)

    for user in (make_user(role), portal_user):
        client = api_as(user)
        answers = [
            client.get(URL).status_code,
            client.get(f"{URL}/{batch.pk}").status_code,
            client.get(f"{URL}/{batch.pk}/statement").status_code,
            client.post(URL, {"partners": [partner.pk], "cut_off": "2026-12-03"}, format="json").status_code,
            client.post(f"{URL}/{batch.pk}/cancel", {"reason": "x"}, format="json").status_code,
        ]
        assert answers == [403] * 5
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.CREATED
