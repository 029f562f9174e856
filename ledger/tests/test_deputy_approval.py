"""Deputy CSMs (a `catalog.deputy_csm` grant on a customer) see and approve the customer's bills like its CSM: in
the admin and the API, under the CSM's step and the Customer Success step, in the emails and the queue; once the
grant is taken back they see and approve nothing of it. Maker-checker holds for them as for anyone."""

from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import Role
from approvals.models import ApprovalRequest
from approvals.registry import Rule, handler_for
from approvals.selectors import approval_queue_ids, approval_reroute_choices
from approvals.services import (
    ApprovalNotAllowed,
    NoApprover,
    approval_approve,
    approval_reroute,
    approval_submit,
    approval_submit_many,
)
from catalog.models import Customer
from catalog.services import customer_deputy_add, customer_deputy_remove
from catalog.tests.factories import CustomerFactory
from ledger.approval import invoice_approval_rule
from ledger.models import Invoice
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_manual

pytestmark = pytest.mark.django_db
LINE = [{"description": "Onboarding", "quantity": D(1), "unit_price": D(100)}]  # total 100.00, no tax


@pytest.fixture
def people(people, make_user):
    return {
        **people,
        "admin": make_user(Role.ADMIN, email="admin@x.example"),
        "deputy": make_user(Role.CUSTOMER_SUCCESS, email="deputy@x.example", full_name="Dana Deputy"),
    }


@pytest.fixture
def customer(people):
    """SOYLENT-010, whose CSM is people["csm"] and whose bills need its CSM's approval; people["deputy"] stands in."""
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    customer_deputy_add(actor=people["admin"], customer=customer, user=people["deputy"])
    return customer


def bill(people, customer) -> Invoice:
    return invoice_create_manual(actor=people["finance"], customer=customer, lines=LINE)


def admin_list(client, user) -> list[int]:
    client.force_login(user)
    return [invoice.pk for invoice in client.get("/admin/ledger/invoice/").context["cl"].result_list]


def api_list(client_for, user) -> list[int]:
    response = client_for(user).get("/api/bills")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def approve_by_api(client_for, user, invoice):
    return client_for(user).patch(f"/api/bills/{invoice.pk}/approve", {"comment": "ok"}, format="json")


def test_a_deputy_sees_the_customers_bills_in_the_admin_and_the_api(people, customer, client, client_for):
    invoice = bill(people, customer)
    bill(people, CustomerFactory(csm=people["other_cs"]))  # someone else's customer

    assert admin_list(client, people["deputy"]) == [invoice.pk]
    assert client.get(f"/admin/ledger/invoice/{invoice.pk}/change/").status_code == 200
    assert api_list(client_for, people["deputy"]) == [invoice.pk]
    assert client_for(people["deputy"]).get(f"/api/bills/{invoice.pk}").status_code == 200


def test_the_csms_step_names_the_deputy_who_is_emailed_and_approves(
    people, customer, client_for, django_capture_on_commit_callbacks
):
    invoice = bill(people, customer)

    with django_capture_on_commit_callbacks(execute=True):
        request = approval_submit(actor=people["finance"], target=invoice)

    assert request.rule["steps"] == [
        {
            "name": "csm",
            "label": "The customer's CSM",
            "users": [people["csm"].pk, people["deputy"].pk],
            "groups": [],
        }
    ]
    assert [message.to for message in mail.outbox] == [["csm@x.example", "deputy@x.example"]]
    assert approval_queue_ids(people["deputy"]) == [request.pk]
    assert approve_by_api(client_for, people["deputy"], invoice).status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.APPROVED
    assert request.actions.get(kind="approved").actor == people["deputy"]


def test_a_deputy_never_approves_what_they_submitted(people, customer, make_user):
    deputy_in_finance = make_user(Role.CUSTOMER_SUCCESS, Role.FINANCE, email="both@x.example")
    customer_deputy_add(actor=people["admin"], customer=customer, user=deputy_in_finance)
    request = approval_submit(actor=deputy_in_finance, target=bill(people, customer))

    with pytest.raises(ApprovalNotAllowed, match="maker-checker"):
        approval_approve(actor=deputy_in_finance, request=request)
    assert approval_approve(actor=people["deputy"], request=request).status == ApprovalRequest.Status.APPROVED


