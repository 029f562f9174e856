"""The dashboard's recent activity (reports.activity): what happened, by whom, scoped to what the user may see."""

from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.roles import Role
from approvals.models import ApprovalAction, ApprovalRequest
from catalog.tests.factories import CustomerFactory
from ledger.models import Invoice
from orders.models import Order, OrderStatusHistory
from reports.activity import recent_activity
from reports.kpis import scope_for
from reports.tests.dashboard_data import NOW, at, invoice, payment
from reports.tests.order_data import make_order

pytestmark = pytest.mark.django_db


def when(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def issue(bill: Invoice, *, actor, minutes: int) -> None:
    """Number and issue a draft as the issue service leaves it: one more version, by `actor`."""
    with time_machine.travel(when(minutes), tick=False):
        bill.number, bill.status, bill.issued_at = f"INV-2026-{bill.pk:06d}", Invoice.Status.ISSUED, when(minutes)
        bill._history_user = actor
        bill.save()


@pytest.fixture
def story(make_user):
    finance = make_user(Role.FINANCE, full_name="Fiona Finance")
    csm = make_user(Role.CUSTOMER_SUCCESS, full_name="Casey Success")
    mine = CustomerFactory(name="Acme Payments", csm=csm)
    other = CustomerFactory(name="Umbrella Verify")
    with time_machine.travel(when(100), tick=False):
        bill = invoice(mine, "1234.50", period=date(2026, 11, 1))
        other_bill = invoice(other, "99.00")
    issue(bill, actor=finance, minutes=50)
    issue(other_bill, actor=finance, minutes=45)
    with time_machine.travel(when(40), tick=False):
        bill.amount_paid = bill.total  # paid later: a numbered version again, not a second issue
        bill.status = Invoice.Status.PAID
        bill.save()
        paid = payment(mine, "1234.50", received=at(date(2026, 12, 14)), actor=finance)
    request = ApprovalRequest.objects.create(
        target_type=ContentType.objects.get_for_model(Invoice),
        target_id=bill.pk,
        summary="Draft invoice for Acme Payments, November 2026",
        rule={"name": "csm", "label": "CSM", "steps": []},
        scope=mine.client_id,
    )
    with time_machine.travel(when(30), tick=False):
        ApprovalAction.objects.create(request=request, actor=csm, kind=ApprovalAction.Kind.APPROVED)
    order = make_order(mine, status=Order.Status.COMPLETED, created="2026-12-01 09:00", ended="2026-12-15 11:50")
    OrderStatusHistory.objects.create(
        order=order, from_status=Order.Status.IN_PROGRESS, to_status=Order.Status.COMPLETED, at=when(10)
    )
    other_order = make_order(other, status=Order.Status.COMPLETED, created="2026-12-01 09:00", ended="2026-12-15 11")
    OrderStatusHistory.objects.create(
        order=other_order, from_status=Order.Status.IN_PROGRESS, to_status=Order.Status.COMPLETED, at=when(60)
    )
    return {
        "finance": finance,
        "csm": csm,
        "bill": bill,
        "other_bill": other_bill,
        "payment": paid,
        "order": order,
        "other_order": other_order,
    }


def feed(user):
    return [(item.who, item.text) for item in recent_activity(user, scope_for(user))]


def test_finance_sees_every_kind_newest_first_with_names(story):
    assert feed(story["finance"]) == [
        ("System", f"Order {story['order'].number} completed for Acme Payments"),
        ("Casey Success", "Approved: Draft invoice for Acme Payments, November 2026"),
        ("Fiona Finance", "Payment of EUR\xa01,234.50 from Acme Payments"),
        ("Fiona Finance", f"Invoice {story['other_bill'].number} issued to Umbrella Verify, EUR\xa099.00"),
        ("Fiona Finance", f"Invoice {story['bill'].number} issued to Acme Payments, EUR\xa01,234.50"),
        ("System", f"Order {story['other_order'].number} completed for Umbrella Verify"),
    ]


def test_each_item_links_to_its_page(story):
    items = recent_activity(story["finance"], scope_for(story["finance"]))

    assert [item.url for item in items[:5]] == [
        reverse("admin:orders_order_change", args=[story["order"].pk]),
        reverse("admin:ledger_invoice_change", args=[story["bill"].pk]),
        reverse("admin:ledger_payment_change", args=[story["payment"].pk]),
        reverse("admin:ledger_invoice_change", args=[story["other_bill"].pk]),
        reverse("admin:ledger_invoice_change", args=[story["bill"].pk]),
    ]


def test_csm_sees_only_their_customers(story):
    texts = [text for _, text in feed(story["csm"])]

    assert len(texts) == 4
    assert all("Umbrella" not in text for text in texts)


def test_operations_sees_only_orders_completed(story, make_user):
    texts = [text for _, text in feed(make_user(Role.OPERATIONS))]

    assert texts == [
        f"Order {story['order'].number} completed for Acme Payments",
        f"Order {story['other_order'].number} completed for Umbrella Verify",
    ]


def test_the_page_shows_the_one_date_time_format(client, story):
    with time_machine.travel(NOW, tick=False):
        client.force_login(story["finance"])
        html = client.get(reverse("admin:index")).content.decode()

    assert "Casey Success · 15 Dec 2026, 11:30" in html
    assert 'id="recent-activity"' in html


def test_feed_keeps_the_newest_ten(story):
    bills = [invoice(CustomerFactory(), "1.00") for _ in range(12)]
    for minutes, bill in enumerate(bills, start=1):
        issue(bill, actor=story["finance"], minutes=minutes)

    items = recent_activity(story["finance"], scope_for(story["finance"]))

    assert len(items) == 10
    assert items[0].when == when(1)
    assert [item.when for item in items] == sorted((item.when for item in items), reverse=True)
