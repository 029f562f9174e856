"""approval_submit_many: a batch of fresh targets submitted at once (month-end's drafts), as approval_submit
would one by one, in a fixed number of queries, with one email per approver after commit."""

from decimal import Decimal as D

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from approvals.models import ApprovalAction, ApprovalRequest
from approvals.registry import ApprovalHandler, bulk, handler_for
from approvals.services import ApprovalNotAllowed, approval_submit, approval_submit_many
from billing_project.errors import Conflict
from catalog.tests.factories import CustomerFactory
from ledger.approval import invoice_approval_rule
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual

pytestmark = pytest.mark.django_db
LINE = [{"description": "Service", "quantity": D(1), "unit_price": D(100)}]  # total 100.00, no tax


@pytest.fixture
def people(people, make_user):
    return {**people, "gone": make_user(Role.SALES, Role.CUSTOMER_SUCCESS, email="gone@x.example", is_active=False)}


@pytest.fixture
def draft(people):
    """draft(rule=..., csm=..., threshold=...) -> a new draft of a new customer under that rule."""

    def make(rule="csm", *, csm="csm", threshold=None) -> Invoice:
        customer = CustomerFactory(csm=people.get(csm))
        billing_config_update(actor=None, customer=customer, approval_rule=rule, sales_approval_above=threshold)
        return invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)

    return make


def test_each_target_gets_a_pending_request_with_its_rule_frozen_and_a_submitted_action(people, draft):
    invoices = [draft("csm"), draft("cs_or_sales"), draft("cs_or_sales", csm=None), draft("csm", threshold=D("50.00"))]

    requests = approval_submit_many(actor=people["finance"], targets=invoices, comment="October")

    assert [request.target_id for request in requests] == [invoice.pk for invoice in invoices]
    invoice_type = ContentType.objects.get_for_model(Invoice)
    for invoice, request in zip(invoices, requests, strict=True):
        stored = ApprovalRequest.objects.get(target_type=invoice_type, target_id=invoice.pk)
        assert stored.pk == request.pk and stored.status == ApprovalRequest.Status.PENDING
        assert stored.rule == invoice_approval_rule(invoice).as_json()
        assert stored.summary == handler_for(Invoice).summary(invoice)
        assert (stored.scope, stored.opened_by) == (invoice.customer.client_id, people["finance"])
        assert [(a.kind, a.actor, a.comment) for a in stored.actions.all()] == [
            ("submitted", people["finance"], "October")
        ]
        assert stored.history.get().history_user == people["finance"]
    assert [step["name"] for step in requests[3].rule["steps"]] == ["csm", "sales"]
    assert requests[2].rule["steps"][0]["groups"] == [Role.CUSTOMER_SUCCESS.value, Role.SALES.value]


def test_the_targets_become_pending_approval_with_a_history_row_naming_the_actor(people, draft):
    invoices = [draft(), draft()]

    approval_submit_many(actor=people["finance"], targets=invoices)

    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PENDING_APPROVAL
        latest = invoice.history.order_by("-history_id").first()
        assert (latest.status, latest.history_type, latest.history_user, latest.history_change_reason) == (
            Invoice.Status.PENDING_APPROVAL,
            "~",
            people["finance"],
            None,  # as a save() writes it
        )
        assert latest.updated_at == invoice.updated_at


def test_the_number_of_queries_does_not_grow_with_the_batch(people, draft):
    few, many = [draft(rule) for rule in ["csm", "cs_or_sales", "csm"]], [draft(r) for r in ["csm", "cs_or_sales"] * 15]
    approval_submit_many(actor=people["finance"], targets=[draft("cs_or_sales")])  # caches: permissions, types

    with CaptureQueriesContext(connection) as for_few:
        approval_submit_many(actor=people["finance"], targets=few)
    with CaptureQueriesContext(connection) as for_many:
        approval_submit_many(actor=people["finance"], targets=many)

    assert ApprovalRequest.objects.filter(status="pending").count() == 34
    # 3 of them read who could decide (users named, their roles, members of the roles named).
    assert len(for_many) == len(for_few) <= 17, [query["sql"][:120] for query in for_many]


