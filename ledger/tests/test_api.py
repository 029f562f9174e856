import re
from datetime import UTC, date, datetime
from decimal import Decimal as D
from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.drainage import reset_generator_stats

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from ledger.models import Allocation, CreditNote, Invoice, Payment, Transaction
from ledger.services.billing import billing_config_update
from ledger.services.invoices import credit_note_issue, invoice_add_line, invoice_create_manual, invoice_issue
from ledger.services.payments import adjustment_record, payment_record

pytestmark = pytest.mark.django_db

RECEIVED = "2026-11-20T10:00:00Z"
NUMBER = re.compile(r"INV-\d{4}-\d{6}")


def issued(customer, amount) -> Invoice:
    """A manual invoice of one line at `amount`, issued without email."""
    invoice = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(amount)}]
    )
    return invoice_issue(actor=None, invoice=invoice, send=False)


def pay(customer, amount, reference) -> Payment:
    return payment_record(
        actor=None,
        customer=customer,
        amount=D(amount),
        received_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        bank_reference=reference,
    )


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[int]:
    return {row["id"] for row in results(response)}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


@pytest.fixture
def world(priced_customer, make_user, import_usage):
    """ACME (tax 20%) with an issued invoice of 120.00, a draft, a payment of 50.00, its CSM and usage in November
    (to bill); OTHER with an issued invoice of 40.00 and a payment of 10.00."""
    customer, service = priced_customer
    import_usage(customer, service, [(3, "2026-11-04T10:00:00Z")])
    customer.csm = make_user(Role.CUSTOMER_SUCCESS)
    customer.save()
    other = CustomerFactory(client_id="OTHER", name="Other")
    own_invoice = issued(customer, "100")
    own_draft = invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Extra", "quantity": D(2), "unit_price": D("5")}]
    )
    own_payment = pay(customer, "50.00", "BANK-ACME-1")
    other_invoice = issued(other, "40")
    other_payment = pay(other, "10.00", "BANK-OTHER-1")
    return SimpleNamespace(
        customer=customer,
        service=service,
        csm=customer.csm,
        other=other,
        own_invoice=own_invoice,
        own_draft=own_draft,
        own_payment=own_payment,
        other_invoice=other_invoice,
        other_payment=other_payment,
    )


def portal_user_of(customer):
    return PortalMembershipFactory(customer=customer).user


# --- The role x operation matrix -------------------------------------------------------------------------------

CALLERS = ["admin", "finance", "customer_success", "sales", "operations", "portal", "no_role", "anonymous"]


def make_caller(kind: str, make_user, world):
    """Customer Success is the CSM of ACME and the portal user is ACME's: refusals are for the role, not scope."""
    roles = {"admin": Role.ADMIN, "finance": Role.FINANCE, "sales": Role.SALES, "operations": Role.OPERATIONS}
    if kind in roles:
        return make_user(roles[kind])
    if kind == "customer_success":
        return world.csm
    if kind == "portal":
        return portal_user_of(world.customer)
    if kind == "no_role":
        return make_user()
    return None


# Each mutating operation returns (response, whether its write is in the database).
def create_draft(client, world):
    response = client.post("/api/invoices", {"customer": world.customer.pk, "period": "2026-11"}, format="json")
    return response, Invoice.objects.filter(customer=world.customer, kind="usage", period=date(2026, 11, 1)).exists()


def issue_invoice(client, world):
    response = client.post(f"/api/invoices/{world.own_draft.pk}/issue", {"send": False}, format="json")
    world.own_draft.refresh_from_db()
    return response, world.own_draft.number is not None


def issue_bill(client, world):
    response = client.post(f"/api/bills/{world.own_draft.pk}/issue", {"send": False}, format="json")
    world.own_draft.refresh_from_db()
    return response, world.own_draft.number is not None


def credit_invoice(client, world):
    url = f"/api/invoices/{world.own_invoice.pk}/credit-notes"
    response = client.post(url, {"reason": "Goodwill", "amount": "12.00"}, format="json")
    return response, CreditNote.objects.filter(invoice=world.own_invoice).exists()


def record_payment(client, world):
    body = {"customer": world.customer.pk, "amount": "30.00", "received_at": RECEIVED, "bank_reference": "BANK-NEW"}
    response = client.post("/api/payments", body, format="json")
    return response, Payment.objects.filter(bank_reference="BANK-NEW").exists()


def move_payment(client, world):
    """ACME's payment went to its older invoice; it is moved to a newer one."""
    newer = issued(world.customer, "10")
    body = {"invoice": newer.pk, "from_invoice": world.own_invoice.pk}
    response = client.post(f"/api/payments/{world.own_payment.pk}/allocations", body, format="json")
    return response, Allocation.objects.filter(payment=world.own_payment, invoice=newer).exists()


WRITES = {
    #                  admin finance  cs  sales  ops  portal no_role anonymous
    create_draft: (201, 201, 403, 403, 403, 403, 403, 401),
    issue_invoice: (200, 200, 403, 403, 403, 403, 403, 401),
    issue_bill: (200, 200, 403, 403, 403, 403, 403, 401),
    credit_invoice: (201, 201, 403, 403, 403, 403, 403, 401),
    record_payment: (201, 201, 403, 403, 403, 403, 403, 401),
    move_payment: (201, 201, 403, 403, 403, 403, 403, 401),
}


