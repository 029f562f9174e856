"""The approvals admin: the "Awaiting my approval" queue, bulk decisions reported per request, the read-only list
of requests, and approve, reject, revert and the timeline on the invoice page."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.roles import Role
from approvals.models import ApprovalAction, ApprovalRequest
from approvals.services import approval_approve, approval_comment, approval_reject, approval_submit
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual

pytestmark = pytest.mark.django_db

QUEUE = "/admin/approvals/awaitingapproval/"
REQUESTS = "/admin/approvals/approvalrequest/"
DIALOG = {"_form_submitted": "on"}  # what an unfold action dialog posts
LINE = [{"description": "Service", "quantity": D(1), "unit_price": D(100)}]


@pytest.fixture
def submit(people):
    """submit(client_id, csm=..., rule=..., by=...) -> the pending request of a new draft for a new customer."""

    def make(client_id: str, *, csm="csm", rule="csm", threshold=None, by="finance") -> ApprovalRequest:
        customer = CustomerFactory(client_id=client_id, name=f"Customer {client_id}", csm=people.get(csm))
        billing_config_update(actor=None, customer=customer, approval_rule=rule, sales_approval_above=threshold)
        invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)
        actor = people[by] if isinstance(by, str) else by
        return approval_submit(actor=actor, target=invoice)

    return make


def signed_in(client, user):
    client.force_login(user)
    return client


def queue_of(client) -> list[str]:
    response = client.get(QUEUE)
    assert response.status_code == 200
    return [row.scope for row in response.context["cl"].result_list]


def messages_of(response) -> list[str]:
    """The messages shown on the page a post was redirected to (post with follow=True)."""
    assert response.redirect_chain, "the post was not redirected"
    return [str(message) for message in response.context["messages"]]


def invoice_of(request: ApprovalRequest) -> Invoice:
    return Invoice.objects.get(pk=request.target_id)


def decide(client, action: str, requests: list[ApprovalRequest], comment: str = ""):
    data = {"action": action, "_selected_action": [r.pk for r in requests], "comment": comment, "index": 0}
    return client.post(QUEUE, data | {"select_across": 0}, follow=True)


# The queue.


def test_the_queue_shows_a_csm_only_their_customers_and_only_what_they_may_approve(client, people, submit):
    submit("MINE")  # rule csm: the CSM's
    submit("MINE_ANY", rule="cs_or_sales")  # any CS or Sales, and it is the CSM's customer
    submit("THEIRS", csm="other_cs", rule="cs_or_sales")  # open to any CS user by rule, but not the CSM's customer
    submit("SALES_ONLY", rule="none", threshold=D("50"))  # only Sales approves (total 100.00 above 50)
    approved = submit("DONE_MY_STEP", threshold=D("50"))  # the CSM approved; Sales must still approve
    approval_approve(actor=people["csm"], request=approved)
    rejected = submit("REJECTED")
    approval_reject(actor=people["csm"], request=rejected, comment="Wrong month")

    assert queue_of(signed_in(client, people["csm"])) == ["MINE", "MINE_ANY"]
    assert queue_of(signed_in(client, people["other_cs"])) == ["THEIRS"]
    assert queue_of(signed_in(client, people["sales"])) == ["MINE_ANY", "THEIRS", "SALES_ONLY", "DONE_MY_STEP"]


def test_the_queue_leaves_out_ones_own_submissions(client, make_user, submit):
    maker = make_user(Role.FINANCE, Role.SALES)  # may submit, and is a Sales approver
    submit("OWN", rule="cs_or_sales", by=maker)
    submit("OTHER", rule="cs_or_sales")

    assert queue_of(signed_in(client, maker)) == ["OTHER"]


def test_finance_sees_every_request_but_no_bill_waits_for_it_in_its_queue(client, people, submit):
    # Finance's queue holds what it approves (partners' settlements, orders/approval.py), never bills.
    submit("ACME")
    submit("GLOBEX", csm="other_cs")
    client = signed_in(client, people["finance"])

    queue = client.get(QUEUE)
    assert queue.status_code == 200 and list(queue.context["cl"].result_list) == []
    response = client.get(REQUESTS)
    assert {row.scope for row in response.context["cl"].result_list} == {"ACME", "GLOBEX"}


def test_the_list_of_requests_is_scoped_to_the_csms_customers(client, people, submit):
    mine = submit("MINE", rule="cs_or_sales")
    theirs = submit("THEIRS", csm="other_cs", rule="cs_or_sales")
    client = signed_in(client, people["csm"])

    response = client.get(REQUESTS)

    assert [row.pk for row in response.context["cl"].result_list] == [mine.pk]
    assert client.get(f"{REQUESTS}{mine.pk}/change/").status_code == 200
    assert client.get(f"{REQUESTS}{theirs.pk}/change/").status_code in (302, 404)  # the admin's "doesn't exist"
    assert ApprovalRequest.objects.get(pk=theirs.pk)  # still there, just not theirs to see


def test_the_queue_links_each_request_to_its_invoice_page(client, people, submit):
    request = submit("ACME")

    page = signed_in(client, people["csm"]).get(QUEUE).content.decode()

    assert f'href="/admin/ledger/invoice/{request.target_id}/change/"' in page
    assert "The customer&#x27;s CSM" in page  # what it waits for


def test_the_queue_filters_by_customer_approver_and_waiting_time(client, people, submit):
    old = submit("OLD", rule="cs_or_sales")
    submit("NEW", rule="cs_or_sales")
    two_steps = submit("TWO_STEPS", threshold=D("50"))
    approval_approve(actor=people["csm"], request=two_steps)  # Sales still to approve
    ApprovalRequest.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(days=4))
    client = signed_in(client, people["sales"])

    assert queue_of(client) == ["OLD", "NEW", "TWO_STEPS"]
    assert [row.scope for row in client.get(f"{QUEUE}?customer=NEW").context["cl"].result_list] == ["NEW"]
    assert [row.scope for row in client.get(f"{QUEUE}?waiting=3").context["cl"].result_list] == ["OLD"]
    assert list(client.get(f"{QUEUE}?waiting=7").context["cl"].result_list) == []
    by_csm = client.get(f"{QUEUE}?approver={people['csm'].pk}").context["cl"].result_list
    assert [row.scope for row in by_csm] == ["TWO_STEPS"]


def test_the_list_of_requests_filters_by_status_and_approver(client, people, submit):
    submit("PENDING")
    approval_reject(actor=people["csm"], request=submit("REJECTED"), comment="No")
    approval_approve(actor=people["csm"], request=submit("APPROVED"))
    client = signed_in(client, people["finance"])

    def scopes(query: str) -> set[str]:
        return {row.scope for row in client.get(f"{REQUESTS}?{query}").context["cl"].result_list}

    assert scopes("status__exact=rejected") == {"REJECTED"}
    assert scopes(f"approver={people['csm'].pk}") == {"REJECTED", "APPROVED"}
    assert scopes("waiting=1") == set()
    assert client.get(f"{REQUESTS}?waiting=2")["Location"] == f"{REQUESTS}?e=1"  # the admin's "unknown filter"


# Bulk decisions from the queue.


def test_bulk_approve_reports_per_request_what_happened(client, people, make_user, submit):
    first = submit("FIRST")
    second = submit("SECOND", rule="cs_or_sales")
    taken = submit("TAKEN", rule="cs_or_sales")
    maker = make_user(Role.FINANCE, Role.CUSTOMER_SUCCESS)
    own = submit("OWN", csm=None, rule="cs_or_sales", by=maker)
    client = signed_in(client, maker)
    # Someone else decides TAKEN between the page and the click.
    approval_reject(actor=people["other_cs"], request=taken, comment="Not this month")
    client.get(QUEUE)

    response = decide(client, "approve_selected", [first, taken, own], comment="Checked")

    assert messages_of(response) == [
        f"Not approved (not an approver): {first.summary}. You are not an approver of this request.",
        f"Not approved (already decided): {taken.summary}. This request is already rejected.",
        f"Not approved (own submission): {own.summary}. You submitted this; someone else must decide it "
        "(maker-checker).",
    ]
    client = signed_in(client, people["csm"])
    response = decide(client, "approve_selected", [first, second], comment="Checked")

    assert messages_of(response) == [f"Approved: {first.summary}; {second.summary}."]
    assert [invoice_of(r).status for r in (first, second, taken, own)] == [
        Invoice.Status.APPROVED,
        Invoice.Status.APPROVED,
        Invoice.Status.REJECTED,
        Invoice.Status.PENDING_APPROVAL,
    ]
    action = ApprovalAction.objects.get(request=first, kind=ApprovalAction.Kind.APPROVED)
    assert (action.actor, action.comment) == (people["csm"], "Checked")
    assert queue_of(client) == []


def test_a_first_of_two_approvals_is_reported_as_such(client, people, submit):
    request = submit("BIG", threshold=D("50"))

    response = decide(signed_in(client, people["csm"]), "approve_selected", [request])

    assert messages_of(response) == [f"Approved; another approval is still needed: {request.summary}."]
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.PENDING


def test_bulk_reject_without_a_comment_is_refused_and_with_one_rejects_each(client, people, submit):
    requests = [submit("ONE"), submit("TWO")]
    client = signed_in(client, people["csm"])

    refused = decide(client, "reject_selected", requests, comment="   ")

    summaries = "; ".join(r.summary for r in requests)
    assert messages_of(refused) == [f"Not rejected (comment required): {summaries}. A comment is required to reject."]
    assert {invoice_of(r).status for r in requests} == {Invoice.Status.PENDING_APPROVAL}
    assert not ApprovalAction.objects.filter(kind=ApprovalAction.Kind.REJECTED).exists()

    response = decide(client, "reject_selected", requests, comment="Usage double counted")

    assert messages_of(response) == [f"Rejected: {summaries}."]
    assert {invoice_of(r).status for r in requests} == {Invoice.Status.REJECTED}
    assert set(ApprovalAction.objects.filter(kind="rejected").values_list("comment", flat=True)) == {
        "Usage double counted"
    }


def test_requests_of_another_csms_customers_are_ignored_even_if_posted(client, people, submit):
    theirs = submit("THEIRS", csm="other_cs", rule="cs_or_sales")

    response = decide(signed_in(client, people["csm"]), "approve_selected", [theirs])

    assert messages_of(response) == []
    assert ApprovalRequest.objects.get(pk=theirs.pk).status == ApprovalRequest.Status.PENDING


# Pinned query counts.


def queries_of(client, url) -> int:
    client.get(url)  # content types and the session are warm from here on
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "pinned"), [(QUEUE, 15), (f"{QUEUE}?customer=C0&waiting=1&approver=1", 14), (REQUESTS, 14)]
)
def test_the_lists_take_a_fixed_number_of_queries_whatever_the_rows(
    client, people, submit, url, pinned, django_assert_max_num_queries
):
    client = signed_in(client, people["sales"])
    for number in range(2):
        submit(f"C{number}", rule="cs_or_sales", threshold=D("50"))
    before = queries_of(client, url)
    for number in range(2, 8):
        request = submit(f"C{number}", rule="cs_or_sales", threshold=D("50"))
        approval_approve(actor=people["csm"], request=request)

    assert queries_of(client, url) == before
    with django_assert_max_num_queries(pinned):
        assert client.get(url).status_code == 200


# The invoice page: approve, reject and revert buttons, and the timeline.


def offered(client, invoice_id) -> list[str]:
    page = client.get(f"/admin/ledger/invoice/{invoice_id}/change/")
    assert page.status_code == 200
    return [action["title"] for action in page.context["actions_detail"]]


def test_the_invoice_page_offers_decisions_only_to_who_may_make_them(client, people, submit):
    request = submit("ACME")  # rule csm
    invoice_id = request.target_id

    assert {"Approve", "Reject"} <= set(offered(signed_in(client, people["csm"]), invoice_id))
    assert "Revert decision" not in offered(client, invoice_id)
    for who in ("finance", "sales"):  # the submitter's role; not an approver under this rule
        assert not {"Approve", "Reject", "Revert decision"} & set(offered(signed_in(client, people[who]), invoice_id))
    assert signed_in(client, people["other_cs"]).get(f"/admin/ledger/invoice/{invoice_id}/change/").status_code in (
        302,
        404,
    )

    approval_reject(actor=people["csm"], request=request, comment="Wrong")
    assert offered(signed_in(client, people["csm"]), invoice_id)[-1:] != ["Approve"]
    assert "Revert decision" in offered(client, invoice_id)
    assert "Approve" not in offered(client, invoice_id)


def test_reject_on_the_invoice_page_needs_a_comment(client, people, submit):
    request = submit("ACME")
    client = signed_in(client, people["csm"])
    url = f"/admin/ledger/invoice/{request.target_id}/reject/"

    response = client.post(url, DIALOG | {"comment": ""})

    assert response.status_code == 200  # the dialog again, with the error
    assert response.context["form"].errors == {"comment": ["This field is required."]}
    assert invoice_of(request).status == Invoice.Status.PENDING_APPROVAL

    response = client.post(url, DIALOG | {"comment": "Wrong customer"}, follow=True)
    assert messages_of(response) == [f"{invoice_of(request)} rejected; whoever submitted it was emailed your comment."]
    assert invoice_of(request).status == Invoice.Status.REJECTED


def test_a_refusal_on_the_invoice_page_is_a_message(client, people, submit):
    request = submit("ACME")
    client = signed_in(client, people["sales"])  # not an approver under the csm rule

    response = client.post(f"/admin/ledger/invoice/{request.target_id}/approve/", DIALOG | {"comment": ""}, follow=True)

    assert messages_of(response) == ["You are not an approver of this request."]
    assert invoice_of(request).status == Invoice.Status.PENDING_APPROVAL


def test_revert_on_the_invoice_page_reopens_the_request(client, people, submit):
    request = submit("ACME")
    client = signed_in(client, people["csm"])
    base = f"/admin/ledger/invoice/{request.target_id}"
    client.post(f"{base}/reject/", DIALOG | {"comment": "Wrong month"}, follow=True)
    assert invoice_of(request).status == Invoice.Status.REJECTED

    assert client.post(f"{base}/revert/", DIALOG | {"comment": ""}).status_code == 200  # a comment is required
    response = client.post(f"{base}/revert/", DIALOG | {"comment": "My mistake"}, follow=True)

    assert messages_of(response) == [
        f"Your decision on {invoice_of(request)} was reverted; it waits for approval again."
    ]
    assert invoice_of(request).status == Invoice.Status.PENDING_APPROVAL
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.PENDING
    assert queue_of(client) == ["ACME"]
    assert {"Approve", "Reject"} <= set(offered(client, request.target_id))


def test_only_who_decided_may_revert(client, people, submit):
    request = submit("ACME", rule="cs_or_sales")
    approval_reject(actor=people["csm"], request=request, comment="No")
    client = signed_in(client, people["sales"])

    assert "Revert decision" not in offered(client, request.target_id)
    response = client.post(
        f"/admin/ledger/invoice/{request.target_id}/revert/", DIALOG | {"comment": "Mine now"}, follow=True
    )

    assert messages_of(response) == ["Only who made a decision (or an admin) can revert it."]
    assert invoice_of(request).status == Invoice.Status.REJECTED


def test_the_timeline_lists_every_action_oldest_first(client, people, submit):
    request = submit("ACME")
    client = signed_in(client, people["csm"])
    base = f"/admin/ledger/invoice/{request.target_id}"
    client.post(f"{base}/reject/", DIALOG | {"comment": "Wrong month"})
    client.post(f"{base}/revert/", DIALOG | {"comment": "It was right"})
    client.post(f"{base}/approve/", DIALOG | {"comment": "Fine"})

    page = client.get(f"{base}/change/")

    actions = page.context["approval"].actions
    assert [(a.kind, a.actor, a.comment) for a in actions] == [
        ("submitted", people["finance"], ""),
        ("rejected", people["csm"], "Wrong month"),
        ("reverted", people["csm"], "It was right"),
        ("approved", people["csm"], "Fine"),
    ]
    html = page.content.decode()
    positions = [html.index(f'data-kind="{kind}"') for kind in ("submitted", "rejected", "reverted", "approved")]
    assert positions == sorted(positions)
    assert "Reverted the rejection of" in html
    assert "It was right" in html and invoice_of(request).status == Invoice.Status.APPROVED


def test_the_timeline_shows_every_request_of_the_invoice_and_links_attachments(client, people, submit):
    first = submit("ACME")
    approval_reject(actor=people["csm"], request=first, comment="Wrong month")
    second = approval_submit(actor=people["finance"], target=invoice_of(first))  # resubmitted: a new request
    note = approval_comment(
        actor=people["csm"], request=second, comment="See the contract", attachment=ContentFile(b"%PDF-", "terms.pdf")
    )
    client = signed_in(client, people["csm"])

    page = client.get(f"/admin/ledger/invoice/{first.target_id}/change/")

    # first: submitted, rejected, withdrawn by the resubmission; second: submitted, approved
    assert [a.request_id for a in page.context["approval"].actions] == [first.pk] * 3 + [second.pk] * 2
    assert page.context["approval"].current.pk == second.pk
    html = page.content.decode()
    assert html.count('data-testid="timeline-request"') == 2
    assert f'href="/admin/approvals/approvalrequest/attachment/{note.pk}/"' in html
    download = client.get(f"/admin/approvals/approvalrequest/attachment/{note.pk}/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-"
    other = signed_in(client, people["other_cs"])
    assert other.get(f"/admin/approvals/approvalrequest/attachment/{note.pk}/").status_code == 404


def test_the_request_page_shows_its_steps_and_timeline(client, people, submit):
    request = submit("ACME", threshold=D("50"))
    approval_approve(actor=people["csm"], request=request, comment="Fine by me")

    page = signed_in(client, people["finance"]).get(f"{REQUESTS}{request.pk}/change/")

    html = page.content.decode()
    assert "The customer&#x27;s CSM (approved)" in html
    assert "Sales (total above EUR\xa050.00) (waiting)" in html
    assert [a.kind for a in page.context["approval_actions"]] == ["submitted", "approved"]
    assert "Fine by me" in html


def test_submitting_a_bill_nobody_can_approve_on_the_invoice_page_says_what_to_fix(client, people):
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    Customer.objects.filter(pk=customer.pk).update(csm=None)  # saved before a CSM was required
    invoice = invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)
    client = signed_in(client, people["finance"])

    response = client.post(f"/admin/ledger/invoice/{invoice.pk}/submit/", DIALOG, follow=True)

    assert messages_of(response) == ["SOYLENT-010 has no CSM: set one on the customer or change its approval rule."]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DRAFT and not ApprovalRequest.objects.exists()


# Re-routing a request nobody can finish, from the invoice page (an Admin's).


@pytest.fixture
def stuck(people, submit, make_user):
    """SOYLENT-010's bill waits for its CSM, who has become inactive since; an Admin to re-route it."""
    request = submit("SOYLENT-010")
    people["csm"].is_active = False
    people["csm"].save()
    return request, make_user(Role.ADMIN, email="admin@x.example", full_name="Ada Admin")


