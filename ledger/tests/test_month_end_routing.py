"""Month-end routing: the new drafts that need approval are submitted in one batch (approval_submit_many), with
a per-invoice fallback when the batch fails; the run's counters are exact. Auto-issue in batches:
tests/einvoice/test_month_end_issue.py."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import ApprovalAction, ApprovalRequest
from approvals.registry import handler_for
from approvals.services import approval_submit, request_for
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.approval import invoice_approval_rule
from ledger.models import BillingRun, Invoice
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
LINE = [{"description": "Service", "quantity": D(1), "unit_price": D(100)}]


@pytest.fixture
def billed(people, import_usage):
    """billed(client_id, rule, auto_issue=...) -> a customer with October usage to bill, CSM people["csm"]."""
    service = ServiceFactory()

    def make(client_id: str, rule: str, *, auto_issue=False):
        customer = CustomerFactory(client_id=client_id, csm=people["csm"])
        PriceAgreementFactory(customer=customer, service=service, unit_price=D(1), valid_from=date(2026, 1, 1))
        billing_config_update(actor=None, customer=customer, approval_rule=rule, auto_issue=auto_issue)
        import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
        return customer

    return make


@pytest.fixture
def drafts(people):
    """drafts(n, rule) -> n new drafts of new customers under that rule, and a run to route them in."""

    def make(n: int, rule: str = "csm") -> tuple[BillingRun, list[Invoice]]:
        invoices = []
        for _ in range(n):
            customer = CustomerFactory(csm=people["csm"])
            billing_config_update(actor=None, customer=customer, approval_rule=rule)
            invoices.append(invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE))
        run = BillingRun.objects.create(period=OCTOBER, started_by=people["finance"], customer_count=n)
        # As month-end hands them over: with their customers loaded.
        return run, list(
            Invoice.objects.filter(pk__in=[i.pk for i in invoices]).select_related("customer").order_by("pk")
        )

    return make


def test_month_end_submits_what_needs_approval_and_each_approver_gets_one_email(
    people, billed, django_capture_on_commit_callbacks
):
    csm_only = [billed(f"CSM-{n}", "csm") for n in range(3)]
    shared = billed("SHARED", "cs_or_sales")
    issued = billed("ISSUED", "none", auto_issue=True)
    plain = billed("PLAIN", "none")

    with django_capture_on_commit_callbacks(execute=True):
        run = month_end.month_end_run(actor=people["finance"], period=OCTOBER)

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {
        **{customer.pk: Invoice.Status.PENDING_APPROVAL for customer in [*csm_only, shared]},
        issued.pk: Invoice.Status.ISSUED,
        plain.pk: Invoice.Status.DRAFT,
    }
    assert (run.invoices_submitted, run.invoices_issued, run.failures, run.status) == (4, 1, [], "completed")
    for invoice in Invoice.objects.filter(status=Invoice.Status.PENDING_APPROVAL):
        request = request_for(invoice)
        assert request.rule == invoice_approval_rule(invoice).as_json()
        assert [(a.kind, a.actor) for a in request.actions.all()] == [("submitted", people["finance"])]
        latest = invoice.history.order_by("-history_id").first()
        assert (latest.status, latest.history_user) == (Invoice.Status.PENDING_APPROVAL, people["finance"])
    notices = [message for message in mail.outbox if message.subject.startswith("Awaiting your approval")]
    assert sorted(message.to[0] for message in notices) == ["csm@x.example", "sales@x.example"]
    (to_csm,) = [message for message in notices if message.to == ["csm@x.example"]]
    assert to_csm.subject == "Awaiting your approval: 4 requests"
    assert all(customer.name in to_csm.body for customer in [*csm_only, shared])
    (to_sales,) = [message for message in notices if message.to == ["sales@x.example"]]
    assert shared.name in to_sales.body and not any(customer.name in to_sales.body for customer in csm_only)


@pytest.mark.parametrize("recheck", [False, True])
def test_routing_takes_as_many_queries_for_twelve_drafts_as_for_three(people, drafts, recheck):
    warm_run, warm = drafts(1)
    month_end._route(warm_run, warm, people["finance"], recheck=recheck)  # caches: permissions, content types
    (few_run, few), (many_run, many) = drafts(3), drafts(12)

    with CaptureQueriesContext(connection) as for_few:
        month_end._route(few_run, few, people["finance"], recheck=recheck)
    with CaptureQueriesContext(connection) as for_many:
        month_end._route(many_run, many, people["finance"], recheck=recheck)

    assert len(for_many) == len(for_few)
    assert sum('UPDATE "ledger_billingrun"' in query["sql"] for query in for_many) == 1
    many_run.refresh_from_db()
    assert (many_run.invoices_submitted, many_run.failures) == (12, [])
    assert ApprovalRequest.objects.filter(status="pending").count() == 16


def test_a_failure_in_the_batch_falls_back_to_one_by_one_and_is_noted_on_the_run(people, billed, monkeypatch):
    good = [billed("GOOD-1", "csm"), billed("GOOD-2", "cs_or_sales")]
    bad = billed("BAD", "csm")
    handler = handler_for(Invoice)
    real_summary = handler.summary

    def summary(invoice):
        if invoice.customer_id == bad.pk:
            raise RuntimeError("cannot describe it")
        return real_summary(invoice)

    monkeypatch.setattr(handler, "summary", summary)
    run = month_end.month_end_run(actor=people["finance"], period=OCTOBER)

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {good[0].pk: "pending_approval", good[1].pk: "pending_approval", bad.pk: "draft"}
    assert run.failures == [{"stage": "route", "customers": [bad.pk], "error": "RuntimeError: cannot describe it"}]
    assert run.invoices_submitted == 2
    assert ApprovalRequest.objects.count() == ApprovalAction.objects.count() == 2


def test_a_recheck_routes_only_the_drafts_still_drafts(people, drafts):
    run, invoices = drafts(3)
    approval_submit(actor=people["finance"], target=invoices[1])  # another delivery routed it meanwhile

    month_end._route(run, invoices, people["finance"], recheck=True)  # invoices[1] is still a draft in memory

    run.refresh_from_db()
    assert (run.invoices_submitted, run.failures) == (2, [])
    assert all(Invoice.objects.get(pk=i.pk).status == Invoice.Status.PENDING_APPROVAL for i in invoices)
    assert ApprovalRequest.objects.count() == ApprovalAction.objects.count() == 3  # none twice


def test_without_recheck_an_invoice_already_submitted_is_noted_and_the_others_go_on(people, drafts):
    run, invoices = drafts(3)
    approval_submit(actor=people["finance"], target=invoices[1])

    month_end._route(run, invoices, people["finance"])

    run.refresh_from_db()
    assert run.invoices_submitted == 2
    assert [(f["stage"], f["customers"]) for f in run.failures] == [("route", [invoices[1].customer_id])]
    assert "already waiting for approval" in run.failures[0]["error"]
