"""The order desk's API: orders, their lifecycle, documents, tasks, comments and the reference data."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.roles import Role
from billing_project.billing_time import billing_today
from catalog.tests.factories import CustomerFactory, PartnerFactory, PortalMembershipFactory
from orders.models import Company, Order, OrderDocument, Task
from orders.services.documents import document_review, document_upload
from orders.services.orders import order_create, order_transition
from orders.tests.conftest import pdf_bytes, png_bytes
from orders.tests.factories import CompanyFactory, DocumentTypeFactory, RegistrarFactory, RequirementFactory

pytestmark = pytest.mark.django_db


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def files_in(media_root) -> list[str]:
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


@pytest.fixture
def order(formation, operations_user):
    return order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])


def documents_of(order: Order) -> dict[str, OrderDocument]:
    return {d.document_type.code: d for d in order.documents.select_related("document_type")}


# --- Orders -----------------------------------------------------------------------------------------------------


def test_operations_creates_an_order_and_sees_its_fee_but_not_its_base_charge(formation, operations_user, client_for):
    body = {"customer": formation["customer"].pk, "order_type": "uk_formation", "description": "Acme Holdings"}

    created = ok(client_for(operations_user).post("/api/orders", body, format="json"), 201)

    assert created["number"].startswith("ORD-") and created["status"] == "documents_pending"
    assert created["fee"] == "1000.00" and created["currency"] == "GBP"
    assert created["base_charge"] is None
    assert [(d["document_type"], d["status"]) for d in created["documents"]] == [
        ("passport", "pending"),
        ("proof_of_address", "pending"),
    ]
    assert [(t["from_status"], t["to_status"]) for t in created["timeline"]] == [
        ("", "started"),
        ("started", "documents_pending"),
    ]
    assert created["due_date"] == (billing_today() + timedelta(days=14)).isoformat()
    assert Order.objects.get(pk=created["id"]).created_by == operations_user


def test_who_sees_money_sees_the_base_charge_and_sets_it(formation, make_user, client_for):
    sales = make_user(Role.SALES)
    body = {"customer": formation["customer"].pk, "order_type": "uk_formation", "base_charge": "99.50"}

    created = ok(client_for(sales).post("/api/orders", body, format="json"), 201)

    assert created["base_charge"] == "99.50"
    assert Order.objects.get(pk=created["id"]).base_charge == Decimal("99.50")


def test_operations_may_not_set_a_base_charge_it_does_not_see(formation, operations_user, client_for):
    body = {"customer": formation["customer"].pk, "order_type": "uk_formation", "base_charge": "1.00"}

    error = error_of(client_for(operations_user).post("/api/orders", body, format="json"), 403)

    assert set(error["fields"]) == {"base_charge"}
    assert not Order.objects.exists()


def test_create_refusals_name_the_field(formation, operations_user, client_for):
    client = client_for(operations_user)
    customer = formation["customer"]
    others = CompanyFactory(customer=CustomerFactory())
    cases = [
        ({"company": others.pk}, "company"),  # another customer's company is one the caller does not name here
        ({"due_date": "2020-01-01", "start_date": "2020-02-01"}, "due_date"),
        ({"order_type": "no_such_type"}, "order_type"),
        ({"customer": 10**9}, "customer"),
        ({"fee": "-1.00"}, "fee"),
    ]
    for change, field in cases:
        body = {"customer": customer.pk, "order_type": "uk_formation", **change}
        error = error_of(client.post("/api/orders", body, format="json"), 400)
        assert field in error["fields"], (change, error)
    assert not Order.objects.exists()


def test_a_company_of_another_customer_is_refused_with_the_services_message(formation, admin_user, client_for):
    others = CompanyFactory(customer=CustomerFactory(), name="Elsewhere Ltd")
    body = {"customer": formation["customer"].pk, "order_type": "uk_formation", "company": others.pk}

    error = error_of(client_for(admin_user).post("/api/orders", body, format="json"), 400)

    assert error["fields"]["company"] == ["Elsewhere Ltd belongs to another customer, not Acme Ltd."]


def test_creating_with_an_idempotency_key_replays_the_first_response(formation, operations_user, client_for):
    client = client_for(operations_user)
    body = {"customer": formation["customer"].pk, "order_type": "uk_formation"}
    key = {"Idempotency-Key": "order-1"}

    first = client.post("/api/orders", body, format="json", headers=key)
    again = client.post("/api/orders", body, format="json", headers=key)
    other = client.post("/api/orders", {**body, "description": "x"}, format="json", headers=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotency-Key-Replayed"] == "true"
    assert error_of(other, 409)["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_the_list_filters_and_searches(formation, operations_user, make_user, client_for):
    customer = formation["customer"]
    other_customer = CustomerFactory(name="Globex", client_id="GLOBEX-1")
    partner = PartnerFactory()
    company = CompanyFactory(customer=customer, name="Acme Holdings Ltd", registration_number="12345678")
    first = order_create(
        actor=None, customer=customer, order_type=formation["order_type"], company=company, partner=partner
    )
    late = order_create(
        actor=None,
        customer=other_customer,
        order_type=formation["order_type"],
        assignee=operations_user,
        start_date=billing_today() - timedelta(days=30),
        due_date=billing_today() - timedelta(days=1),
    )
    cancelled = order_create(actor=None, customer=other_customer, order_type=formation["order_type"])
    order_transition(actor=None, order=cancelled, to_status="cancelled", reason="Client withdrew")
    client = client_for(operations_user)

    def numbers(query) -> set[str]:
        return {row["number"] for row in ok(client.get("/api/orders", query))["results"]}

    everything = {first.number, late.number, cancelled.number}
    assert numbers({}) == everything
    assert numbers({"status": ["cancelled", "documents_pending"]}) == everything
    assert numbers({"status": "cancelled"}) == {cancelled.number}
    assert numbers({"order_type": "uk_formation"}) == everything
    assert numbers({"order_type": "other"}) == set()
    assert numbers({"customer": customer.pk}) == {first.number}
    assert numbers({"partner": partner.pk}) == {first.number}
    assert numbers({"assignee": operations_user.pk}) == {late.number}
    assert numbers({"overdue": "true"}) == {late.number}
    assert numbers({"overdue": "false"}) == {first.number, cancelled.number}
    assert numbers({"due_before": (billing_today() - timedelta(days=1)).isoformat()}) == {late.number}
    assert numbers({"due_after": billing_today().isoformat()}) == {first.number, cancelled.number}
    assert numbers({"search": "globex"}) == {late.number, cancelled.number}
    assert numbers({"search": "12345678"}) == {first.number}
    assert numbers({"search": first.number}) == {first.number}
    assert set(error_of(client.get("/api/orders", {"status": "lost"}), 400)["fields"]) == {"status"}
    assert set(error_of(client.get("/api/orders", {"overdue": "maybe"}), 400)["fields"]) == {"overdue"}
    assert set(error_of(client.get("/api/orders", {"due_before": "1/2/2026"}), 400)["fields"]) == {"due_before"}


def test_the_list_and_the_detail_take_a_fixed_number_of_queries(
    formation, operations_user, client_for, django_assert_max_num_queries, pdf_upload
):
    client = client_for(operations_user)
    for _ in range(2):
        order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    order = Order.objects.first()
    for document in order.documents.all():
        document_upload(actor=operations_user, document=document, upload=pdf_upload())
    client.get("/api/orders")  # the session's user, once

    with django_assert_max_num_queries(8) as few:
        ok(client.get("/api/orders"))
    for _ in range(5):
        order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert ok(client.get("/api/orders"))["count"] == 7

    with django_assert_max_num_queries(10):
        detail = ok(client.get(f"/api/orders/{order.pk}"))
    assert all(d["current_file"]["uploaded_by"] == operations_user.email for d in detail["documents"])


def test_patch_changes_what_may_change(order, operations_user, client_for):
    client = client_for(operations_user)
    new_due = (order.due_date + timedelta(days=7)).isoformat()

    changed = ok(client.patch(f"/api/orders/{order.pk}", {"due_date": new_due, "fee": "800.00"}, format="json"))

    assert changed["due_date"] == new_due and changed["fee"] == "800.00"
    error = error_of(client.patch(f"/api/orders/{order.pk}", {"due_date": "2000-01-01"}, format="json"), 400)
    assert set(error["fields"]) == {"due_date"}
    order_transition(actor=operations_user, order=order, to_status="cancelled", reason="Client withdrew")
    closed = error_of(client.patch(f"/api/orders/{order.pk}", {"fee": "1.00"}, format="json"), 400)
    assert closed["message"] == f"{order.number} is cancelled; its terms no longer change."
    order.refresh_from_db()
    assert order.due_date.isoformat() == new_due and order.fee == Decimal("800.00")


def test_a_transition_is_refused_with_what_is_missing(order, operations_user, client_for, pdf_upload):
    client = client_for(operations_user)
    documents = documents_of(order)
    document_upload(actor=operations_user, document=documents["passport"], upload=pdf_upload())
    document_review(actor=operations_user, document=documents["passport"], accept=False, reason="Expired")

    error = error_of(client.post(f"/api/orders/{order.pk}/transition", {"to_status": "in_progress"}, "json"), 400)

    assert error["code"] == "documents_missing"
    assert error["message"] == (
        "2 required documents are not accepted: Passport (rejected), Proof of address (pending)."
    )
    assert error["fields"] == {"to_status": [error["message"]]}
    cancel = client.post(f"/api/orders/{order.pk}/transition", {"to_status": "cancelled"}, "json")
    assert error_of(cancel, 400)["fields"].keys() == {"reason"}
    wrong = client.post(f"/api/orders/{order.pk}/transition", {"to_status": "completed"}, "json")
    assert error_of(wrong, 400)["code"] == "invalid_transition"
    override = client.post(
        f"/api/orders/{order.pk}/transition", {"to_status": "in_progress", "override": True, "reason": "x"}, "json"
    )
    assert error_of(override, 403)["code"] == "permission_denied"
    order.refresh_from_db()
    assert order.status == "documents_pending" and order.status_history.count() == 2


def test_an_admin_overrides_with_a_reason_and_the_timeline_says_so(order, admin_user, client_for):
    client = client_for(admin_user)
    body = {"to_status": "in_progress", "override": True, "reason": "Originals seen at the office"}

    moved = ok(client.post(f"/api/orders/{order.pk}/transition", body, format="json"))

    assert moved["status"] == "in_progress"
    assert moved["timeline"][-1] == {
        "from_status": "documents_pending",
        "to_status": "in_progress",
        "actor": admin_user.email,
        "at": moved["timeline"][-1]["at"],
        "comment": "Originals seen at the office",
        "override": True,
    }
    assert [t["to_status"] for t in moved["transitions"]] == ["completed", "failed"]
    done = ok(client.post(f"/api/orders/{order.pk}/transition", {"to_status": "completed"}, format="json"))
    assert done["status"] == "completed" and done["completed_at"]


# --- Documents --------------------------------------------------------------------------------------------------


def upload(client, order, document_type: str, name: str, content: bytes, **extra):
    """A multipart upload written out by hand, so the file name reaches the server as it is."""
    boundary = "----countinghouse-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="document_type"\r\n\r\n{document_type}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    return client.generic(
        "POST",
        f"/api/orders/{order.pk}/documents",
        body,
        content_type=f"multipart/form-data; boundary={boundary}",
        **extra,
    )


def test_documents_are_uploaded_rejected_uploaded_again_accepted_and_downloaded(
    order, operations_user, client_for, media_in_tmp
):
    client = client_for(operations_user)
    documents = documents_of(order)
    passport = documents["passport"]

    received = ok(upload(client, order, "passport", "passport.pdf", pdf_bytes()), 201)

    assert received["status"] == "received" and received["current_file"]["kind"] == "pdf"
    assert files_in(media_in_tmp) == [f"orders/acme-001/{order.number}/passport-1.pdf"]
    review = f"/api/orders/{order.pk}/documents/{passport.pk}/review"
    refused = client.post(review, {"accept": False}, format="json")
    assert error_of(refused, 400)["code"] == "reason_required"
    rejected = ok(client.post(review, {"accept": False, "reason": "The photo is unreadable"}, format="json"))
    assert rejected["status"] == "rejected" and rejected["rejection_reason"] == "The photo is unreadable"

    again = ok(upload(client, order, "passport", "passport scan.png", png_bytes()), 201)
    assert [f["sequence"] for f in again["files"]] == [1, 2] and again["current_file"]["kind"] == "png"
    submitted = ok(client.post(f"/api/orders/{order.pk}/documents/{passport.pk}/submit"))
    assert submitted["status"] == "submitted"
    accepted = ok(client.post(review, {"accept": True}, format="json"))
    assert accepted["status"] == "accepted" and accepted["reviewed_by"] == operations_user.email
    assert accepted["expires_on"] == (billing_today() + timedelta(days=365)).isoformat()

    listed = ok(client.get(f"/api/orders/{order.pk}/documents"))["results"]
    assert [(d["document_type"], d["status"]) for d in listed] == [
        ("passport", "accepted"),
        ("proof_of_address", "pending"),
    ]
    first_file = listed[0]["files"][0]
    download = client.get(first_file["download"])
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == first_file["sha256"]
    assert 'filename="passport.pdf"' in download["Content-Disposition"]


def test_an_optional_document_type_is_taken_and_one_the_type_does_not_use_is_refused(
    formation, order, operations_user, client_for
):
    optional = DocumentTypeFactory(code="bank_reference", name="Bank reference", accepted_kinds="pdf")
    RequirementFactory(order_type=formation["order_type"], document_type=optional, required=False)
    DocumentTypeFactory(code="unrelated", accepted_kinds="pdf")
    client = client_for(operations_user)

    taken = ok(upload(client, order, "bank_reference", "reference.pdf", pdf_bytes()), 201)
    refused = error_of(upload(client, order, "unrelated", "x.pdf", pdf_bytes()), 400)

    assert taken["required"] is False and taken["status"] == "received"
    assert refused["code"] == "document_type_not_used" and set(refused["fields"]) == {"document_type"}
    assert not order.documents.filter(document_type__code="unrelated").exists()


EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
BAD_UPLOADS = {
    "renamed executable": ("setup.pdf", EXECUTABLE, "file_kind"),
    "a kind the type does not take": ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 100, "file_kind"),
    "bytes and extension disagree": ("address.pdf", png_bytes(), "file_extension"),
    "empty": ("empty.pdf", b"", "invalid"),
    "parent folder": ("../../passport.pdf", pdf_bytes(), "bad_file_name"),
    "absolute path": ("/etc/passport.pdf", pdf_bytes(), "bad_file_name"),
    "windows path": ("C:\\\\temp\\\\passport.pdf", pdf_bytes(), "bad_file_name"),
    "escaped parent folder": ("&#46;&#46;&#47;passport.pdf", pdf_bytes(), "bad_file_name"),
    "NUL byte": ("passport.pdf\x00.png", pdf_bytes(), "bad_file_name"),
    "very long name": ("p" * 300 + ".pdf", pdf_bytes(), "bad_file_name"),
    "hidden file": (".htaccess.pdf", pdf_bytes(), "bad_file_name"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_and_nothing_is_stored(
    case, formation, order, operations_user, client_for, media_in_tmp
):
    formation["passport"].accepted_kinds = "pdf,png"
    formation["passport"].save()
    name, content, code = BAD_UPLOADS[case]

    error = error_of(upload(client_for(operations_user), order, "passport", name, content), 400)

    assert error["code"] == code and set(error["fields"]) == {"file"}, error
    assert documents_of(order)["passport"].status == "pending"
    assert files_in(media_in_tmp) == []


def test_a_file_over_the_document_types_size_is_refused_and_nothing_is_stored(
    formation, order, operations_user, client_for, media_in_tmp
):
    formation["passport"].max_size_bytes = 1000
    formation["passport"].save()

    error = error_of(upload(client_for(operations_user), order, "passport", "big.pdf", pdf_bytes() + b" " * 1000), 400)

    assert error["code"] == "file_too_large" and set(error["fields"]) == {"file"}
    assert files_in(media_in_tmp) == []


def test_an_upload_must_be_multipart(order, operations_user, client_for):
    body = {"document_type": "passport", "file": "cGRm"}
    response = client_for(operations_user).post(f"/api/orders/{order.pk}/documents", body, format="json")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_tasks_are_added_changed_done_and_reopened(order, operations_user, make_user, client_for):
    client = client_for(operations_user)
    colleague = make_user(Role.OPERATIONS)
    url = f"/api/orders/{order.pk}/tasks"

    task = ok(client.post(url, {"title": "Call the registrar", "priority": "high"}, format="json"), 201)
    changed = ok(client.patch(f"{url}/{task['id']}", {"assignee": colleague.pk, "due_date": "2026-09-01"}, "json"))
    done = ok(client.post(f"{url}/{task['id']}/complete"))
    done_again = ok(client.post(f"{url}/{task['id']}/complete"))
    reopened = ok(client.post(f"{url}/{task['id']}/reopen"))

    assert changed["assignee"] == {"id": colleague.pk, "email": colleague.email, "full_name": colleague.full_name}
    assert done["done_by"] == operations_user.email and done_again["done_at"] == done["done_at"]
    assert reopened["done_at"] is None and reopened["done_by"] is None
    assert [t["title"] for t in ok(client.get(url))["results"]] == ["Call the registrar"]
    assert ok(client.get(f"/api/orders/{order.pk}"))["tasks_open"] == 1
    portal_user = PortalMembershipFactory().user
    error = error_of(client.post(url, {"title": "x", "assignee": portal_user.pk}, format="json"), 400)
    assert set(error["fields"]) == {"assignee"}
    assert error_of(client.post(url, {"title": ""}, format="json"), 400)["fields"].keys() == {"title"}


def test_a_task_of_another_order_answers_404(formation, order, operations_user, client_for):
    other = order_create(actor=None, customer=formation["customer"], order_type=formation["order_type"])
    task = Task.objects.create(order=other, title="Elsewhere")
    response = client_for(operations_user).patch(f"/api/orders/{order.pk}/tasks/{task.pk}", {"title": "x"}, "json")
    assert error_of(response, 404)["code"] == "not_found"
    task.refresh_from_db()
    assert task.title == "Elsewhere"


# --- Comments ---------------------------------------------------------------------------------------------------


def test_comments_are_added_as_json_or_with_attachments(order, operations_user, client_for, pdf_upload, png_upload):
    client = client_for(operations_user)
    url = f"/api/orders/{order.pk}/comments"

    plain = ok(client.post(url, {"body": "Client called"}, format="json"), 201)
    with_files = ok(
        client.post(url, {"body": "Scans attached", "attachments": [pdf_upload(), png_upload()]}, format="multipart"),
        201,
    )

    assert plain["author"] == operations_user.email and plain["attachments"] == []
    assert [a["original_name"] for a in with_files["attachments"]] == ["passport.pdf", "address.png"]
    assert [c["body"] for c in ok(client.get(url))["results"]] == ["Client called", "Scans attached"]
    assert error_of(client.post(url, {"body": "  "}, format="json"), 400)["fields"].keys() == {"body"}


def test_a_comment_attachment_with_a_path_for_a_name_is_refused(order, operations_user, client_for, media_in_tmp):
    boundary = "----countinghouse-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\nSee attached\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="../../x.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + pdf_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )

    response = client_for(operations_user).generic(
        "POST", f"/api/orders/{order.pk}/comments", body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert error_of(response, 400)["fields"].keys() == {"attachments"}
    assert not order.comments.exists() and files_in(media_in_tmp) == []


# --- Reference data ---------------------------------------------------------------------------------------------


def test_order_types_hide_the_default_base_charge_from_operations(formation, operations_user, finance_user, client_for):
    as_ops = ok(client_for(operations_user).get("/api/order-types"))["results"][0]
    assert as_ops["default_fee"] == "1000.00" and as_ops["default_base_charge"] is None
    assert [r["document_type"] for r in as_ops["requirements"]] == ["passport", "proof_of_address"]


def test_finance_sees_the_default_base_charge(formation, finance_user, client_for):
    assert ok(client_for(finance_user).get("/api/order-types"))["results"][0]["default_base_charge"] == "120.00"


def test_document_types_and_registrars_are_listed(formation, operations_user, client_for):
    RegistrarFactory(name="Companies House")
    client = client_for(operations_user)
    kinds = {row["code"]: row["accepted_kinds"] for row in ok(client.get("/api/document-types"))["results"]}
    assert kinds == {"passport": ["pdf", "jpeg", "png"], "proof_of_address": ["pdf", "png"]}
    assert [r["name"] for r in ok(client.get("/api/registrars"))["results"]] == ["Companies House"]


def test_companies_are_created_by_staff_and_read_by_their_portal_user(formation, operations_user, client_for):
    registrar = RegistrarFactory()
    customer = formation["customer"]
    CompanyFactory(customer=CustomerFactory(), name="Not theirs Ltd")
    body = {
        "name": "Acme Holdings Ltd",
        "registration_number": "01234567",
        "jurisdiction": "GB",
        "registrar": registrar.pk,
        "customer": customer.pk,
    }
    client = client_for(operations_user)

    created = ok(client.post("/api/companies", body, format="json"), 201)
    duplicate = error_of(client.post("/api/companies", {**body, "name": "Copy Ltd"}, format="json"), 400)

    assert created["status"] == "active" and Company.objects.filter(name="Acme Holdings Ltd").exists()
    assert "registrar already has a company" in duplicate["message"]
    portal = PortalMembershipFactory(customer=customer).user
    client.logout()
    portal_client = client_for(portal)
    assert [c["name"] for c in ok(portal_client.get("/api/companies"))["results"]] == ["Acme Holdings Ltd"]
    assert error_of(portal_client.post("/api/companies", {**body, "registration_number": "2"}, "json"), 403)


def test_an_id_that_is_not_a_number_answers_404(order, operations_user, client_for):
    client = client_for(operations_user)
    for path in ("/api/orders/null,null", "/api/order-types/x", "/api/companies/1e3"):
        assert error_of(client.get(path), 404)["code"] == "not_found", path
    assert error_of(client.patch("/api/orders/null", {"description": "x"}, format="json"), 404)["code"] == "not_found"


def test_reference_filters_refuse_what_is_not_a_boolean(formation, operations_user, client_for):
    client = client_for(operations_user)
    for path in ("/api/order-types", "/api/document-types"):
        assert set(error_of(client.get(path, {"active": "7e-151"}), 400)["fields"]) == {"active"}, path
    assert ok(client.get("/api/order-types", {"active": "false"}))["count"] == 0