def test_a_target_whose_rule_needs_no_approval_gets_no_request_and_stays_a_draft(people, draft):
    plain, needs = draft("none"), draft("csm")

    requests = approval_submit_many(actor=people["finance"], targets=[plain, needs])

    assert [request.target_id for request in requests] == [needs.pk]
    plain.refresh_from_db()
    assert plain.status == Invoice.Status.DRAFT and not ApprovalRequest.objects.filter(target_id=plain.pk).exists()


def test_a_target_with_a_current_request_fails_the_batch_and_nothing_is_submitted(people, draft):
    already, fresh = draft(), draft()
    approval_submit(actor=people["finance"], target=already)

    with pytest.raises(Conflict, match="already waiting for approval"):
        approval_submit_many(actor=people["finance"], targets=[fresh, already])

    fresh.refresh_from_db()
    assert fresh.status == Invoice.Status.DRAFT and ApprovalRequest.objects.count() == 1


def test_a_target_that_is_no_longer_a_draft_fails_the_batch(people, draft):
    gone, fresh = draft(), draft()
    Invoice.objects.filter(pk=gone.pk).update(status=Invoice.Status.CANCELLED)  # in memory it is still a draft

    with pytest.raises(Conflict, match="only a draft or a rejected invoice"):
        approval_submit_many(actor=people["finance"], targets=[fresh, gone])

    assert not ApprovalRequest.objects.exists() and not ApprovalAction.objects.exists()


def test_only_who_may_submit_each_target_submits_the_batch(people, draft):
    with pytest.raises(ApprovalNotAllowed, match="role"):
        approval_submit_many(actor=people["csm"], targets=[draft(), draft()])
    assert not ApprovalRequest.objects.exists()


def test_each_approver_gets_one_email_after_commit_listing_only_what_waits_for_them(
    people, draft, make_user, django_capture_on_commit_callbacks
):
    make_user(Role.CUSTOMER_SUCCESS, email="cs3@x.example")
    mine = [draft("csm"), draft("csm")]  # the CSM's customers: only the CSM hears
    other = draft("csm", csm="other_cs")  # another CSM's customer
    shared = draft("cs_or_sales")  # with a CSM: the CSM among CS users, and Sales
    orphan = draft("cs_or_sales", csm=None)  # no CSM: Sales only (no CS user sees the customer)
    big = draft("csm", threshold=D("50.00"))  # the CSM, then Sales above the threshold

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        requests = approval_submit_many(actor=None, targets=[*mine, other, shared, orphan, big])
    assert mail.outbox == []  # nothing before commit
    for callback in callbacks:
        callback()

    summary = {request.target_id: request.summary for request in requests}
    received = {tuple(message.to): message for message in mail.outbox}
    assert len(received) == len(mail.outbox) == 3  # one email per address
    expected = {
        "csm@x.example": [*mine, shared, big],
        "cs2@x.example": [other],
        "sales@x.example": [shared, orphan, big],
    }
    assert set(received) == {(address,) for address in expected}  # the inactive user hears nothing
    for address, invoices in expected.items():
        message = received[(address,)]
        listed = [pk for pk, text in summary.items() if text in message.body]
        assert listed == [invoice.pk for invoice in invoices], address
        assert "submitted by month-end" in message.body
    assert received[("cs2@x.example",)].subject == f"Awaiting your approval: {summary[other.pk]}"
    assert received[("csm@x.example",)].subject == "Awaiting your approval: 4 requests"


def test_an_empty_batch_does_nothing(people):
    assert approval_submit_many(actor=people["finance"], targets=[]) == []


def test_a_handler_without_bulk_forms_is_called_per_target():
    calls = []

    class OneByOne:
        def submitted(self, target, actor):
            calls.append((target, actor))

    class Declared(OneByOne, ApprovalHandler):  # inherits the protocol's stubs, which do nothing
        pass

    for handler in (OneByOne(), Declared()):
        calls.clear()
        bulk(handler, "submitted_many")(["a", "b"], "me")
        assert calls == [("a", "me"), ("b", "me")]
