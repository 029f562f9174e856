"""Invoices through approvals: rules, maker-checker, revert, and month-end routing (issue: approvals)."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.roles import Role
from approvals.models import ApprovalAction, ApprovalRequest
from approvals.registry import handler_for
from approvals.selectors import approval_reroute_choices
from approvals.services import (
    ApprovalNotAllowed,
    approval_approve,
    approval_reject,
    approval_reroute,
    approval_revert,
    approval_submit,
    approval_submit_many,
    open_steps,
    request_for,
)
from billing_project.errors import Conflict, DomainError
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.approval import invoice_approval_rule
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import InvoiceNotEditable, invoice_create_manual, invoice_issue
from ledger.services.month_end import month_end_run

pytestmark = pytest.mark.django_db
LINE = [{"description": "Service", "quantity": D(1), "unit_price": D(100)}]


@pytest.fixture
def people(people, make_user):
    return {
        **people,
        "finance2": make_user(Role.FINANCE, email="fin2@x.example"),
        "ops": make_user(Role.OPERATIONS, email="ops@x.example"),
    }


def draft_for(people, rule="csm", threshold=None, auto_issue=False):
    customer = CustomerFactory(csm=people["csm"])
    billing_config_update(
        actor=None, customer=customer, approval_rule=rule, sales_approval_above=threshold, auto_issue=auto_issue
    )
    return invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)


def test_a_draft_that_needs_approval_cannot_be_issued_directly(people):
    invoice = draft_for(people)

    with pytest.raises(InvoiceNotEditable, match="needs approval"):
        invoice_issue(actor=people["finance"], invoice=invoice)


@pytest.mark.parametrize(("who", "allowed"), [("finance", True), ("csm", False), ("sales", False), ("ops", False)])
def test_who_may_submit(people, who, allowed):
    invoice = draft_for(people)

    if allowed:
        assert approval_submit(actor=people[who], target=invoice).status == ApprovalRequest.Status.PENDING
        assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PENDING_APPROVAL
    else:
        with pytest.raises(ApprovalNotAllowed, match="role"):
            approval_submit(actor=people[who], target=invoice)


@pytest.mark.parametrize(
    ("rule", "who", "allowed"),
    [
        ("csm", "csm", True),
        ("csm", "other_cs", False),
        ("csm", "sales", False),
        ("csm", "finance2", False),
        ("cs_or_sales", "csm", True),
        ("cs_or_sales", "other_cs", True),
        ("cs_or_sales", "sales", True),
        ("cs_or_sales", "ops", False),
    ],
)
def test_who_may_approve_and_reject_under_each_rule(people, rule, who, allowed):
    for decide in (approval_approve, approval_reject):
        invoice = draft_for(people, rule=rule)
        request = approval_submit(actor=people["finance"], target=invoice)
        if allowed:
            assert decide(actor=people[who], request=request, comment="ok").status != ApprovalRequest.Status.PENDING
        else:
            with pytest.raises(ApprovalNotAllowed, match="not an approver"):
                decide(actor=people[who], request=request, comment="ok")


def test_approval_by_the_csm_issues_when_configured(people, django_capture_on_commit_callbacks):
    invoice = draft_for(people, auto_issue=True)
    with django_capture_on_commit_callbacks(execute=True):
        request = approval_submit(actor=people["finance"], target=invoice)
    assert [m.to for m in mail.outbox] == [["csm@x.example"]]  # the approver hears of it

    with django_capture_on_commit_callbacks(execute=True):
        approval_approve(actor=people["csm"], request=request, comment="Looks right")

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED and invoice.number
    assert any(m.to == ["fin@x.example"] and m.subject.startswith("Approved") for m in mail.outbox)


def test_without_auto_issue_an_approved_invoice_waits_for_finance(people):
    invoice = draft_for(people)
    approval_approve(actor=people["csm"], request=approval_submit(actor=people["finance"], target=invoice))

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.APPROVED
    assert invoice_issue(actor=people["finance"], invoice=invoice).status == Invoice.Status.ISSUED


def test_above_the_threshold_a_sales_approval_is_needed_as_well(people):
    invoice = draft_for(people, threshold=D("50.00"))  # total 100.00
    request = approval_submit(actor=people["finance"], target=invoice)

    approval_approve(actor=people["csm"], request=request)
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.PENDING
    with pytest.raises(ApprovalNotAllowed):
        approval_approve(actor=people["csm"], request=request)  # the CSM cannot give the Sales approval too
    approval_approve(actor=people["sales"], request=request)

    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.APPROVED
    assert [step["name"] for step in request.rule["steps"]] == ["csm", "sales"]


def test_below_the_threshold_one_approval_is_enough(people):
    invoice = draft_for(people, threshold=D("500.00"))
    request = approval_submit(actor=people["finance"], target=invoice)

    assert approval_approve(actor=people["csm"], request=request).status == ApprovalRequest.Status.APPROVED


def test_nobody_approves_what_they_submitted(people, make_user):
    both = make_user(Role.FINANCE, Role.SALES)
    invoice = draft_for(people, rule="cs_or_sales")
    request = approval_submit(actor=both, target=invoice)

    with pytest.raises(ApprovalNotAllowed, match="maker-checker"):
        approval_approve(actor=both, request=request)


def test_rejecting_needs_a_comment_and_sends_the_invoice_back(people):
    invoice = draft_for(people)
    request = approval_submit(actor=people["finance"], target=invoice)

    with pytest.raises(DomainError, match="comment is required"):
        approval_reject(actor=people["csm"], request=request, comment="  ")
    approval_reject(actor=people["csm"], request=request, comment="Wrong period")

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.REJECTED and invoice.is_editable
    again = approval_submit(actor=people["finance"], target=invoice)  # fixed and resubmitted
    assert again.pk != request.pk and again.status == ApprovalRequest.Status.PENDING
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.WITHDRAWN


def test_a_decision_is_final_until_reverted_and_reverting_reopens(people):
    invoice = draft_for(people)
    request = approval_submit(actor=people["finance"], target=invoice)
    approval_reject(actor=people["csm"], request=request, comment="Wrong period")

    with pytest.raises(Conflict, match="already rejected"):
        approval_approve(actor=people["csm"], request=request)
    with pytest.raises(DomainError, match="comment is required"):
        approval_revert(actor=people["csm"], request=request, comment="")
    with pytest.raises(ApprovalNotAllowed, match="who made a decision"):
        approval_revert(actor=people["other_cs"], request=request, comment="not mine")
    approval_revert(actor=people["csm"], request=request, comment="Period was right after all")

    invoice.refresh_from_db()
    assert (request_for(invoice).status, invoice.status) == ("pending", Invoice.Status.PENDING_APPROVAL)
    approval_approve(actor=people["csm"], request=request, comment="ok")
    kinds = list(ApprovalAction.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds == ["submitted", "rejected", "reverted", "approved"]


def test_a_withdrawn_requests_rejection_cannot_be_reverted(people):
    """A bill rejected and resubmitted has a new request; reverting the old rejection (a revert that raced the
    resubmission) is refused instead of reopening a second request for the bill."""
    invoice = draft_for(people)
    request = approval_submit(actor=people["finance"], target=invoice)
    approval_reject(actor=people["csm"], request=request, comment="Wrong period")
    again = approval_submit(actor=people["finance"], target=Invoice.objects.get(pk=invoice.pk))

    with pytest.raises(Conflict, match="withdrawn"):
        approval_revert(actor=people["csm"], request=request, comment="Period was right after all")
    assert request_for(invoice) == again and again.status == ApprovalRequest.Status.PENDING


def test_an_issued_invoices_approval_cannot_be_reverted(people):
    invoice = draft_for(people)
    request = approval_submit(actor=people["finance"], target=invoice)
    approval_approve(actor=people["csm"], request=request)
    invoice_issue(actor=people["finance"], invoice=Invoice.objects.get(pk=invoice.pk))

    with pytest.raises(Conflict, match="already been issued"):
        approval_revert(actor=people["csm"], request=request, comment="too late")


def test_actions_are_append_only(people):
    request = approval_submit(actor=people["finance"], target=draft_for(people))
    action = request.actions.get()

    with pytest.raises(PermissionError):
        action.save()
    with pytest.raises(PermissionError):
        ApprovalAction.objects.filter(pk=action.pk).update(comment="x")
    with pytest.raises(PermissionError):
        action.delete()


def test_emails_are_sent_only_after_commit(people, django_capture_on_commit_callbacks):
    invoice = draft_for(people)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        approval_submit(actor=people["finance"], target=invoice)
    assert mail.outbox == [] and len(callbacks) == 1


@pytest.mark.parametrize(
    ("rule", "csm", "expected"),
    [
        ("csm", "csm", [["csm@x.example"]]),
        ("csm", "gone", [[]]),  # a CSM made inactive since the rule was set: nobody is told
        ("cs_or_sales", "csm", [["csm@x.example", "sales@x.example"]]),  # the CSM alone among CS users
        ("cs_or_sales", None, [["sales@x.example"]]),  # no CSM: no CS user sees the customer, Sales only
    ],
)
def test_who_hears_of_a_submission_one_by_one_or_in_bulk(people, make_user, rule, csm, expected):
    people = people | {"gone": make_user(Role.CUSTOMER_SUCCESS, Role.SALES, email="gone@x.example", is_active=False)}
    customer = CustomerFactory(csm=people["csm"] if csm else None)
    billing_config_update(actor=None, customer=customer, approval_rule=rule)
    Customer.objects.filter(pk=customer.pk).update(csm=people.get(csm))
    customer.refresh_from_db()
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)
    handler, steps = handler_for(Invoice), invoice_approval_rule(invoice).steps

    assert [handler.notify_addresses(invoice, step) for step in steps] == expected
    assert handler.notify_addresses_many([(invoice, step) for step in steps]) == expected


def test_month_end_routes_each_customer_by_its_rule(people, import_usage):
    service = ServiceFactory()
    expectations = {}
    for name, rule, threshold, auto_issue, require_csm, expected in [
        ("none-draft", "none", None, False, False, Invoice.Status.DRAFT),
        ("none-issued", "none", None, True, False, Invoice.Status.ISSUED),
        ("csm", "csm", None, True, False, Invoice.Status.PENDING_APPROVAL),
        ("flag", "none", None, True, True, Invoice.Status.PENDING_APPROVAL),  # require_csm_approval maps to csm
        ("cs-or-sales", "cs_or_sales", None, True, False, Invoice.Status.PENDING_APPROVAL),
        ("threshold-over", "none", D("1.00"), True, False, Invoice.Status.PENDING_APPROVAL),
        ("threshold-under", "none", D("1000.00"), True, False, Invoice.Status.ISSUED),
    ]:
        customer = CustomerFactory(client_id=name.upper(), csm=people["csm"], require_csm_approval=require_csm)
        PriceAgreementFactory(customer=customer, service=service, unit_price=D(1), valid_from=date(2026, 1, 1))
        billing_config_update(
            actor=None, customer=customer, approval_rule=rule, sales_approval_above=threshold, auto_issue=auto_issue
        )
        import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
        expectations[customer.pk] = (expected, rule)

    run = month_end_run(actor=people["finance"], period=date(2026, 10, 1))

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {pk: expected for pk, (expected, _) in expectations.items()}
    assert (run.invoices_submitted, run.invoices_issued, run.failures) == (4, 2, [])
    threshold_request = request_for(Invoice.objects.get(customer__client_id="THRESHOLD-OVER"))
    assert [step["name"] for step in threshold_request.rule["steps"]] == ["sales"]
    flag_request = request_for(Invoice.objects.get(customer__client_id="FLAG"))
    assert flag_request.rule["steps"][0]["users"] == [people["csm"].pk]


@pytest.mark.skipif(
    __import__("django.db").db.connection.vendor != "postgresql", reason="row locks between connections: PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_leave_one_consistent_decision(people):
    import threading

    from django.db import connection

    invoice = draft_for(people, rule="cs_or_sales")
    request = approval_submit(actor=people["finance"], target=invoice)
    barrier = threading.Barrier(2)
    outcomes = {}

    def decide(who, action):
        try:
            barrier.wait(timeout=10)
            action(actor=people[who], request=request, comment="at once")
            outcomes[who] = "done"
        except (Conflict, ApprovalNotAllowed) as error:
            outcomes[who] = error.code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=("csm", approval_approve)),
        threading.Thread(target=decide, args=("sales", approval_reject)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["already_decided", "done"]
    request.refresh_from_db()
    decisions = request.actions.exclude(kind="submitted")
    assert decisions.count() == 1
    invoice.refresh_from_db()
    expected = {"approved": Invoice.Status.APPROVED, "rejected": Invoice.Status.REJECTED}
    assert invoice.status == expected[decisions.get().kind] and request.status == decisions.get().kind


# A rule nobody can satisfy is refused at submit, saying what to fix (issue 10, point 4). The states below can no
# longer be saved through the services (see test_billing.py); they arise when a user changes after the fact, or
# were saved before that check, and are set here with a raw update.


def _legacy(customer, **fields):
    Customer.objects.filter(pk=customer.pk).update(**fields)
    customer.refresh_from_db()


def _nobody_can_approve(people, make_user, case: str) -> Invoice:
    people["csm"].full_name = "Casey Success"
    people["csm"].save()
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    if case == "no csm":
        billing_config_update(actor=None, customer=customer, approval_rule="csm")
        _legacy(customer, csm=None)
    elif case == "require flag, no csm":
        _legacy(customer, csm=None, require_csm_approval=True)
    elif case == "csm inactive":
        billing_config_update(actor=None, customer=customer, approval_rule="csm")
        people["csm"].is_active = False
        people["csm"].save()
    elif case == "csm left customer success":
        billing_config_update(actor=None, customer=customer, approval_rule="csm")
        people["csm"].groups.set([Group.objects.get(name=Role.SALES)])
    elif case == "cs or sales, no csm and no sales":
        billing_config_update(actor=None, customer=customer, approval_rule="cs_or_sales")
        _legacy(customer, csm=None)
        people["sales"].is_active = False
        people["sales"].save()
    elif case == "threshold, no sales":
        billing_config_update(actor=None, customer=customer, approval_rule="csm", sales_approval_above=D("50.00"))
        people["sales"].groups.clear()
    return invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)


NOBODY = {
    "no csm": "SOYLENT-010 has no CSM: set one on the customer or change its approval rule.",
    "require flag, no csm": "SOYLENT-010 has no CSM: set one on the customer or change its approval rule.",
    "csm inactive": "SOYLENT-010's CSM, Casey Success <csm@x.example>, is inactive: set another CSM on the customer "
    "or change its approval rule.",
    "csm left customer success": "SOYLENT-010's CSM, Casey Success <csm@x.example>, is no longer in Customer "
    "Success: set another CSM on the customer or change its approval rule.",
    "cs or sales, no csm and no sales": "Nobody can approve SOYLENT-010's bills as Customer Success or Sales: it has "
    "no CSM who can, and nobody is active in Sales. Set its CSM on the customer, give someone the Sales role, or "
    "change its approval rule.",
    "threshold, no sales": "SOYLENT-010's bill of EUR\xa0100.00 is above its Sales approval threshold, and nobody is "
    "active in Sales to approve it: give someone the Sales role, or change the threshold in its billing "
    "configuration.",
}


@pytest.mark.parametrize("case", NOBODY)
def test_submitting_under_a_rule_nobody_can_satisfy_is_refused_saying_what_to_fix(people, make_user, case):
    invoice = _nobody_can_approve(people, make_user, case)

    with pytest.raises(Conflict) as refusal:
        approval_submit(actor=people["finance"], target=invoice)

    assert (refusal.value.code, refusal.value.message) == ("no_approver", NOBODY[case])
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DRAFT
    assert not ApprovalRequest.objects.exists() and not ApprovalAction.objects.exists()


def test_a_batch_with_a_bill_nobody_can_approve_is_refused_whole(people, make_user):
    fine = draft_for(people)
    stuck = _nobody_can_approve(people, make_user, "no csm")

    with pytest.raises(Conflict, match="SOYLENT-010 has no CSM"):
        approval_submit_many(actor=people["finance"], targets=[fine, stuck])

    assert not ApprovalRequest.objects.exists()


def test_the_only_approver_cannot_be_who_submits(people, make_user):
    csm_in_finance = make_user(Role.CUSTOMER_SUCCESS, Role.FINANCE, email="both@x.example", full_name="")
    customer = CustomerFactory(client_id="SOYLENT-010", csm=csm_in_finance)
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)

    with pytest.raises(Conflict, match="SOYLENT-010's CSM, both@x.example, submitted it and cannot approve it too"):
        approval_submit(actor=csm_in_finance, target=invoice)
    assert approval_submit(actor=people["finance"], target=invoice).status == ApprovalRequest.Status.PENDING


def test_a_cs_or_sales_bill_without_a_csm_goes_to_sales(people):
    customer = CustomerFactory(csm=None)
    billing_config_update(actor=None, customer=customer, approval_rule="cs_or_sales")
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)

    request = approval_submit(actor=people["finance"], target=invoice)

    assert approval_approve(actor=people["sales"], request=request).status == ApprovalRequest.Status.APPROVED


def test_month_end_leaves_a_bill_nobody_can_approve_as_a_draft_and_says_why_on_the_run(people, make_user, import_usage):
    service = ServiceFactory()
    stuck = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    fine = CustomerFactory(client_id="ACME-001", csm=people["csm"])
    for customer in (stuck, fine):
        PriceAgreementFactory(customer=customer, service=service, unit_price=D(1), valid_from=date(2026, 1, 1))
        billing_config_update(actor=None, customer=customer, approval_rule="csm")
        import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
    _legacy(stuck, csm=None)

    run = month_end_run(actor=None, period=date(2026, 10, 1))

    assert Invoice.objects.get(customer=stuck).status == Invoice.Status.DRAFT
    assert Invoice.objects.get(customer=fine).status == Invoice.Status.PENDING_APPROVAL
    assert (run.invoices_created, run.invoices_submitted, run.customers_done) == (2, 1, 2)
    assert run.failures == [
        {"stage": "route", "customers": [stuck.pk], "error": f"NoApprover: {NOBODY['no csm']}"},
    ]


# An Admin re-routes an open request to a rule someone can satisfy (issue 10, point 4).


@pytest.fixture
def stuck(people, make_user):
    """A bill for SOYLENT-010 (100.00 EUR) submitted under "the CSM, and Sales above 50.00", whose CSM has left
    since: nobody can give the CSM's approval."""
    people["csm"].full_name = "Casey Success"
    people["csm"].save()
    people["sales"].full_name = "Sam Sales"
    people["sales"].save()
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm", sales_approval_above=D("50.00"))
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)
    request = approval_submit(actor=people["finance"], target=invoice)
    people["csm"].is_active = False
    people["csm"].save()
    return request