@pytest.mark.parametrize(
    ("operation", "caller", "expected"),
    [
        pytest.param(operation, caller, status, id=f"{operation.__name__}-{caller}")
        for operation, statuses in WRITES.items()
        for caller, status in zip(CALLERS, statuses, strict=True)
    ],
)
def test_only_finance_and_admin_write(operation, caller, expected, make_user, world, client_for):
    client = client_for(make_caller(caller, make_user, world))

    response, written = operation(client, world)

    assert response.status_code == expected, response.content
    assert written == (expected < 400)
    if expected >= 400:
        error_of(response, expected)


READS = [
    "/api/invoices",
    "/api/invoices/{own_invoice}",
    "/api/bills",
    "/api/bills/{own_invoice}",
    "/api/payments",
    "/api/payments/{own_payment}",
    "/api/transactions",
    "/api/balances",
    "/api/customers/{customer}/statement",
]
#             admin finance  cs  sales  ops  portal no_role anonymous
READ_STATUS = (200, 200, 200, 200, 403, 200, 403, 401)


@pytest.mark.parametrize("url", READS)
@pytest.mark.parametrize(("caller", "expected"), list(zip(CALLERS, READ_STATUS, strict=True)))
def test_who_may_read(url, caller, expected, make_user, world, client_for):
    client = client_for(make_caller(caller, make_user, world))
    url = url.format(own_invoice=world.own_invoice.pk, own_payment=world.own_payment.pk, customer=world.customer.pk)

    response = client.get(url)

    assert response.status_code == expected, response.content


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", ["/api/invoices/{invoice}", "/api/payments/{payment}", "/api/transactions/{tx}"])
def test_ledger_rows_are_not_edited_through_the_api(method, url, admin_user, world, client_for):
    tx = Transaction.objects.filter(customer=world.customer).first()
    url = url.format(invoice=world.own_invoice.pk, payment=world.own_payment.pk, tx=tx.pk)

    response = getattr(client_for(admin_user), method)(url, {"total": "0.00", "amount": "0.00"}, format="json")

    assert error_of(response, 405)["code"] == "method_not_allowed"
    world.own_invoice.refresh_from_db()
    world.own_payment.refresh_from_db()
    assert (world.own_invoice.total, world.own_payment.amount) == (D("120.00"), D("50.00"))


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/api/invoices", ["customer", "period"]),
        ("/api/invoices/{invoice}/issue", ["send"]),
        ("/api/invoices/{invoice}/credit-notes", ["reason", "amount"]),
        (
            "/api/payments",
            ["customer", "amount", "received_at", "bank_reference", "method", "note", "invoice", "currency"],
        ),
        ("/api/payments/{payment}/allocations", ["invoice", "from_invoice", "amount"]),
    ],
)
def test_options_describes_what_a_post_takes(url, fields, world, finance_user, client_for):
    response = client_for(finance_user).options(url.format(invoice=world.own_invoice.pk, payment=world.own_payment.pk))

    assert response.status_code == 200, response.content
    assert list(response.json()["actions"]["POST"]) == fields


# --- Scope: a portal user sees their own customer, a CSM their customers ----------------------------------------


def test_portal_user_sees_their_issued_invoices_only(world, client_for):
    client = client_for(portal_user_of(world.customer))

    for prefix in ("/api/invoices", "/api/bills"):
        assert ids(client.get(prefix)) == {world.own_invoice.pk}  # not the draft, not OTHER's
        assert client.get(f"{prefix}/{world.own_invoice.pk}").status_code == 200
        assert error_of(client.get(f"{prefix}/{world.other_invoice.pk}"), 404)["code"] == "not_found"
        error_of(client.get(f"{prefix}/{world.own_draft.pk}"), 404)
        assert ids(client.get(f"{prefix}?customer={world.other.pk}")) == set()


def test_portal_user_sees_their_payments_only(world, client_for):
    client = client_for(portal_user_of(world.customer))

    assert ids(client.get("/api/payments")) == {world.own_payment.pk}
    assert client.get(f"/api/payments/{world.own_payment.pk}").status_code == 200
    error_of(client.get(f"/api/payments/{world.other_payment.pk}"), 404)
    assert ids(client.get(f"/api/payments?customer={world.other.pk}")) == set()


def test_portal_user_sees_their_transactions_and_only_their_side_of_them(world, client_for):
    client = client_for(portal_user_of(world.customer))
    own = set(Transaction.objects.filter(customer=world.customer).values_list("pk", flat=True))
    other = Transaction.objects.filter(customer=world.other).first()

    rows = results(client.get("/api/transactions"))

    assert {row["id"] for row in rows} == own
    # Revenue, tax and cash balances are the business's, not the customer's.
    assert {leg["account"] for row in rows for leg in row["legs"]} == {f"receivable:{world.customer.pk}"}
    error_of(client.get(f"/api/transactions/{other.pk}"), 404)
    assert ids(client.get(f"/api/transactions?customer={world.other.pk}")) == set()


def test_portal_user_sees_their_balance_only(world, client_for):
    client = client_for(portal_user_of(world.customer))

    response = client.get("/api/balances")

    assert results(response) == [
        {"customer": world.customer.pk, "client_id": "ACME", "name": "Acme", "currency": "EUR", "balance": "70.00"}
    ]
    assert results(client.get(f"/api/balances?customer={world.other.pk}")) == []