def test_a_submitting_deputy_who_alone_could_approve_is_refused_saying_so(people, make_user):
    """The CSM has become inactive since the rule was set; the only deputy submits: nobody else can approve."""
    deputy_in_finance = make_user(Role.CUSTOMER_SUCCESS, Role.FINANCE, email="both@x.example", full_name="")
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    customer_deputy_add(actor=people["admin"], customer=customer, user=deputy_in_finance)
    people["csm"].is_active = False
    people["csm"].save()
    invoice = bill(people, customer)

    with pytest.raises(NoApprover) as refusal:
        approval_submit(actor=deputy_in_finance, target=invoice)

    assert refusal.value.message == (
        "SOYLENT-010's deputy CSM, both@x.example, submitted it and cannot approve it too: let someone else submit "
        "it, or change its approval rule."
    )
    request = approval_submit(actor=people["finance"], target=invoice)  # someone else submits: the deputy decides
    assert approval_approve(actor=deputy_in_finance, request=request).status == ApprovalRequest.Status.APPROVED


def test_with_its_csm_inactive_a_deputy_keeps_the_customers_bills_approvable(people, customer):
    people["csm"].is_active = False
    people["csm"].save()

    request = approval_submit(actor=people["finance"], target=bill(people, customer))

    assert approval_approve(actor=people["deputy"], request=request).status == ApprovalRequest.Status.APPROVED


def test_without_a_csm_a_deputy_does_not_make_the_csms_step_possible(people, customer):
    """A customer whose bills need its CSM has one (catalog refuses otherwise); one that lost it waits for a CSM."""
    Customer.objects.filter(pk=customer.pk).update(csm=None)
    customer.refresh_from_db()

    with pytest.raises(NoApprover, match="SOYLENT-010 has no CSM: set one on the customer"):
        approval_submit(actor=people["finance"], target=bill(people, customer))


def test_after_the_grant_is_taken_back_the_deputy_neither_sees_nor_approves(people, customer, client, client_for):
    invoice = bill(people, customer)
    request = approval_submit(actor=people["finance"], target=invoice)

    assert customer_deputy_remove(actor=people["admin"], customer=customer, user=people["deputy"]) is True

    assert admin_list(client, people["deputy"]) == []
    assert client.get(f"/admin/ledger/invoice/{invoice.pk}/change/").status_code == 302  # "does not exist"
    assert api_list(client_for, people["deputy"]) == []
    assert client_for(people["deputy"]).get(f"/api/bills/{invoice.pk}").status_code == 404
    assert approve_by_api(client_for, people["deputy"], invoice).status_code == 404
    assert approval_queue_ids(people["deputy"]) == []
    assert ApprovalRequest.objects.get(pk=request.pk).status == ApprovalRequest.Status.PENDING
    assert handler_for(Invoice).notify_addresses(invoice, invoice_approval_rule(invoice).steps[0]) == ["csm@x.example"]


def test_a_cs_user_who_is_neither_csm_nor_deputy_sees_nothing_and_cannot_approve(people, customer, client, client_for):
    invoice = bill(people, customer)
    request = approval_submit(actor=people["finance"], target=invoice)
    outsider = people["other_cs"]

    assert admin_list(client, outsider) == []
    assert api_list(client_for, outsider) == []
    assert client_for(outsider).get(f"/api/bills/{invoice.pk}").status_code == 404
    assert approve_by_api(client_for, outsider, invoice).status_code == 404
    assert approval_queue_ids(outsider) == []
    with pytest.raises(ApprovalNotAllowed, match="not an approver"):
        approval_approve(actor=outsider, request=request)


def test_under_cs_or_sales_the_deputy_is_told_and_counts_as_an_approver(people, customer):
    billing_config_update(actor=None, customer=customer, approval_rule="cs_or_sales")
    Customer.objects.filter(pk=customer.pk).update(csm=None)
    customer.refresh_from_db()
    people["sales"].is_active = False  # nobody in Sales: only Customer Success users who see the customer decide
    people["sales"].save()
    invoice = bill(people, customer)
    (step,) = invoice_approval_rule(invoice).steps

    assert handler_for(Invoice).notify_addresses(invoice, step) == ["deputy@x.example"]  # not other_cs
    request = approval_submit(actor=people["finance"], target=invoice)
    assert approval_queue_ids(people["deputy"]) == [request.pk]
    assert approval_queue_ids(people["other_cs"]) == []
    assert approval_approve(actor=people["deputy"], request=request).status == ApprovalRequest.Status.APPROVED


