"""Approving bills through the API (issue: approvals and audit): who may submit, approve, reject and revert under
each rule, the codes of every refusal, the action history in GET, idempotent replay and the two-step threshold.

States are set up through the approvals services; only the call under test goes through the API.
"""

from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from approvals.models import ApprovalAction, ApprovalRequest
from approvals.services import approval_approve, approval_reject, approval_revert, approval_submit, request_for
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual, invoice_issue

pytestmark = pytest.mark.django_db

LINE = [{"description": "Onboarding", "quantity": D(1), "unit_price": D(100)}]  # total 100.00, no tax


@pytest.fixture
def people(make_user):
    """Finance (who submits in the set-ups, and another who calls), the customers' CSM, the CSM of other
    customers, Sales and Operations."""
    return {
        "submitter": make_user(Role.FINANCE, email="submitter@x.example"),
        "finance": make_user(Role.FINANCE, email="finance@x.example"),
        "csm": make_user(Role.CUSTOMER_SUCCESS, email="csm@x.example"),
        "other_cs": make_user(Role.CUSTOMER_SUCCESS, email="other-cs@x.example"),
        "sales": make_user(Role.SALES, email="sales@x.example"),
        "operations": make_user(Role.OPERATIONS, email="ops@x.example"),
    }


def bill_for(people, rule: str = "csm", threshold: D | None = None, **config) -> Invoice:
    """A manual draft of 100.00 for a new customer whose CSM is people["csm"], under `rule`."""
    customer = CustomerFactory(csm=people["csm"])
    CustomerFactory(csm=people["other_cs"])  # other_cs is a CSM, of someone else
    billing_config_update(actor=None, customer=customer, approval_rule=rule, sales_approval_above=threshold, **config)
    return invoice_create_manual(actor=people["submitter"], customer=customer, lines=LINE)


def submitted(people, rule: str = "csm", **config) -> Invoice:
    invoice = bill_for(people, rule, **config)
    approval_submit(actor=people["submitter"], target=invoice)
    return invoice


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"]
    return body["error"]


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, invoice, comment: str = "", **extra):
    return client.post(f"/api/bills/{invoice.pk}/submit", {"comment": comment}, format="json", **extra)


def approve(client, invoice, comment: str = "", **extra):
    return client.patch(f"/api/bills/{invoice.pk}/approve", {"comment": comment}, format="json", **extra)


def reject(client, invoice, comment: str = "Wrong period", **extra):
    return client.patch(f"/api/bills/{invoice.pk}/reject", {"comment": comment}, format="json", **extra)


def revert(client, invoice, comment: str = "Decided too fast", **extra):
    return client.patch(f"/api/bills/{invoice.pk}/revert", {"comment": comment}, format="json", **extra)


def statuses(invoice) -> tuple[str, str | None]:
    """(the invoice's status, its current request's status)."""
    invoice.refresh_from_db()
    request = request_for(invoice)
    return invoice.status, request.status if request else None


# --- The role x action matrix, under both rules ------------------------------------------------------------------

CALLERS = ["finance", "csm", "other_cs", "sales", "operations", "portal", "anonymous"]

# Who decided, in the set-up of a revert: the caller that may revert it.
DECIDER = {"csm": "csm", "cs_or_sales": "sales"}
ACTIONS = {"submit": submit, "approve": approve, "reject": reject, "revert": revert}
# (invoice status, request status) once the action is done.
DONE = {
    "submit": ("pending_approval", "pending"),
    "approve": ("approved", "approved"),
    "reject": ("rejected", "rejected"),
    "revert": ("pending_approval", "pending"),
}

WRONG_ROLE, NOT_YOURS, ANONYMOUS = "403 wrong_role", "404 not_found", "401 not_authenticated"
NOT_APPROVER, NOT_YOUR_DECISION = "403 not_an_approver", "403 not_your_decision"