def test_portal_user_reads_their_statement_and_not_another(world, client_for):
    client = client_for(portal_user_of(world.customer))

    assert client.get(f"/api/customers/{world.customer.pk}/statement").status_code == 200
    assert error_of(client.get(f"/api/customers/{world.other.pk}/statement"), 404)["code"] == "not_found"
    error_of(client.get("/api/customers/999999/statement"), 404)


@pytest.mark.parametrize("url", ["/api/invoices", "/api/payments", "/api/transactions"])
def test_customer_success_sees_their_customers_only(url, world, client_for):
    rows = results(client_for(world.csm).get(url))

    assert rows
    assert {row["customer"] for row in rows} == {world.customer.pk}


def test_customer_success_gets_404_on_another_customers_objects(world, client_for):
    client = client_for(world.csm)

    error_of(client.get(f"/api/invoices/{world.other_invoice.pk}"), 404)
    error_of(client.get(f"/api/payments/{world.other_payment.pk}"), 404)
    error_of(client.get(f"/api/customers/{world.other.pk}/statement"), 404)
    assert [row["customer"] for row in results(client.get("/api/balances"))] == [world.customer.pk]


def test_finance_sees_every_leg_of_a_charge(world, finance_user, client_for):
    charge = Transaction.objects.get(kind="charge", customer=world.customer)

    legs = client_for(finance_user).get(f"/api/transactions/{charge.pk}").json()["legs"]

    assert [(leg["account_kind"], leg["debit"], leg["credit"]) for leg in legs] == [
        ("receivable", "120.00", "0.00"),
        ("revenue", "0.00", "100.00"),
        ("tax", "0.00", "20.00"),
    ]
    assert legs[0] == {
        "account": f"receivable:{world.customer.pk}",
        "account_kind": "receivable",
        "debit": "120.00",
        "credit": "0.00",
        "balance_after": "120.00",
    }


# --- /api/bills is /api/invoices --------------------------------------------------------------------------------


def test_bills_are_the_invoices_under_another_name(world, finance_user, client_for):
    client = client_for(finance_user)

    assert client.get("/api/bills").json() == client.get("/api/invoices").json()
    assert client.get("/api/bills?status=draft").json() == client.get("/api/invoices?status=draft").json()
    detail = client.get(f"/api/invoices/{world.own_invoice.pk}")
    assert client.get(f"/api/bills/{world.own_invoice.pk}").json() == detail.json()
    assert detail.json()["number"] == world.own_invoice.number


# --- Invoices: drafts, issue, credit notes ----------------------------------------------------------------------


def test_create_the_usage_draft_of_a_month_then_409_for_a_second(
    priced_customer, import_usage, finance_user, client_for
):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-03T10:00:00Z"), (4, "2026-10-20T10:00:00Z")])
    client = client_for(finance_user)

    response = client.post("/api/invoices", {"customer": customer.pk, "period": "2026-10"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    invoice = Invoice.objects.get()
    assert (body["id"], invoice.created_by) == (invoice.pk, finance_user)
    assert {key: body[key] for key in ("kind", "period", "status", "number", "client_id")} == {
        "kind": "usage",
        "period": "2026-10-01",
        "status": "draft",
        "number": None,
        "client_id": "ACME",
    }
    assert [
        (i["source"], i["service"], i["quantity"], i["unit_price"], i["amount"], i["tax_amount"]) for i in body["items"]
    ] == [("usage", "kyc_check", "14.000000", "0.500000", "7.00", "1.40")]
    assert (body["subtotal"], body["tax"], body["total"], body["outstanding"]) == ("7.00", "1.40", "8.40", "8.40")
    assert (body["credit_notes"], body["allocations"]) == ([], [])

    again = client.post("/api/invoices", {"customer": customer.pk, "period": "2026-10-15"}, format="json")

    error = error_of(again, 409)
    assert error["code"] == "invoice_exists"
    assert "period" in error["fields"]
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "2026-10"}, "customer"),
        ({"customer": 999999, "period": "2026-10"}, "customer"),
        ({"customer": "{customer}", "period": "October"}, "period"),
        ({"customer": "{customer}", "period": "2026-13"}, "period"),
    ],
)
def test_a_bad_draft_request_is_a_400_naming_the_field(body, field, priced_customer, finance_user, client_for):
    customer, _ = priced_customer
    body = {key: value.format(customer=customer.pk) if isinstance(value, str) else value for key, value in body.items()}

    response = client_for(finance_user).post("/api/invoices", body, format="json")

    assert field in error_of(response, 400)["fields"]
    assert not Invoice.objects.exists()