def test_a_deputy_added_after_submission_decides_once_an_admin_reroutes_to_them(people, make_user):
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    request = approval_submit(actor=people["finance"], target=bill(people, customer))
    people["csm"].is_active = False  # the CSM leaves; a deputy steps in
    people["csm"].save()
    customer_deputy_add(actor=people["admin"], customer=customer, user=people["deputy"])
    other_admin = make_user(Role.ADMIN, email="admin2@x.example", full_name="Alan Admin")

    with pytest.raises(ApprovalNotAllowed, match="not an approver"):
        approval_approve(actor=people["deputy"], request=request)  # the request names who was asked
    routes = dict(approval_reroute_choices(actor=people["admin"], request=request))

    assert routes["csm"] == f"The customer's CSM, {people['csm']}, or a deputy CSM: Dana Deputy <deputy@x.example>"
    assert f"approver:{people['deputy'].pk}" in routes and f"approver:{other_admin.pk}" in routes
    rerouted = approval_reroute(actor=people["admin"], request=request, route="csm", comment="Dana stands in")
    assert approval_approve(actor=people["deputy"], request=rerouted).status == ApprovalRequest.Status.APPROVED


def test_a_request_whose_named_approvers_are_all_gone_says_who_approves_now(people, make_user):
    customer = CustomerFactory(client_id="SOYLENT-010", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule="csm")
    invoice = bill(people, customer)
    request = approval_submit(actor=people["finance"], target=invoice)
    people["csm"].is_active = False
    people["csm"].save()
    customer_deputy_add(actor=people["admin"], customer=customer, user=people["deputy"])
    invoice = Invoice.objects.select_related("customer").get(pk=invoice.pk)

    reason = handler_for(Invoice).unsatisfiable(invoice, Rule.from_json(request.rule), request.opened_by)

    assert reason == (
        "SOYLENT-010's bills are now approved by its CSM or deputy CSMs (Dana Deputy <deputy@x.example>), none of "
        "whom it was submitted to: re-route it."
    )


def test_a_bulk_submission_with_deputies_keeps_its_statement_budget_and_mails_each_once(
    people, make_user, django_capture_on_commit_callbacks
):
    deputies = [make_user(Role.CUSTOMER_SUCCESS, email=f"deputy{n}@x.example") for n in range(3)]

    def drafts(count: int) -> list[Invoice]:
        invoices = []
        for number in range(count):
            customer = CustomerFactory(csm=people["csm"])
            billing_config_update(actor=None, customer=customer, approval_rule=["csm", "cs_or_sales"][number % 2])
            for deputy in deputies[: number % 3 + 1]:
                customer_deputy_add(actor=people["admin"], customer=customer, user=deputy)
            invoices.append(bill(people, customer))
        return invoices

    few, many = drafts(3), drafts(30)
    approval_submit_many(actor=people["finance"], targets=drafts(1))  # caches: permissions, content types
    mail.outbox.clear()

    with CaptureQueriesContext(connection) as for_few:
        approval_submit_many(actor=people["finance"], targets=few)
    with CaptureQueriesContext(connection) as for_many, django_capture_on_commit_callbacks(execute=True):
        requests = approval_submit_many(actor=people["finance"], targets=many)

    # As approvals/tests/test_submit_many.py pins it, one of them now reading the customers' deputy CSMs.
    assert len(for_many) == len(for_few) <= 17, [query["sql"][:120] for query in for_many]
    assert requests[0].rule["steps"][0]["users"] == [people["csm"].pk, deputies[0].pk]
    told = {message.to[0]: message for message in mail.outbox}
    assert sorted(told) == [
        "csm@x.example",
        "deputy0@x.example",
        "deputy1@x.example",
        "deputy2@x.example",
        "sales@x.example",  # the Customer Success or Sales step
    ]
    assert len(mail.outbox) == 5
    assert told["deputy0@x.example"].subject == "Awaiting your approval: 30 requests"
    assert told["deputy2@x.example"].subject == "Awaiting your approval: 10 requests"
