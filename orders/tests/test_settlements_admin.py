"""Settlements in the admin: the list with its filters and search, a settlement's page with its calculation and
approval (maker-checker through approvals), "Calculate again", the order page's Settlement tab, and who sees none
of it."""

import html
import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from approvals.models import ApprovalRequest
from approvals.services import request_for
from billing_project.formatting import day
from catalog.tests.factories import PartnerFactory
from ledger.models import Transaction
from orders.models import Order, Settlement
from orders.services.agreements import revenue_share_agreement_create
from orders.services.billing import order_credit
from orders.tests.settlement_world import example_order, settlement_of

pytestmark = pytest.mark.django_db
DIALOG = {"_form_submitted": "on"}
LIST = reverse("admin:orders_settlement_changelist")


@pytest.fixture
def maker(make_user):
    return make_user(Role.FINANCE, email="maker@x.example", full_name="Mia Maker")


@pytest.fixture
def checker(make_user):
    return make_user(Role.FINANCE, email="checker@x.example", full_name="Carl Checker")


@pytest.fixture
def order(maker):
    return example_order(maker)


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def text_of(response) -> str:
    """The page's text without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def detail(settlement: Settlement) -> str:
    return reverse("admin:orders_settlement_change", args=[settlement.pk])


def act(settlement: Settlement, button: str) -> str:
    """The address a button of the settlement's page posts to."""
    return f"/admin/orders/settlement/{settlement.pk}/{button}/"