def test_issue_through_the_api_numbers_posts_and_emails(
    world, finance_user, client_for, django_capture_on_commit_callbacks
):
    client = client_for(finance_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/invoices/{world.own_draft.pk}/issue", format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert NUMBER.fullmatch(body["number"])
    assert (body["status"], body["total"], body["outstanding"]) == ("issued", "12.00", "12.00")
    assert body["due_date"] is not None and body["issued_at"] is not None
    assert Transaction.objects.get(reference=body["number"]).kind == "charge"
    assert [message.attachments[0][0] for message in mail.outbox] == [f"{body['number']}.pdf"]
    assert client.get(f"/api/balances?customer={world.customer.pk}").json()["results"][0]["balance"] == "82.00"

    # Issuing an issued invoice again changes nothing.
    again = client.post(f"/api/invoices/{world.own_draft.pk}/issue", {"send": False}, format="json")
    assert again.status_code == 200
    assert again.json()["number"] == body["number"]
    assert Transaction.objects.filter(reference=body["number"]).count() == 1


def test_issuing_a_cancelled_invoice_is_a_409(world, finance_user, client_for):
    Invoice.objects.filter(pk=world.own_draft.pk).update(status=Invoice.Status.CANCELLED)

    response = client_for(finance_user).post(f"/api/invoices/{world.own_draft.pk}/issue", format="json")

    assert error_of(response, 409)["code"] == "invoice_not_editable"


def test_issue_of_another_customers_invoice_answers_404_for_a_scoped_caller(world, client_for):
    """Scope applies to actions too. The roles that may issue see every customer, so the case to show is a CSM
    given the permission by hand."""
    csm = world.csm
    csm.user_permissions.add(Permission.objects.get(codename="change_invoice", content_type__app_label="ledger"))
    draft = invoice_create_manual(actor=None, customer=world.other)

    response = client_for(csm).post(f"/api/invoices/{draft.pk}/issue", format="json")

    error_of(response, 404)
    draft.refresh_from_db()
    assert draft.number is None


def test_partial_then_full_credit_note(world, finance_user, client_for):
    client = client_for(finance_user)
    url = f"/api/invoices/{world.own_invoice.pk}/credit-notes"

    partial = client.post(url, {"reason": "Goodwill", "amount": "12.00"}, format="json")

    assert partial.status_code == 201, partial.content
    note = partial.json()
    assert re.fullmatch(r"CN-\d{4}-\d{6}", note["number"])
    assert {key: note[key] for key in ("invoice", "invoice_number", "total", "subtotal", "tax", "full", "reason")} == {
        "invoice": world.own_invoice.pk,
        "invoice_number": world.own_invoice.number,
        "total": "12.00",
        "subtotal": "10.00",
        "tax": "2.00",
        "full": False,
        "reason": "Goodwill",
    }
    invoice = client.get(f"/api/invoices/{world.own_invoice.pk}").json()
    assert (invoice["amount_credited"], invoice["amount_paid"], invoice["outstanding"]) == ("12.00", "50.00", "58.00")
    assert [row["number"] for row in invoice["credit_notes"]] == [note["number"]]

    full = client.post(url, {"reason": "Cancelled contract"}, format="json")

    assert full.status_code == 201, full.content
    assert (full.json()["total"], full.json()["full"]) == ("108.00", True)
    assert client.get(f"/api/invoices/{world.own_invoice.pk}").json()["status"] == "void"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"amount": "5.00"}, 400, "reason"),
        ({"reason": "Too much", "amount": "500.00"}, 400, "amount"),
        ({"reason": "Cents", "amount": "1.005"}, 400, "amount"),
    ],
)
def test_a_bad_credit_note_is_refused_naming_the_field(body, status, field, world, finance_user, client_for):
    response = client_for(finance_user).post(f"/api/invoices/{world.own_invoice.pk}/credit-notes", body, format="json")

    assert field in error_of(response, status)["fields"]
    assert not CreditNote.objects.exists()


def test_a_draft_cannot_be_credited(world, finance_user, client_for):
    response = client_for(finance_user).post(
        f"/api/invoices/{world.own_draft.pk}/credit-notes", {"reason": "No"}, format="json"
    )

    assert error_of(response, 409)["code"] == "invoice_not_editable"


# --- Payments ---------------------------------------------------------------------------------------------------


def test_a_payment_is_booked_and_set_against_the_oldest_open_invoice(world, finance_user, client_for):
    client = client_for(finance_user)
    body = {
        "customer": world.customer.pk,
        "amount": "30.00",
        "received_at": RECEIVED,
        "bank_reference": "BANK-ACME-2",
        "method": "card",
        "note": "Part payment",
    }

    response = client.post("/api/payments", body, format="json")

    assert response.status_code == 201, response.content
    payment = response.json()
    assert {key: payment[key] for key in ("customer", "client_id", "amount", "currency", "unallocated", "method")} == {
        "customer": world.customer.pk,
        "client_id": "ACME",
        "amount": "30.00",
        "currency": "EUR",
        "unallocated": "0.00",
        "method": "card",
    }
    assert [(a["invoice"], a["invoice_number"], a["amount"]) for a in payment["allocations"]] == [
        (world.own_invoice.pk, world.own_invoice.number, "30.00")
    ]
    assert Payment.objects.get(pk=payment["id"]).created_by == finance_user
    assert client.get(f"/api/invoices/{world.own_invoice.pk}").json()["outstanding"] == "40.00"
    assert results(client.get(f"/api/balances?customer={world.customer.pk}"))[0]["balance"] == "40.00"  # was 70.00