def test_an_admin_reroutes_a_request_nobody_can_finish_and_it_is_recorded(people, make_user, stuck):
    admin = make_user(Role.ADMIN, email="admin@x.example")
    old_rule = stuck.rule

    request = approval_reroute(actor=admin, request=stuck, route="cs_or_sales", comment="Casey has left")

    action = request.actions.get(kind=ApprovalAction.Kind.REROUTED)
    assert (action.actor, action.comment, action.old_rule) == (admin, "Casey has left", old_rule)
    assert action.new_rule == request.rule == ApprovalRequest.objects.get(pk=stuck.pk).rule
    assert [(step["name"], step["groups"]) for step in request.rule["steps"]] == [
        ("cs_or_sales", [Role.CUSTOMER_SUCCESS.value, Role.SALES.value]),
        ("sales", [Role.SALES.value]),
    ]
    assert request.status == ApprovalRequest.Status.PENDING
    assert request.history.latest().history_user == admin
    approval_approve(actor=people["sales"], request=request)
    approver = make_user(Role.SALES, email="sales2@x.example")
    assert approval_approve(actor=approver, request=request).status == ApprovalRequest.Status.APPROVED
    assert Invoice.objects.get(pk=stuck.target_id).status == Invoice.Status.APPROVED


def test_approvals_given_for_steps_the_new_route_keeps_still_count(people, make_user, stuck):
    approval_approve(actor=people["sales"], request=stuck, comment="Sales is fine")  # the "sales" step
    admin, approver = make_user(Role.ADMIN), make_user(Role.SALES, email="sales2@x.example")

    rerouted = approval_reroute(actor=admin, request=stuck, route="cs_or_sales", comment="Casey has left")

    assert [step["name"] for step in open_steps(rerouted)] == ["cs_or_sales"]
    assert approval_approve(actor=approver, request=rerouted).status == ApprovalRequest.Status.APPROVED