def test_the_invoice_page_says_nobody_can_approve_and_offers_an_admin_to_reroute(client, people, stuck):
    request, admin = stuck
    url = f"/admin/ledger/invoice/{request.target_id}/change/"

    page = signed_in(client, admin).get(url)

    assert "Re-route approval" in offered(client, request.target_id)
    html = page.content.decode()
    assert 'data-testid="approval-blocked"' in html
    assert "SOYLENT-010&#x27;s CSM" in html and "is inactive" in html
    dialog = client.get(f"/admin/ledger/invoice/{request.target_id}/reroute/").content.decode()
    assert "Customer Success or Sales" in dialog and f"{people['sales'].email}" in dialog
    assert "Ada Admin" not in dialog  # not oneself
    for who in ("finance", "sales"):
        assert "Re-route approval" not in offered(signed_in(client, people[who]), request.target_id)
        assert client.post(f"/admin/ledger/invoice/{request.target_id}/reroute/", DIALOG).status_code == 403


def test_an_admin_reroutes_on_the_invoice_page_and_the_timeline_shows_it(client, people, stuck):
    request, admin = stuck
    client = signed_in(client, admin)
    base = f"/admin/ledger/invoice/{request.target_id}"

    response = client.post(
        f"{base}/reroute/", DIALOG | {"route": "cs_or_sales", "comment": "Casey has left"}, follow=True
    )

    assert messages_of(response) == [
        f"{invoice_of(request)} re-routed to “Customer Success or Sales”; its approvers were emailed."
    ]
    html = client.get(f"{base}/change/").content.decode()
    assert 'data-kind="rerouted"' in html
    assert "Re-routed from “The customer&#x27;s CSM” to “Customer Success or Sales”" in html
    assert "Casey has left" in html and 'data-testid="approval-blocked"' not in html
    assert queue_of(signed_in(client, people["sales"])) == ["SOYLENT-010"]


def test_a_reroute_without_a_comment_or_route_shows_the_dialog_again(client, stuck):
    request, admin = stuck

    response = signed_in(client, admin).post(f"/admin/ledger/invoice/{request.target_id}/reroute/", DIALOG)

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"route", "comment"}
    assert not ApprovalAction.objects.filter(kind="rerouted").exists()


def test_the_request_page_says_why_nobody_can_approve_it_and_links_its_invoice(client, stuck):
    request, admin = stuck

    html = signed_in(client, admin).get(f"{REQUESTS}{request.pk}/change/").content.decode()

    assert "SOYLENT-010&#x27;s CSM" in html and "is inactive" in html
    assert f'href="/admin/ledger/invoice/{request.target_id}/change/" class="text-primary-600">Re-route it' in html