def test_a_duplicate_bank_reference_is_a_409_in_the_error_format(world, finance_user, client_for):
    body = {"customer": world.customer.pk, "amount": "50.00", "received_at": RECEIVED, "bank_reference": "BANK-ACME-1"}

    response = client_for(finance_user).post("/api/payments", body, format="json")

    error = error_of(response, 409)
    assert error["code"] == "duplicate_payment"
    assert "bank_reference" in error["fields"]
    assert Payment.objects.filter(customer=world.customer).count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "0.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"bank_reference": ""}, "bank_reference"),
        ({"received_at": "yesterday"}, "received_at"),
        ({"method": "barter"}, "method"),
    ],
)
def test_a_bad_payment_is_a_400_naming_the_field(changes, field, world, finance_user, client_for):
    body = {"customer": world.customer.pk, "amount": "5.00", "received_at": RECEIVED, "bank_reference": "BANK-X"}

    response = client_for(finance_user).post("/api/payments", {**body, **changes}, format="json")

    assert field in error_of(response, 400)["fields"]
    assert Payment.objects.count() == 2


def test_a_received_time_without_offset_is_read_in_the_billing_time_zone(world, finance_user, client_for, settings):
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    body = {
        "customer": world.customer.pk,
        "amount": "5.00",
        "received_at": "2026-11-30T00:30:00",
        "bank_reference": "B",
    }

    response = client_for(finance_user).post("/api/payments", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["received_at"] == "2026-11-29T23:30:00Z"


# --- Payments to a chosen invoice, and moved between invoices ---------------------------------------------------


@pytest.fixture
def two_open(world):
    """ACME's invoice of 120.00 (70.00 still owed after its 50.00 payment) and a newer one of 24.00."""
    return world.own_invoice, issued(world.customer, "20")


def test_a_payment_naming_the_newer_invoice_pays_it_and_not_the_older(world, two_open, finance_user, client_for):
    older, newer = two_open
    body = {
        "customer": world.customer.pk,
        "amount": "24.00",
        "received_at": RECEIVED,
        "bank_reference": "BANK-FOR-NEWER",
        "invoice": newer.pk,
    }

    response = client_for(finance_user).post("/api/payments", body, format="json")

    assert response.status_code == 201, response.content
    assert [(a["invoice_number"], a["amount"]) for a in response.json()["allocations"]] == [(newer.number, "24.00")]
    newer.refresh_from_db()
    older.refresh_from_db()
    assert (newer.status, older.status, older.outstanding) == (Invoice.Status.PAID, Invoice.Status.ISSUED, D("70.00"))


@pytest.mark.parametrize(
    ("invoice", "code", "message"),
    [
        ("other_invoice", "invalid", "belongs to another customer."),
        ("own_draft", "invoice_not_open", "is draft, not open."),
        (0, "invalid", 'Invalid pk "0" - object does not exist.'),
        ("2.5", "invalid", "Give the id as a whole number, not the text '2.5'."),
    ],
)
def test_a_payment_to_an_invoice_it_cannot_pay_is_a_400_naming_the_invoice(
    invoice, code, message, world, finance_user, client_for
):
    invoice = getattr(world, invoice).pk if isinstance(invoice, str) and hasattr(world, invoice) else invoice
    body = {
        "customer": world.customer.pk,
        "amount": "5.00",
        "received_at": RECEIVED,
        "bank_reference": "BANK-X",
        "invoice": invoice,
    }

    response = client_for(finance_user).post("/api/payments", body, format="json")

    error = error_of(response, 400)
    assert (error["code"], list(error["fields"])) == (code, ["invoice"])
    assert error["fields"]["invoice"][0].endswith(message), error
    assert not Payment.objects.filter(bank_reference="BANK-X").exists()


def test_a_wrongly_allocated_payment_moves_to_another_invoice_once_whatever_the_retries(
    world, two_open, finance_user, client_for
):
    older, newer = two_open
    client = client_for(finance_user)
    url = f"/api/payments/{world.own_payment.pk}/allocations"
    body = {"invoice": newer.pk, "from_invoice": older.pk}

    first = client.post(url, body, format="json", headers={"Idempotency-Key": "move-1"})
    second = client.post(url, body, format="json", headers={"Idempotency-Key": "move-1"})

    assert first.status_code == 201, first.content
    assert [(a["invoice_number"], a["amount"]) for a in first.json()["allocations"]] == [
        (older.number, "50.00"),
        (older.number, "-24.00"),
        (newer.number, "24.00"),
    ]
    assert (second.status_code, second.json(), second["Idempotency-Key-Replayed"]) == (201, first.json(), "true")
    assert Allocation.objects.filter(payment=world.own_payment).count() == 3
    invoices = {row["number"]: row for row in results(client.get(f"/api/invoices?customer={world.customer.pk}"))}
    assert (invoices[newer.number]["status"], invoices[newer.number]["outstanding"]) == ("paid", "0.00")
    assert (invoices[older.number]["status"], invoices[older.number]["outstanding"]) == ("issued", "94.00")

    reused = client.post(url, {**body, "amount": "1.00"}, format="json", headers={"Idempotency-Key": "move-1"})
    assert error_of(reused, 409)["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"from_invoice": "own_invoice", "amount": "50.01"}, "invalid", "amount"),
        ({"invoice": "other_invoice", "from_invoice": "own_invoice"}, "invalid", "invoice"),
        ({}, "nothing_to_move", "from_invoice"),
        ({"invoice": None}, "invalid", "invoice"),
    ],
)
def test_a_move_that_cannot_be_made_is_a_400_naming_the_field(
    body, code, field, world, two_open, finance_user, client_for
):
    body = {"invoice": two_open[1].pk} | {
        key: getattr(world, value).pk if isinstance(value, str) and hasattr(world, value) else value
        for key, value in body.items()
    }

    response = client_for(finance_user).post(f"/api/payments/{world.own_payment.pk}/allocations", body, format="json")

    error = error_of(response, 400)
    assert (error["code"], list(error["fields"])) == (code, [field])
    assert Allocation.objects.filter(payment=world.own_payment).count() == 1