def test_a_named_approver_replaces_every_step_and_earlier_approvals_are_asked_again(people, make_user, stuck):
    approval_approve(actor=people["sales"], request=stuck)
    admin = make_user(Role.ADMIN)

    rerouted = approval_reroute(
        actor=admin, request=stuck, route=f"approver:{people['sales'].pk}", comment="Sam decides this one"
    )

    assert rerouted.rule["label"] == "Sam Sales <sales@x.example> alone, instead of every step"
    assert [(step["name"], step["users"]) for step in open_steps(rerouted)] == [("approver", [people["sales"].pk])]
    with pytest.raises(Conflict, match="no approval or rejection to revert"):
        approval_revert(actor=people["sales"], request=rerouted, comment="set aside already")
    assert approval_approve(actor=people["sales"], request=rerouted).status == ApprovalRequest.Status.APPROVED


def test_the_routes_offered_are_those_someone_can_satisfy_other_than_the_current_one(people, make_user, stuck):
    admin = make_user(Role.ADMIN, email="admin@x.example", full_name="Ada Admin")
    other_admin = make_user(Role.ADMIN, email="admin2@x.example", full_name="Alan Admin")

    choices = approval_reroute_choices(actor=admin, request=stuck)

    assert choices == [
        ("cs_or_sales", "Customer Success or Sales + Sales (total above EUR\xa050.00)"),
        (f"approver:{other_admin.pk}", "Alan Admin <admin2@x.example> alone, instead of every step"),
        (f"approver:{people['sales'].pk}", "Sam Sales <sales@x.example> alone, instead of every step"),
    ]  # not the CSM's (inactive), not the Admin re-routing, not Finance
    assert approval_reroute_choices(actor=people["sales"], request=stuck) == []  # an Admin's