# A CSM of another customer gets 404 even under cs_or_sales, which names any Customer Success user: the API scopes
# a CSM to their own customers (DESIGN.md, "Roles"). See the report of this change.
MATRIX = {
    # (action, rule): finance    csm              other_cs   sales            operations  portal      anonymous
    ("submit", "csm"): ("200", WRONG_ROLE, NOT_YOURS, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("submit", "cs_or_sales"): ("200", WRONG_ROLE, NOT_YOURS, WRONG_ROLE, WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("approve", "csm"): (NOT_APPROVER, "200", NOT_YOURS, NOT_APPROVER, WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("approve", "cs_or_sales"): (NOT_APPROVER, "200", NOT_YOURS, "200", WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("reject", "csm"): (NOT_APPROVER, "200", NOT_YOURS, NOT_APPROVER, WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("reject", "cs_or_sales"): (NOT_APPROVER, "200", NOT_YOURS, "200", WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("revert", "csm"): (NOT_YOUR_DECISION, "200", NOT_YOURS, NOT_YOUR_DECISION, WRONG_ROLE, WRONG_ROLE, ANONYMOUS),
    ("revert", "cs_or_sales"): (
        NOT_YOUR_DECISION,
        NOT_YOUR_DECISION,
        NOT_YOURS,
        "200",
        WRONG_ROLE,
        WRONG_ROLE,
        ANONYMOUS,
    ),
}


def prepared(action: str, rule: str, people) -> Invoice:
    """A draft to submit, a pending bill to decide, or one decided by DECIDER[rule] to revert."""
    if action == "submit":
        return bill_for(people, rule)
    invoice = submitted(people, rule)
    if action == "revert":
        approval_approve(actor=people[DECIDER[rule]], request=request_for(invoice))
    return invoice


def caller_of(kind: str, people, invoice: Invoice):
    """The portal user is the bill's customer's: a refusal is for the role, not for the scope."""
    if kind == "portal":
        return PortalMembershipFactory(customer=invoice.customer).user
    return None if kind == "anonymous" else people[kind]


@pytest.mark.parametrize(
    ("action", "rule", "caller", "expected"),
    [
        pytest.param(action, rule, caller, expected, id=f"{action}-{rule}-{caller}")
        for (action, rule), row in MATRIX.items()
        for caller, expected in zip(CALLERS, row, strict=True)
    ],
)
def test_who_may_act_on_a_bill(action, rule, caller, expected, people, client_for):
    invoice = prepared(action, rule, people)
    user = caller_of(caller, people, invoice)
    before, actions_before = statuses(invoice), ApprovalAction.objects.count()

    response = ACTIONS[action](client_for(user), invoice)

    status, _, code = expected.partition(" ")
    if status == "200":
        body = ok(response)
        detail = body["invoice"] if action == "submit" else body
        assert (detail["status"], detail["approval"]["status"]) == DONE[action]
        assert statuses(invoice) == DONE[action]
        assert ApprovalAction.objects.count() == actions_before + 1
    else:
        assert error_of(response, int(status))["code"] == code
        assert statuses(invoice) == before
        assert ApprovalAction.objects.count() == actions_before


def test_the_same_actions_answer_under_api_invoices(people, client_for):
    invoice = submitted(people)

    response = client_for(people["csm"]).patch(f"/api/invoices/{invoice.pk}/approve", {}, format="json")

    assert ok(response)["approval"]["status"] == "approved"


# --- Submit ------------------------------------------------------------------------------------------------------


def test_submit_answers_with_the_bill_and_its_request_and_emails_the_approver(
    people, client_for, django_capture_on_commit_callbacks
):
    invoice = bill_for(people)

    with django_capture_on_commit_callbacks(execute=True):
        body = ok(submit(client_for(people["finance"]), invoice, comment="Please check"))

    assert (body["approval_required"], body["invoice"]["id"], body["invoice"]["status"]) == (
        True,
        invoice.pk,
        "pending_approval",
    )
    approval = body["invoice"]["approval"]
    assert (approval["status"], approval["opened_by"], approval["decided_at"]) == ("pending", "finance@x.example", None)
    assert [(a["action"], a["actor"], a["comment"]) for a in body["invoice"]["approval_history"]] == [
        ("submitted", "finance@x.example", "Please check")
    ]
    assert [m.to for m in mail.outbox] == [["csm@x.example"]]


def test_submit_says_when_no_approval_is_needed(people, client_for):
    invoice = bill_for(people, rule="none")

    body = ok(submit(client_for(people["finance"]), invoice))

    assert body["approval_required"] is False
    assert body["message"] == "No approval is needed under the customer's rule."
    assert (body["invoice"]["status"], body["invoice"]["approval"], body["invoice"]["approval_history"]) == (
        "draft",
        None,
        [],
    )
    assert not ApprovalRequest.objects.exists()


def test_a_rejected_bill_is_submitted_again_as_a_new_request(people, client_for):
    invoice = submitted(people)
    first = request_for(invoice)
    approval_reject(actor=people["csm"], request=first, comment="Wrong period")

    body = ok(submit(client_for(people["finance"]), invoice, comment="Fixed"))

    assert body["invoice"]["approval"]["id"] != first.pk
    assert body["invoice"]["approval"]["status"] == "pending"
    assert [(a["request"], a["action"]) for a in body["invoice"]["approval_history"]] == [
        (first.pk, "submitted"),
        (first.pk, "rejected"),
        (first.pk, "withdrawn"),  # closed by the resubmission
        (request_for(invoice).pk, "submitted"),
    ]


# --- Each refusal, with its code ---------------------------------------------------------------------------------


def test_wrong_role_is_403(people, client_for):
    invoice = bill_for(people)

    error = error_of(submit(client_for(people["sales"]), invoice), 403)

    assert error["code"] == "wrong_role"
    assert statuses(invoice) == ("draft", None)


def test_a_bill_of_someone_elses_customer_is_404(people, client_for):
    invoice = submitted(people, rule="cs_or_sales")
    client = client_for(people["other_cs"])

    assert error_of(client.get(f"/api/bills/{invoice.pk}"), 404)["code"] == "not_found"
    for action in (approve, reject, revert):
        assert error_of(action(client, invoice), 404)["code"] == "not_found"
    assert statuses(invoice) == ("pending_approval", "pending")


def test_nobody_decides_what_they_submitted(people, make_user, client_for):
    both = make_user(Role.FINANCE, Role.SALES)
    invoice = bill_for(people, rule="cs_or_sales")
    client = client_for(both)
    ok(submit(client, invoice))

    for action in (approve, reject):
        error = error_of(action(client, invoice), 403)
        assert error["code"] == "own_submission"
        assert "maker-checker" in error["message"]
    assert statuses(invoice) == ("pending_approval", "pending")


@pytest.mark.parametrize("decided", [approval_approve, approval_reject])
@pytest.mark.parametrize("action", [approve, reject])
def test_a_decided_request_is_409_already_decided(decided, action, people, client_for):
    invoice = submitted(people, rule="cs_or_sales")
    decided(actor=people["sales"], request=request_for(invoice), comment="Decided")
    before = statuses(invoice)

    assert error_of(action(client_for(people["csm"]), invoice), 409)["code"] == "already_decided"
    assert statuses(invoice) == before


def test_an_issued_bill_cannot_be_reverted(people, client_for):
    invoice = submitted(people)
    approval_approve(actor=people["csm"], request=request_for(invoice))
    invoice_issue(actor=people["finance"], invoice=Invoice.objects.get(pk=invoice.pk), send=False)

    assert error_of(revert(client_for(people["csm"]), invoice), 409)["code"] == "already_issued"
    assert statuses(invoice) == ("issued", "approved")


def test_an_issued_bill_is_already_decided(people, client_for):
    invoice = submitted(people, auto_issue=True)
    body = ok(approve(client_for(people["csm"]), invoice))  # approved, then issued at once
    assert (body["status"], body["approval"]["status"]) == ("issued", "approved")

    assert error_of(reject(client_for(people["csm"]), invoice), 409)["code"] == "already_decided"
    assert error_of(revert(client_for(people["csm"]), invoice), 409)["code"] == "already_issued"


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}])
@pytest.mark.parametrize("url", ["reject", "revert"])
def test_rejecting_and_reverting_need_a_comment(url, body, people, client_for):
    invoice = submitted(people)
    if url == "revert":
        approval_approve(actor=people["csm"], request=request_for(invoice))
    before, actions_before = statuses(invoice), ApprovalAction.objects.count()

    response = client_for(people["csm"]).patch(f"/api/bills/{invoice.pk}/{url}", body, format="json")

    error = error_of(response, 400)
    assert (error["code"], error["fields"]) == ("comment_required", {"comment": ["Required."]})
    assert (statuses(invoice), ApprovalAction.objects.count()) == (before, actions_before)


def test_approving_needs_no_comment(people, client_for):
    invoice = submitted(people)

    assert ok(client_for(people["csm"]).patch(f"/api/bills/{invoice.pk}/approve"))["status"] == "approved"


def test_only_who_decided_reverts_and_only_a_decision(people, client_for):
    invoice = submitted(people, rule="cs_or_sales")

    assert error_of(revert(client_for(people["csm"]), invoice), 409)["code"] == "nothing_to_revert"
    approval_reject(actor=people["sales"], request=request_for(invoice), comment="Too high")
    assert error_of(revert(client_for(people["csm"]), invoice), 403)["code"] == "not_your_decision"
    assert statuses(invoice) == ("rejected", "rejected")


def test_submitting_twice_or_what_is_not_a_draft_is_409(people, client_for):
    client = client_for(people["finance"])
    pending = submitted(people)
    issued = bill_for(people, rule="none")
    invoice_issue(actor=None, invoice=issued, send=False)

    assert error_of(submit(client, pending), 409)["code"] == "already_submitted"
    assert error_of(submit(client, issued), 409)["code"] == "not_submittable"
    assert statuses(pending) == ("pending_approval", "pending")
    assert ApprovalRequest.objects.count() == 1


def test_deciding_a_bill_never_submitted_is_409(people, client_for):
    invoice = bill_for(people)

    for action in (approve, reject, revert):
        assert error_of(action(client_for(people["csm"]), invoice), 409)["code"] == "not_submitted"
    assert statuses(invoice) == ("draft", None)


# --- The action history in GET -----------------------------------------------------------------------------------


def test_get_shows_the_current_request_and_every_action_of_every_request_oldest_first(people, client_for):
    invoice = submitted(people)
    first = request_for(invoice)
    approval_reject(actor=people["csm"], request=first, comment="Wrong period")
    approval_revert(actor=people["csm"], request=first, comment="Period was right")
    approval_reject(actor=people["csm"], request=first, comment="Tax missing")
    approval_submit(actor=people["finance"], target=invoice, comment="Tax added")
    second = request_for(invoice)
    approval_approve(actor=people["csm"], request=second, comment="Fine now")
    first_rejection = first.actions.get(comment="Wrong period")

    body = ok(client_for(people["sales"]).get(f"/api/bills/{invoice.pk}"))

    assert body["status"] == "approved"
    approval = body["approval"]
    assert {key: approval[key] for key in ("id", "status", "opened_by", "summary")} == {
        "id": second.pk,
        "status": "approved",
        "opened_by": "finance@x.example",
        "summary": second.summary,
    }
    assert approval["opened_at"] and approval["decided_at"]
    assert approval["rule"] == {
        "name": "csm",
        "label": "The customer's CSM",
        "amount": "100.00",
        "sales_approval_above": None,
        "steps": [{"name": "csm", "label": "The customer's CSM", "users": [people["csm"].pk], "groups": []}],
    }
    history = [(a["request"], a["action"], a["actor"], a["comment"]) for a in body["approval_history"]]
    assert history == [
        (first.pk, "submitted", "submitter@x.example", ""),
        (first.pk, "rejected", "csm@x.example", "Wrong period"),
        (first.pk, "reverted", "csm@x.example", "Period was right"),
        (first.pk, "rejected", "csm@x.example", "Tax missing"),
        (first.pk, "withdrawn", "finance@x.example", "Resubmitted."),
        (second.pk, "submitted", "finance@x.example", "Tax added"),
        (second.pk, "approved", "csm@x.example", "Fine now"),
    ]
    entries = body["approval_history"]
    assert entries[2]["reverts"] == first_rejection.pk
    assert [entry["step"] for entry in entries] == ["", "", "", "", "", "", "csm"]
    assert [entry["attachment"] for entry in entries] == [None] * 7
    assert [entry["at"] for entry in entries] == sorted(entry["at"] for entry in entries)


def test_history_links_an_attachment_that_only_those_who_see_the_bill_download(people, client_for, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = submitted(people)
    note = SimpleUploadedFile("signed-off.pdf", b"%PDF-1.4 signed", content_type="application/pdf")
    approval_approve(actor=people["csm"], request=request_for(invoice), comment="See note", attachment=note)
    action = ApprovalAction.objects.get(kind="approved")
    invoice_issue(actor=None, invoice=Invoice.objects.get(pk=invoice.pk), send=False)  # the portal sees it now

    entries = ok(client_for(people["finance"]).get(f"/api/bills/{invoice.pk}"))["approval_history"]

    url = f"http://testserver/api/invoices/{invoice.pk}/approval-attachments/{action.pk}"
    assert [entry["attachment"] for entry in entries] == [None, url]  # never a link into MEDIA
    download = client_for(people["sales"]).get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4 signed"
    assert "signed-off" in download["Content-Disposition"]
    assert client_for(people["csm"]).get(f"/api/bills/{invoice.pk}/approval-attachments/{action.pk}").status_code == 200
    for stranger in (people["other_cs"], PortalMembershipFactory(customer=invoice.customer).user):
        assert error_of(client_for(stranger).get(url), 404)["code"] == "not_found"
    submitted_action = ApprovalAction.objects.get(kind="submitted")  # no file: nothing to download
    no_file = f"/api/invoices/{invoice.pk}/approval-attachments/{submitted_action.pk}"
    error_of(client_for(people["finance"]).get(no_file), 404)
    elsewhere = submitted(people)
    error_of(client_for(people["finance"]).get(f"/api/invoices/{elsewhere.pk}/approval-attachments/{action.pk}"), 404)


def test_get_says_what_the_caller_may_do_now(people, client_for):
    invoice = submitted(people)

    def allowed(who):
        return ok(client_for(people[who]).get(f"/api/bills/{invoice.pk}"))["approval_allowed"]

    routes = {"reroute": False, "reroute_routes": [], "blocked": None}  # only an Admin re-routes
    nothing = {"approve": False, "reject": False, "revert": False, **routes}
    assert allowed("csm") == {"approve": True, "reject": True, "revert": False, **routes}
    assert allowed("sales") == allowed("submitter") == allowed("finance") == nothing
    approval_approve(actor=people["csm"], request=request_for(invoice))
    assert allowed("csm") == {"approve": False, "reject": False, "revert": True, **routes}
    assert allowed("sales") == nothing


def test_the_rule_shown_is_the_one_frozen_when_submitted(people, client_for):
    invoice = submitted(people)
    billing_config_update(actor=None, customer=invoice.customer, approval_rule="cs_or_sales")

    rule = ok(client_for(people["finance"]).get(f"/api/bills/{invoice.pk}"))["approval"]["rule"]

    assert [step["name"] for step in rule["steps"]] == ["csm"]


def test_the_list_is_as_before_without_approval_internals(people, client_for):
    invoice = submitted(people)

    (row,) = ok(client_for(people["finance"]).get("/api/bills"))["results"]

    assert row["id"] == invoice.pk and row["status"] == "pending_approval"
    assert "approval" not in row and "approval_history" not in row


def test_get_query_count_does_not_grow_with_the_history(people, client_for, django_assert_max_num_queries):
    short = submitted(people)
    long = submitted(people)
    for round_ in range(4):
        approval_reject(actor=people["csm"], request=request_for(long), comment=f"No {round_}")
        approval_revert(actor=people["csm"], request=request_for(long), comment=f"Yes {round_}")
        approval_reject(actor=people["csm"], request=request_for(long), comment=f"No again {round_}")
        approval_submit(actor=people["submitter"], target=long)  # a new request each round
    client = client_for(people["finance"])
    client.get(f"/api/bills/{short.pk}")  # the content type is cached from here on, as in a running server

    # Session, user, portal membership, roles and permissions (3); the invoice, its lines with services, credit
    # notes, allocations; the approval actions with their actors, requests and reverts, who opened the current
    # request, the caller's roles again (approvals.selectors.approval_state_for: what the caller may do), and who
    # could approve what it waits for (the customer's deputy CSMs, the users its steps name, with their roles:
    # whether it is blocked).
    with django_assert_max_num_queries(16):
        assert len(ok(client.get(f"/api/bills/{short.pk}"))["approval_history"]) == 1
    with django_assert_max_num_queries(16):
        # 1 submitted + 4 rounds of rejected, reverted, rejected, withdrawn (by the resubmission), submitted
        assert len(ok(client.get(f"/api/bills/{long.pk}"))["approval_history"]) == 21


def test_a_bill_month_end_submitted_shows_no_submitter(people, client_for):
    invoice = bill_for(people)
    approval_submit(actor=None, target=invoice)  # as the month-end command does

    body = ok(client_for(people["finance"]).get(f"/api/bills/{invoice.pk}"))

    assert body["approval"]["opened_by"] is None
    assert [(a["action"], a["actor"]) for a in body["approval_history"]] == [("submitted", None)]


# --- Bills month-end submitted, and rejected bills whose rule changed -------------------------------------------


@pytest.mark.parametrize("action", [approve, reject])
def test_a_bill_month_end_submitted_can_be_decided(action, people, client_for):
    invoice = bill_for(people)
    approval_submit(actor=None, target=invoice)

    assert ok(action(client_for(people["csm"]), invoice, comment="Checked"))["approval"]["status"] != "pending"


def test_a_rejected_bill_whose_rule_no_longer_needs_approval_can_be_issued(people, client_for):
    invoice = submitted(people)
    approval_reject(actor=people["csm"], request=request_for(invoice), comment="Wrong period")
    billing_config_update(actor=None, customer=invoice.customer, approval_rule="none")
    client = client_for(people["finance"])

    assert ok(submit(client, invoice))["approval_required"] is False
    assert ok(client.post(f"/api/bills/{invoice.pk}/issue", {"send": False}, format="json"))["status"] == "issued"


# --- Portal users: read-only, their own issued bills, no approval internals --------------------------------------


def test_portal_users_read_their_issued_bills_without_approval_internals(people, client_for):
    issued = submitted(people)
    approval_approve(actor=people["csm"], request=request_for(issued), comment="Internal remark")
    invoice_issue(actor=None, invoice=Invoice.objects.get(pk=issued.pk), send=False)
    pending = invoice_create_manual(actor=people["finance"], customer=issued.customer, lines=LINE)
    approval_submit(actor=people["finance"], target=pending)
    elsewhere = submitted(people)
    client = client_for(PortalMembershipFactory(customer=issued.customer).user)

    body = ok(client.get(f"/api/bills/{issued.pk}"))

    assert (body["status"], body["approval"], body["approval_history"]) == ("issued", None, [])
    assert body["approval_allowed"] == {
        "approve": False,
        "reject": False,
        "revert": False,
        "reroute": False,
        "reroute_routes": [],
        "blocked": None,
    }
    assert [row["id"] for row in ok(client.get("/api/bills"))["results"]] == [issued.pk]
    error_of(client.get(f"/api/bills/{pending.pk}"), 404)
    error_of(client.get(f"/api/bills/{elsewhere.pk}"), 404)
    assert error_of(approve(client, pending), 403)["code"] == "wrong_role"
    assert error_of(revert(client, issued), 403)["code"] == "wrong_role"


# --- Idempotency-Key ---------------------------------------------------------------------------------------------


def test_a_replayed_approval_answers_the_first_response_and_acts_once(people, client_for):
    invoice = submitted(people)
    client = client_for(people["csm"])
    key = {"HTTP_IDEMPOTENCY_KEY": "approve-1"}

    first = approve(client, invoice, comment="ok", **key)
    replay = approve(client, invoice, comment="ok", **key)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert replay.json() == first.json()
    assert replay["Idempotency-Key-Replayed"] == "true"
    assert ApprovalAction.objects.filter(kind="approved").count() == 1
    other_body = approve(client, invoice, comment="changed my mind", **key)
    assert error_of(other_body, 409)["code"] == "idempotency_key_reused"
    # Without the key, approving again is a new call, refused as such.
    assert error_of(approve(client, invoice, comment="ok"), 409)["code"] == "already_decided"


def test_a_refused_call_stores_nothing_and_may_be_retried_with_its_key(people, client_for):
    invoice = submitted(people)
    client = client_for(people["csm"])
    key = {"HTTP_IDEMPOTENCY_KEY": "reject-1"}

    assert error_of(reject(client, invoice, comment="", **key), 400)["code"] == "comment_required"
    retry = client.patch(f"/api/bills/{invoice.pk}/reject", {"comment": "Wrong period"}, format="json", **key)

    assert ok(retry)["status"] == "rejected"


@pytest.mark.parametrize("action", ["submit", "approve", "reject", "revert"])
def test_every_approval_action_takes_an_idempotency_key(action, people, client_for):
    invoice = prepared(action, "csm", people)
    client = client_for(people["finance"] if action == "submit" else people["csm"])
    key = {"HTTP_IDEMPOTENCY_KEY": f"{action}-1"}

    first = ACTIONS[action](client, invoice, **key)
    replay = ACTIONS[action](client, invoice, **key)

    assert (first.status_code, replay.json(), replay["Idempotency-Key-Replayed"]) == (200, first.json(), "true")
    assert statuses(invoice) == DONE[action]


# --- Two approvals above the threshold: the CSM, then Sales -----------------------------------------------------


def test_above_the_threshold_the_csm_then_sales_approve(people, client_for):
    invoice = bill_for(people, rule="csm", threshold=D("50.00"))
    ok(submit(client_for(people["finance"]), invoice))

    after_csm = ok(approve(client_for(people["csm"]), invoice, comment="Usage is right"))
    assert (after_csm["status"], after_csm["approval"]["status"]) == ("pending_approval", "pending")
    assert error_of(approve(client_for(people["csm"]), invoice), 403)["code"] == "already_approved"
    after_sales = ok(approve(client_for(people["sales"]), invoice, comment="Price is right"))

    assert (after_sales["status"], after_sales["approval"]["status"]) == ("approved", "approved")
    rule = after_sales["approval"]["rule"]
    assert (rule["amount"], rule["sales_approval_above"]) == ("100.00", "50.00")
    assert [(step["name"], step["groups"]) for step in rule["steps"]] == [("csm", []), ("sales", ["Sales"])]
    assert [(a["action"], a["step"], a["actor"]) for a in after_sales["approval_history"]] == [
        ("submitted", "", "finance@x.example"),
        ("approved", "csm", "csm@x.example"),
        ("approved", "sales", "sales@x.example"),
    ]


def test_above_the_threshold_sales_alone_is_not_enough(people, client_for):
    invoice = submitted(people, rule="csm", threshold=D("50.00"))

    body = ok(approve(client_for(people["sales"]), invoice))

    assert (body["status"], body["approval"]["status"]) == ("pending_approval", "pending")
    assert [a["step"] for a in body["approval_history"]] == ["", "sales"]


# --- OpenAPI -----------------------------------------------------------------------------------------------------


def test_schema_describes_the_approval_actions(client_for):
    paths = client_for(None).get("/api/schema/?format=json").json()["paths"]

    for prefix in ("/api/bills", "/api/invoices"):
        operations = {
            "submit": paths[f"{prefix}/{{id}}/submit"]["post"],
            **{name: paths[f"{prefix}/{{id}}/{name}"]["patch"] for name in ("approve", "reject", "revert")},
        }
        for name, operation in operations.items():
            assert "Idempotency-Key" in [parameter["name"] for parameter in operation["parameters"]], name
            assert {"200", "403", "404", "409"} <= set(operation["responses"]), name


def test_submitting_a_bill_nobody_can_approve_is_409_saying_what_to_fix(people, client_for):
    invoice = bill_for(people)
    invoice.customer.client_id = "SOYLENT-010"
    invoice.customer.save(update_fields=["client_id"])
    Customer.objects.filter(pk=invoice.customer_id).update(csm=None)  # saved before a CSM was required

    error = error_of(submit(client_for(people["finance"]), invoice), 409)

    assert error["code"] == "no_approver"
    assert error["message"] == "SOYLENT-010 has no CSM: set one on the customer or change its approval rule."
    assert statuses(invoice) == (Invoice.Status.DRAFT, None)


# --- Re-routing a request nobody can finish (an Admin) -------------------------------------------------------------


def reroute(client, invoice, route: str, comment: str = "The CSM has left", **extra):
    return client.post(f"/api/bills/{invoice.pk}/reroute", {"route": route, "comment": comment}, format="json", **extra)


@pytest.fixture
def stuck(people, make_user):
    """A bill waiting for its CSM, who has become inactive since; and an Admin."""
    invoice = submitted(people)
    people["csm"].is_active = False
    people["csm"].save()
    return invoice, make_user(Role.ADMIN, email="admin@x.example")


def test_get_tells_an_admin_why_nobody_can_approve_and_where_it_can_go(people, stuck, client_for):
    invoice, admin = stuck

    allowed = ok(client_for(admin).get(f"/api/bills/{invoice.pk}"))["approval_allowed"]

    assert (
        allowed["blocked"].startswith(f"{invoice.customer.client_id}'s CSM, ") and "is inactive" in allowed["blocked"]
    )
    assert allowed["reroute"] is True
    assert {"route": "cs_or_sales", "label": "Customer Success or Sales"} in allowed["reroute_routes"]
    assert {"route": f"approver:{people['sales'].pk}", "label": f"{people['sales']} alone, instead of every step"} in (
        allowed["reroute_routes"]
    )


def test_an_admin_reroutes_and_the_history_shows_the_old_and_the_new_rule(people, stuck, client_for):
    invoice, admin = stuck

    body = ok(reroute(client_for(admin), invoice, "cs_or_sales"))

    assert body["approval"]["rule"]["name"] == "cs_or_sales" and body["approval_allowed"]["blocked"] is None
    entry = body["approval_history"][-1]
    assert (entry["action"], entry["actor"], entry["comment"]) == ("rerouted", "admin@x.example", "The CSM has left")
    assert (entry["old_rule"]["name"], entry["new_rule"]["name"]) == ("csm", "cs_or_sales")
    assert body["approval_history"][0]["old_rule"] is None
    assert ok(approve(client_for(people["sales"]), invoice))["status"] == Invoice.Status.APPROVED


@pytest.mark.parametrize(
    ("who", "route", "comment", "status", "code"),
    [
        ("finance", "cs_or_sales", "why", 403, "wrong_role"),
        ("sales", "cs_or_sales", "why", 403, "wrong_role"),
        ("admin", "cs_or_sales", "", 400, "comment_required"),
        ("admin", "csm", "why", 400, "unknown_route"),
        ("admin", "approver:999999", "why", 400, "unknown_route"),
    ],
)
def test_a_refused_reroute_is_an_error_and_changes_nothing(
    people, stuck, client_for, who, route, comment, status, code
):
    invoice, admin = stuck
    caller = admin if who == "admin" else people[who]

    error = error_of(reroute(client_for(caller), invoice, route, comment), status)

    assert error["code"] == code
    if code == "unknown_route":
        assert list(error["fields"]) == ["route"]
    assert request_for(invoice).rule["name"] == "csm"
    assert not ApprovalAction.objects.filter(kind="rerouted").exists()


def test_rerouting_a_bill_never_submitted_is_409(people, make_user, client_for):
    invoice = bill_for(people)

    assert error_of(reroute(client_for(make_user(Role.ADMIN)), invoice, "cs_or_sales"), 409)["code"] == "not_submitted"