# --- Idempotency-Key --------------------------------------------------------------------------------------------


def test_a_replayed_payment_returns_the_first_response_and_books_once(world, finance_user, client_for):
    client = client_for(finance_user)
    body = {"customer": world.customer.pk, "amount": "20.00", "received_at": RECEIVED, "bank_reference": "BANK-R"}

    first = client.post("/api/payments", body, format="json", headers={"Idempotency-Key": "pay-1"})
    second = client.post("/api/payments", body, format="json", headers={"Idempotency-Key": "pay-1"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second["Idempotency-Key-Replayed"] == "true"
    assert Payment.objects.filter(bank_reference="BANK-R").count() == 1
    assert Transaction.objects.filter(reference="BANK-R").count() == 1


def test_the_same_key_with_another_body_is_a_409(world, finance_user, client_for):
    client = client_for(finance_user)
    body = {"customer": world.customer.pk, "amount": "20.00", "received_at": RECEIVED, "bank_reference": "BANK-R"}
    client.post("/api/payments", body, format="json", headers={"Idempotency-Key": "pay-1"})

    response = client.post(
        "/api/payments", {**body, "amount": "21.00"}, format="json", headers={"Idempotency-Key": "pay-1"}
    )

    assert error_of(response, 409)["code"] == "idempotency_key_reused"
    assert list(Payment.objects.filter(bank_reference="BANK-R").values_list("amount", flat=True)) == [D("20.00")]


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/invoices/{draft}/issue", {"send": False}),
        ("/api/invoices/{invoice}/credit-notes", {"reason": "Goodwill", "amount": "6.00"}),
    ],
)
def test_invoice_actions_replay_too(url, body, world, finance_user, client_for):
    client = client_for(finance_user)
    url = url.format(draft=world.own_draft.pk, invoice=world.own_invoice.pk)

    first = client.post(url, body, format="json", headers={"Idempotency-Key": "action-1"})
    second = client.post(url, body, format="json", headers={"Idempotency-Key": "action-1"})

    assert first.status_code in (200, 201), first.content
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert second["Idempotency-Key-Replayed"] == "true"
    assert CreditNote.objects.count() == (1 if "credit-notes" in url else 0)


# --- Transactions -----------------------------------------------------------------------------------------------


@pytest.fixture
def journal(priced_customer, settings):
    """In Europe/Berlin: a charge for ACME on 2 Nov, a payment late on 19 Nov UTC (20 Nov in Berlin),
    an adjustment for OTHER on 25 Nov."""
    settings.BILLING_TIME_ZONE = "Europe/Berlin"
    customer, _ = priced_customer
    other = CustomerFactory(client_id="OTHER")
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 11, 2, 9, tzinfo=UTC)):
        invoice = issued(customer, "100")
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 11, 19, 23, 30, tzinfo=UTC)):
        pay(customer, "50.00", "BANK-1")
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 11, 25, 9, tzinfo=UTC)):
        adjustment_record(actor=None, customer=other, direction="debit", amount=D("5.00"), reason="Late fee")
    return SimpleNamespace(
        customer=customer,
        other=other,
        charge=Transaction.objects.get(kind="charge"),
        payment=Transaction.objects.get(kind="payment"),
        adjustment=Transaction.objects.get(kind="adjustment"),
        invoice=invoice,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["adjustment", "payment", "charge"]),
        ("kind=payment", ["payment"]),
        ("kind=charge", ["charge"]),
        ("customer={customer}", ["payment", "charge"]),
        ("customer={other}", ["adjustment"]),
        ("customer=999999", []),
        ("client_id=OTHER", ["adjustment"]),
        ("from=2026-11-20", ["adjustment", "payment"]),  # 23:30 UTC on the 19th is the 20th in Berlin
        ("to=2026-11-19", ["charge"]),
        ("from=2026-11-02&to=2026-11-20", ["payment", "charge"]),
        ("from=2026-11-21&to=2026-11-24", []),
        ("customer={customer}&kind=charge&to=2026-11-02", ["charge"]),
        ("reference=BANK-1", ["payment"]),
    ],
)
def test_transaction_filters(query, expected, journal, finance_user, client_for):
    query = query.format(customer=journal.customer.pk, other=journal.other.pk)

    rows = results(client_for(finance_user).get(f"/api/transactions?{query}"))

    assert [row["kind"] for row in rows] == expected


@pytest.mark.parametrize("query", ["from=someday", "kind=gift", "customer=acme"])
def test_a_malformed_transaction_filter_is_a_400_naming_it(query, journal, finance_user, client_for):
    response = client_for(finance_user).get(f"/api/transactions?{query}")

    assert query.split("=")[0] in error_of(response, 400)["fields"]