def test_with_a_new_csm_the_csm_route_goes_to_them(people, stuck, make_user):
    Customer.objects.filter(pk=Invoice.objects.get(pk=stuck.target_id).customer_id).update(csm=people["other_cs"])
    admin = make_user(Role.ADMIN)

    assert ("csm", f"The customer's CSM, {people['other_cs']} + Sales (total above EUR\xa050.00)") in (
        approval_reroute_choices(actor=admin, request=stuck)
    )
    rerouted = approval_reroute(actor=admin, request=stuck, route="csm", comment="Casey's customers went to Chris")
    approval_approve(actor=people["other_cs"], request=rerouted)

    assert [step["name"] for step in open_steps(rerouted)] == ["sales"]


@pytest.mark.parametrize(
    ("who", "route", "comment", "error", "match"),
    [
        ("sales", "cs_or_sales", "why", ApprovalNotAllowed, "Only an Admin re-routes"),
        ("admin", "cs_or_sales", "  ", DomainError, "A comment is required to re-route"),
        ("admin", "csm", "why", DomainError, "not a route this request can take"),  # its CSM is inactive
        ("admin", "approver:admin", "why", DomainError, "not a route this request can take"),  # not oneself
        ("admin", "nonsense", "why", DomainError, "not a route this request can take"),
    ],
)
def test_a_refused_reroute_changes_nothing(people, make_user, stuck, who, route, comment, error, match):
    people = people | {"admin": make_user(Role.ADMIN)}
    route = route.replace("admin", str(people["admin"].pk))

    with pytest.raises(error, match=match) as refusal:
        approval_reroute(actor=people[who], request=stuck, route=route, comment=comment)

    if "not a route" in match:
        assert refusal.value.fields == {"route": ["Choose one of the routes offered for this request."]}
    assert ApprovalRequest.objects.get(pk=stuck.pk).rule == stuck.rule
    assert not ApprovalAction.objects.filter(kind=ApprovalAction.Kind.REROUTED).exists()