def order_page(order: Order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


# --- The list -----------------------------------------------------------------------------------------------------


def test_the_list_shows_order_partner_type_kind_status_amount_and_day(checker, order):
    settlement = settlement_of(order)
    page = text_of(client_as(checker).get(LIST))

    assert f"{order.number} Settlement" in page
    assert order.partner.name in page
    assert "UK company formation" in page
    assert "Calculated" in page
    assert "EUR 291.00" in page
    assert f"{day(settlement.calculated_at)}" in page


def test_the_list_filters_by_partner_status_and_currency_and_searches(checker, maker, order):
    other = example_order(maker, percentage="10", currency="GBP")
    other.partner.name = "Zebra Introductions"  # a name no order number holds a word of
    other.partner.save()
    settlement, other_settlement = settlement_of(order), settlement_of(other)
    client = client_as(checker)
    client.post(act(other_settlement, "approve"), DIALOG)

    def listed(query: dict) -> set[str]:
        page = client.get(LIST, query).content.decode()
        return {number for number in (order.number, other.number) if number in page}

    assert listed({}) == {order.number, other.number}
    assert listed({"partner__id__exact": order.partner_id}) == {order.number}
    assert listed({"status__exact": "approved"}) == {other.number}
    assert listed({"currency__exact": "GBP"}) == {other.number}
    assert listed({"q": order.number}) == {order.number}
    assert listed({"q": other.partner.name}) == {other.number}
    today = settlement.calculated_at
    assert listed({"calculated_at__year": today.year, "calculated_at__month": today.month}) == {
        order.number,
        other.number,
    }
    assert listed({"calculated_at__year": 2020}) == set()


def test_the_list_reads_a_fixed_number_of_queries(checker, maker, order, django_assert_max_num_queries):
    for _ in range(3):
        example_order(maker)
    client = client_as(checker)
    client.get(LIST)  # warm the session and permission caches
    with django_assert_max_num_queries(14):
        assert client.get(LIST).status_code == 200


def test_settlements_are_never_added_changed_or_deleted_here(checker, order):
    client = client_as(checker)
    settlement = settlement_of(order)
    assert client.get(reverse("admin:orders_settlement_add")).status_code == 403
    assert client.get(reverse("admin:orders_settlement_delete", args=[settlement.pk])).status_code == 403
    client.post(detail(settlement), {"status": "approved"})
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED


# --- A settlement's page ------------------------------------------------------------------------------------------


def test_the_page_shows_every_input_of_the_calculation_with_its_label_and_the_agreement(checker, order):
    settlement = settlement_of(order)
    response = client_as(checker).get(detail(settlement))
    page = text_of(response)

    for label, value in [
        ("Fee billed (before tax)", "EUR 1,000.00"),
        ("Tax rate on the fee", "20 %"),
        ("Base charge billed (a disbursement, no tax)", "EUR 120.00"),
        ("Paid by the client on the invoice", "EUR 1,320.00"),
        ("Fee received (tax included)", "EUR 1,200.00"),
        ("Fee received (tax left out)", "EUR 1,000.00"),
        ("Expenses of the order", "EUR 150.00"),
        ("Net revenue (received less expenses, never below 0.00)", "EUR 970.00"),
        ("Partner's percentage (the agreement's)", "30 %"),
        ("Partner share (net × percentage, rounded half up)", "EUR 291.00"),
        ("This settlement adds", "EUR 291.00"),
    ]:
        assert f"{label} {value}" in page, label
    agreement_url = reverse("admin:orders_revenueshareagreement_change", args=[settlement.agreement_id])
    assert agreement_url in response.content.decode()
    assert "30 % · all order types (general) · 1 Jan 2026 – open-ended" in page
    assert f"{order.number} completed on {day(order.completed_at)}, billed on invoice {order.invoice.number}" in page
    assert "Pending under the rule “Finance (not whoever calculated it)”" in page


def test_the_checker_sees_approve_and_reject_and_approving_posts_the_share(checker, order):
    settlement = settlement_of(order)
    client = client_as(checker)
    page = client.get(detail(settlement)).content.decode()
    assert act(settlement, "approve") in page and act(settlement, "reject") in page

    response = client.post(act(settlement, "approve"), DIALOG | {"comment": "Checked"})

    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.APPROVED
    assert settlement.approved_by == checker
    assert Transaction.objects.filter(kind=Transaction.Kind.SETTLEMENT, reference=order.number).count() == 1
    assert messages_of(response) == [f"{settlement} approved: EUR\xa0291.00 posted to {order.partner.name}'s payable."]


def test_the_maker_is_offered_no_approval_and_is_refused_with_a_clear_message(maker, order):
    settlement = settlement_of(order)
    client = client_as(maker)
    page = client.get(detail(settlement))
    assert act(settlement, "approve") not in page.content.decode()
    assert "another Finance user approves it (maker-checker)" in text_of(page)

    response = client.post(act(settlement, "approve"), DIALOG)

    assert messages_of(response) == ["You submitted this; someone else must decide it (maker-checker)."]
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED
    assert request_for(settlement).status == ApprovalRequest.Status.PENDING


def test_rejecting_needs_a_comment_and_voids_the_settlement(checker, order):
    settlement = settlement_of(order)
    client = client_as(checker)

    without = client.post(act(settlement, "reject"), DIALOG)
    settlement.refresh_from_db()
    assert without.status_code == 200 and settlement.status == Settlement.Status.CALCULATED

    client.post(act(settlement, "reject"), DIALOG | {"comment": "Courier charged twice"})
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.VOID
    assert "Courier charged twice" in text_of(client.get(detail(settlement)))


def test_calculate_again_says_when_nothing_changed_and_makes_a_new_one_after_a_rejection(checker, order):
    settlement = settlement_of(order)
    client = client_as(checker)

    unchanged = client.post(act(settlement, "calculate-again"), DIALOG)
    assert messages_of(unchanged) == [f"Nothing changed: {order.number}'s settlements already match its money."]
    assert Settlement.objects.filter(order=order).count() == 1

    client.post(act(settlement, "reject"), DIALOG | {"comment": "Wrong agreement"})
    response = client.post(act(settlement, "calculate-again"), DIALOG)

    new = settlement_of(order)
    assert new.pk != settlement.pk and new.status == Settlement.Status.CALCULATED and new.amount == D("291.00")
    assert response["Location"] == detail(new)
    assert new.calculated_by == checker


# --- The order page -----------------------------------------------------------------------------------------------


def test_the_order_page_shows_its_settlements_and_the_derived_status(checker, order):
    response = client_as(checker).get(order_page(order))
    page = text_of(response)

    assert 'data-testid="settlement"' in response.content.decode()
    assert "Settlement status: Calculated" in page
    assert "Settlement Calculated EUR 970.00 30 % EUR 291.00 EUR 291.00" in page
    assert detail(settlement_of(order)) in response.content.decode()

    client_as(checker).post(act(settlement_of(order), "approve"), DIALOG)
    assert "Settlement status: Approved" in text_of(client_as(checker).get(order_page(order)))


def test_the_order_page_says_why_there_is_no_settlement(checker, maker):
    no_partner = example_order(maker, partner=PartnerFactory(name="No Deal LLP"))
    assert "Settlement status: None" in text_of(client_as(checker).get(order_page(no_partner)))
    assert (
        "No Deal LLP has no revenue-share agreement for UK company formation (nor a general one) in force on"
        in text_of(client_as(checker).get(order_page(no_partner)))
    )

    open_order = example_order(maker, end=False)
    assert f"{open_order.number} has not ended" in text_of(client_as(checker).get(order_page(open_order)))


def test_calculate_settlement_on_the_order_page_is_offered_once_the_order_ended(checker, maker):
    partner = PartnerFactory(name="Late Deal LLP")
    order = example_order(maker, partner=partner)
    client = client_as(checker)
    button = f"/admin/orders/order/{order.pk}/settle/"
    assert button in client.get(order_page(order)).content.decode()

    nothing = client.post(button, DIALOG)
    assert messages_of(nothing)[0].startswith("No settlement: Late Deal LLP has no revenue-share agreement")

    revenue_share_agreement_create(actor=None, partner=partner, percentage=D("30"), valid_from=date(2026, 1, 1))
    created = client.post(button, DIALOG)
    settlement = settlement_of(order)
    assert settlement.amount == D("291.00")
    assert messages_of(created)[-1:] == [
        f"{settlement} calculated for Late Deal LLP: EUR\xa0291.00; another Finance user approves it."
    ]
    assert created["Location"] == f"{order_page(order)}#settlement"

    open_order = example_order(maker, end=False)
    assert f"/admin/orders/order/{open_order.pk}/settle/" not in client.get(order_page(open_order)).content.decode()


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.CUSTOMER_SUCCESS])
def test_operations_sales_and_cs_see_no_settlement_anywhere_in_the_admin(make_user, maker, role):
    order = example_order(maker)
    order.customer.csm = make_user(Role.CUSTOMER_SUCCESS, email="csm@x.example")
    order.customer.save()
    user = order.customer.csm if role == Role.CUSTOMER_SUCCESS else make_user(role)
    client = client_as(user)
    settlement = settlement_of(order)

    page = client.get(order_page(order))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'data-testid="settlement"' not in content
    assert "Settlement status" not in content
    assert "291.00" not in content
    assert f"/admin/orders/order/{order.pk}/settle/" not in content
    assert client.get(LIST).status_code == 403
    assert client.get(detail(settlement)).status_code in (403, 404)
    assert client.post(act(settlement, "approve"), DIALOG).status_code in (403, 404)
    assert client.post(f"/admin/orders/order/{order.pk}/settle/", DIALOG).status_code == 403
    settlement.refresh_from_db()
    assert settlement.status == Settlement.Status.CALCULATED


def test_a_correction_is_listed_as_such(checker, maker, order):
    settlement = settlement_of(order)
    client_as(checker).post(act(settlement, "approve"), DIALOG)
    order_credit(actor=maker, order=order, amount=D("120.00"), reason="Goodwill")
    correction = settlement_of(order)
    assert correction.sequence == 2 and correction.amount < 0
    page = text_of(client_as(checker).get(LIST))
    assert f"{order.number} Correction #2" in page
    assert f"-EUR {-correction.amount:,}" in page