@pytest.mark.parametrize("path", ["/api/transactions", "/api/payments"])
@pytest.mark.parametrize(
    ("query", "fields", "message"),
    [
        ("to=9999-12-31", {"to"}, "Enter a day from 1900-01-01 to 2100-12-31."),
        ("from=0001-01-01&to=9999-12-31", {"from", "to"}, "Enter a day from 1900-01-01 to 2100-12-31."),
        ("from=2026-11-20&to=2026-11-19", {"to"}, "The period ends before it starts."),
    ],
)
def test_days_out_of_range_or_reversed_are_a_400_naming_the_parameter(
    path, query, fields, message, journal, finance_user, client_for
):
    response = client_for(finance_user).get(f"{path}?{query}")

    error = error_of(response, 400)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == fields
    assert error["fields"]["to"] == [message]


def test_a_transaction_with_its_legs(journal, finance_user, client_for):
    row = client_for(finance_user).get(f"/api/transactions/{journal.payment.pk}").json()

    assert {key: row[key] for key in ("kind", "reference", "currency", "customer", "client_id", "created_at")} == {
        "kind": "payment",
        "reference": "BANK-1",
        "currency": "EUR",
        "customer": journal.customer.pk,
        "client_id": "ACME",
        "created_at": "2026-11-19T23:30:00Z",
    }
    assert [(leg["account"], leg["debit"], leg["credit"], leg["balance_after"]) for leg in row["legs"]] == [
        ("cash:EUR", "50.00", "0.00", "50.00"),
        (f"receivable:{journal.customer.pk}", "0.00", "50.00", "70.00"),
    ]


def test_transactions_page_by_cursor(journal, finance_user, client_for):
    client = client_for(finance_user)

    first = client.get("/api/transactions?page_size=2").json()
    second = client.get(first["next"]).json()

    assert [row["kind"] for row in first["results"]] == ["adjustment", "payment"]
    assert [row["kind"] for row in second["results"]] == ["charge"]
    assert "count" not in first


def test_payment_date_filters(journal, finance_user, client_for):
    client = client_for(finance_user)
    payment = Payment.objects.get()

    assert ids(client.get("/api/payments?from=2026-11-20&to=2026-11-20")) == {payment.pk}  # received the 20th UTC
    assert ids(client.get("/api/payments?to=2026-11-19")) == set()
    assert ids(client.get(f"/api/payments?customer={journal.customer.pk}&method=bank_transfer")) == {payment.pk}


def test_invoice_filters(world, finance_user, client_for):
    old = invoice_create_manual(actor=None, customer=world.customer, period=date(2025, 10, 1))
    client = client_for(finance_user)

    assert ids(client.get(f"/api/invoices?customer={world.customer.pk}")) == {
        world.own_invoice.pk,
        world.own_draft.pk,
        old.pk,
    }
    assert ids(client.get("/api/invoices?client_id=OTHER")) == {world.other_invoice.pk}
    assert ids(client.get("/api/invoices?status=issued")) == {world.own_invoice.pk, world.other_invoice.pk}
    assert ids(client.get("/api/invoices?period=2025-10")) == {old.pk}
    assert ids(client.get("/api/invoices?kind=usage")) == set()
    assert ids(client.get(f"/api/invoices?number={world.other_invoice.number}")) == {world.other_invoice.pk}
    assert "period" in error_of(client.get("/api/invoices?period=2026-13"), 400)["fields"]


# --- Statement --------------------------------------------------------------------------------------------------


def test_statement_lists_every_movement_with_the_balance_after(journal, finance_user, client_for):
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 11, 26, 9, tzinfo=UTC)):
        response = client_for(finance_user).post(
            f"/api/invoices/{journal.invoice.pk}/credit-notes", {"reason": "Goodwill", "amount": "10.00"}, "json"
        )
    note = response.json()["number"]

    statement = client_for(finance_user).get(f"/api/customers/{journal.customer.pk}/statement").json()

    assert {key: statement[key] for key in ("customer", "client_id", "currency", "balance")} == {
        "customer": journal.customer.pk,
        "client_id": "ACME",
        "currency": "EUR",
        "balance": "60.00",
    }
    assert statement["lines"] == [
        {
            "date": "2026-11-02T09:00:00Z",
            "kind": "charge",
            "kind_label": "Charge",
            "reference": journal.invoice.number,
            "description": f"Invoice {journal.invoice.number}, 1 Nov 2026 – 30 Nov 2026",
            "amount": "120.00",
            "balance_after": "120.00",
        },
        {
            "date": "2026-11-19T23:30:00Z",
            "kind": "payment",
            "kind_label": "Payment",
            "reference": "BANK-1",
            "description": "Payment BANK-1 (Bank transfer)",
            "amount": "-50.00",
            "balance_after": "70.00",
        },
        {
            "date": "2026-11-26T09:00:00Z",
            "kind": "credit_note",
            "kind_label": "Credit note",
            "reference": note,
            "description": f"Credit note {note} on {journal.invoice.number}: Goodwill",
            "amount": "-10.00",
            "balance_after": "60.00",
        },
    ]