def test_only_a_pending_request_is_rerouted(people, make_user):
    request = approval_submit(actor=people["finance"], target=draft_for(people, rule="cs_or_sales"))
    approval_reject(actor=people["sales"], request=request, comment="Wrong period")

    with pytest.raises(Conflict, match="only one waiting for approval is re-routed"):
        approval_reroute(actor=make_user(Role.ADMIN), request=request, route="csm", comment="why")


def test_a_route_whose_steps_are_all_approved_already_is_neither_offered_nor_taken(people, make_user):
    customer = CustomerFactory(csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm", sales_approval_above=D("50"))
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)
    request = approval_submit(actor=people["finance"], target=invoice)
    approval_approve(actor=people["csm"], request=request)  # the CSM's step; Sales is still to come
    billing_config_update(actor=None, customer=customer, sales_approval_above=None)
    admin = make_user(Role.ADMIN)

    routes = dict(approval_reroute_choices(actor=admin, request=request))

    assert "cs_or_sales" in routes and "csm" not in routes  # the CSM alone: approved already, by nobody asked
    with pytest.raises(DomainError, match="not a route this request can take"):
        approval_reroute(actor=admin, request=request, route="csm", comment="Threshold dropped")
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.PENDING


@pytest.mark.skipif(
    __import__("django.db").db.connection.vendor != "postgresql", reason="row locks between connections: PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_a_reroute_and_an_approval_at_the_same_moment_leave_one_consistent_request(people, make_user):
    import threading

    from django.db import connection

    admin = make_user(Role.ADMIN)
    request = approval_submit(actor=people["finance"], target=draft_for(people))  # the CSM's approval only
    route = f"approver:{people['sales'].pk}"
    barrier = threading.Barrier(2)
    outcomes = {}

    def act(who, call):
        try:
            barrier.wait(timeout=10)
            call()
            outcomes[who] = "done"
        except (Conflict, ApprovalNotAllowed) as error:
            outcomes[who] = error.code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=("csm", lambda: approval_approve(actor=people["csm"], request=request))),
        threading.Thread(
            target=act,
            args=("admin", lambda: approval_reroute(actor=admin, request=request, route=route, comment="at once")),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    request.refresh_from_db()
    kinds = list(request.actions.exclude(kind="submitted").values_list("kind", flat=True))
    if outcomes == {"csm": "done", "admin": "already_decided"}:
        assert (request.status, kinds, request.rule["name"]) == ("approved", ["approved"], "csm")
    else:
        assert outcomes == {"admin": "done", "csm": "not_an_approver"}
        assert (request.status, kinds, request.rule["name"]) == ("pending", ["rerouted"], "approver")