def test_statement_of_a_customer_with_no_movement_is_empty(finance_user, client_for):
    customer = CustomerFactory(currency="GBP")

    statement = client_for(finance_user).get(f"/api/customers/{customer.pk}/statement").json()

    assert (statement["currency"], statement["balance"], statement["lines"]) == ("GBP", "0.00", [])


# --- Query counts -----------------------------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def add_rows(customer, n: int) -> None:
    """n issued invoices, payments set against them and drafts with lines, so every list has more rows."""
    for index in range(Payment.objects.count(), Payment.objects.count() + n):
        issued(customer, "10")
        pay(customer, "6.00", f"BANK-{customer.pk}-{index}")
        invoice_create_manual(
            actor=None, customer=customer, lines=[{"description": "Extra", "quantity": D(1), "unit_price": D(1)}]
        )


# Every call costs the session, the user, the portal membership, and for staff the roles and permissions (3);
# then the list's own queries, pinned here. A portal user needs fewer.
LISTS = {
    # url: (queries at most, rows Finance sees, rows the portal user sees)
    "/api/invoices": (8, 40, 10),  # count, page; the portal sees issued invoices only
    "/api/bills": (8, 40, 10),
    "/api/payments": (9, 20, 10),  # count, page, allocations with their invoices
    "/api/transactions": (9, 40, 20),  # the roles again (whole chart or not), page by cursor, legs with accounts
    "/api/balances": (8, 2, 1),  # count, page
    "/api/customers/{customer}/statement": (9, 20, 20),  # customer, balance, legs with their transactions
}


@pytest.mark.parametrize("caller", ["finance", "portal"])
@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(url, caller, make_user, client_for, django_assert_max_num_queries):
    customers = CustomerFactory.create_batch(2)
    user = make_user(Role.FINANCE) if caller == "finance" else portal_user_of(customers[0])
    client = client_for(user)
    pinned, finance_rows, portal_rows = LISTS[url]
    url = url.format(customer=customers[0].pk)
    for customer in customers:
        add_rows(customer, 2)
    few = count_queries(client, url)
    for customer in customers:
        add_rows(customer, 8)

    with django_assert_max_num_queries(min(few, pinned)):
        response = client.get(url)

    rows = response.json()["lines" if "statement" in url else "results"]
    assert len(rows) == (finance_rows if caller == "finance" else portal_rows)


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        # invoice, lines with services, credit notes, allocations, approval actions (with an open request, two
        # more: pinned in test_api_approvals.py)
        ("/api/invoices/{invoice}", 11),
        ("/api/payments/{payment}", 8),  # payment, allocations with their invoices
        ("/api/transactions/{transaction}", 9),  # roles again, transaction, legs with accounts
    ],
)
def test_detail_query_counts_are_pinned(url, pinned, world, finance_user, client_for, django_assert_max_num_queries):
    credit_note_issue(actor=None, invoice=world.own_invoice, reason="Goodwill", amount=D("6.00"))
    invoice_add_line(actor=None, invoice=world.own_draft, description="More", quantity=D(1), unit_price=D(1))
    client = client_for(finance_user)
    url = url.format(
        invoice=world.own_invoice.pk,
        payment=world.own_payment.pk,
        transaction=Transaction.objects.get(kind="charge", customer=world.customer).pk,
    )

    with django_assert_max_num_queries(pinned):
        assert client.get(url).status_code == 200


# --- OpenAPI ----------------------------------------------------------------------------------------------------


def test_schema_generates_without_warnings_and_holds_the_ledger(tmp_path, client_for):
    reset_generator_stats()

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    paths = client_for(None).get("/api/schema/?format=json").json()["paths"]
    assert {
        "/api/invoices",
        "/api/invoices/{id}",
        "/api/invoices/{id}/issue",
        "/api/invoices/{id}/credit-notes",
        "/api/bills",
        "/api/bills/{id}/issue",
        "/api/payments",
        "/api/payments/{id}/allocations",
        "/api/transactions",
        "/api/balances",
        "/api/customers/{id}/statement",
    } <= set(paths)
    mutating = [
        "/api/invoices",
        "/api/invoices/{id}/issue",
        "/api/invoices/{id}/credit-notes",
        "/api/payments",
        "/api/payments/{id}/allocations",
    ]
    for path in mutating:
        assert "Idempotency-Key" in [parameter["name"] for parameter in paths[path]["post"]["parameters"]]


def test_a_usage_draft_with_nothing_to_bill_is_409_unless_the_customer_asks_for_zero_invoices(
    priced_customer, finance_user, client_for
):
    customer, _ = priced_customer  # no usage, no fee in October
    client = client_for(finance_user)

    error = error_of(client.post("/api/invoices", {"customer": customer.pk, "period": "2026-10"}, format="json"), 409)

    assert error["code"] == "nothing_to_bill"
    assert error["message"].startswith(
        "ACME has nothing to bill for 2026-10 (no fee, and no usage beyond its allowance)"
    )
    assert error["fields"] == {"period": ["Nothing to bill for this month."]}
    assert not Invoice.objects.exists()

    billing_config_update(actor=None, customer=customer, send_zero_invoices=True)
    response = client.post("/api/invoices", {"customer": customer.pk, "period": "2026-10"}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["total"], response.json()["status"]) == ("0.00", "draft")
