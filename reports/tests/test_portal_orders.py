"""The portal's order pages: a portal user sees their own customer's orders, documents and timeline only."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from reportlab.pdfgen import canvas

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.billing_time import billing_today
from billing_project.formatting import day
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory
from orders.services.comments import comment_add
from orders.services.documents import document_review, document_upload
from orders.services.orders import order_create, order_transition
from orders.services.tasks import task_create
from orders.tests.factories import CompanyFactory, DocumentTypeFactory, OrderTypeFactory, RequirementFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("portal:orders")


def pdf_upload(name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, name)
    page.save()
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/pdf")


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def membership():
    return PortalMembershipFactory(
        user__email="jane@acme.example",
        customer__name="Acme Holdings",
        customer__client_id="ACME",
        customer__currency="GBP",
    )


@pytest.fixture
def formation():
    order_type = OrderTypeFactory(name="UK company formation", default_fee=Decimal("1500.00"))
    passport = DocumentTypeFactory(code="passport", name="Passport", accepted_kinds="pdf,png", validity_days=365)
    address = DocumentTypeFactory(code="proof_of_address", name="Proof of address", accepted_kinds="pdf")
    articles = DocumentTypeFactory(code="articles", name="Articles of association", accepted_kinds="pdf")
    RequirementFactory(order_type=order_type, document_type=passport, client_note="Every page with a photo.")
    RequirementFactory(order_type=order_type, document_type=address, client_note="Dated in the last 3 months.")
    RequirementFactory(
        order_type=order_type, document_type=articles, required=False, client_note="Only if you have your own."
    )
    return order_type


@pytest.fixture
def operations(make_user):
    return make_user(Role.OPERATIONS, email="ops@x.example", full_name="Oscar Internal")


def test_portal_user_sees_their_customers_orders_only(
    client, membership, formation, operations, django_assert_max_num_queries
):
    company = CompanyFactory(customer=membership.customer, name="Acme Widgets Ltd")
    earlier = order_create(
        actor=operations,
        customer=membership.customer,
        order_type=formation,
        company=company,
        start_date=billing_today() - timedelta(days=30),
    )
    own = order_create(actor=operations, customer=membership.customer, order_type=formation, company=company)
    other_customer = CustomerFactory(name="Globex Corp", client_id="GLOBEX")
    other = order_create(
        actor=operations,
        customer=other_customer,
        order_type=formation,
        company=CompanyFactory(customer=other_customer, name="Globex Secret Ltd"),
    )
    client.force_login(membership.user)

    with django_assert_max_num_queries(6):
        response = client.get(ORDERS)

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == [own, earlier]
    content = response.content.decode()
    for shown in [own.number, "UK company formation", "Acme Widgets Ltd", "Documents pending", "GBP\u00a01,500.00"]:
        assert shown in content
    assert f"Due {day(own.due_date)}</td>" in content
    assert f"Due {day(earlier.due_date)} (overdue)" in content
    assert reverse("portal:order", args=[own.pk]) in content
    for hidden in [other.number, "Globex"]:
        assert hidden not in content
    assert 'href="/portal/orders/" aria-current="page">Orders</a>' in content


def test_portal_user_without_orders_sees_what_to_do(client, membership):
    client.force_login(membership.user)

    response = client.get(ORDERS)

    assert response.status_code == 200
    assert "You have no orders yet. To start one" in response.content.decode()
    assert "contact your account manager" in response.content.decode()


def test_order_page_shows_the_timeline_and_what_is_missing_or_rejected_and_why(
    client, membership, formation, operations, django_assert_max_num_queries
):
    order = order_create(actor=operations, customer=membership.customer, order_type=formation)
    passport, address = sorted(order.documents.all(), key=lambda document: document.document_type.code)
    passport = document_upload(actor=operations, document=passport, upload=pdf_upload("passport.pdf"))
    document_review(actor=operations, document=passport, accept=False, reason="The scan is cut off at the bottom.")
    comment_add(actor=operations, order=order, body="Client is slow, chase on Friday.")
    task_create(actor=operations, order=order, title="Call the registrar about the name", assignee=operations)
    client.force_login(membership.user)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("portal:order", args=[order.pk]))

    assert response.status_code == 200
    rows = {row.document_type.code: row for row in response.context["checklist"]}
    assert [row.document_type.code for row in response.context["checklist"]] == [
        "passport", "proof_of_address", "articles"
    ]  # fmt: skip
    assert (rows["passport"].status, rows["passport"].required) == ("rejected", True)
    assert (rows["proof_of_address"].status, rows["articles"].required) == ("pending", False)
    assert [row.document_type.code for row in response.context["missing"]] == ["passport", "proof_of_address"]
    content = response.content.decode()
    for shown in [
        "We still need 2 documents from you",
        "Rejected: The scan is cut off at the bottom.",
        "Every page with a photo.",
        "Dated in the last 3 months.",
        "Only if you have your own.",
        "Missing: please send it.",
        "Optional; send it if it applies to you.",
        "PDF, PNG, up to 5.0",
        "GBP\u00a01,500.00",
        "Opened",
        "Documents pending",
        "2 required documents are not accepted: Passport (pending), Proof of address (pending)",
    ]:
        assert shown in content, shown
    assert [change.to_status for change in response.context["timeline"]] == ["started", "documents_pending"]
    for hidden in ["Client is slow", "Call the registrar", "Oscar Internal", "ops@x.example"]:
        assert hidden not in content, hidden
    assert reverse("portal:order_document", args=[passport.current_file.pk]) in content


def test_override_notes_stay_with_the_staff_and_a_cancellation_reason_reaches_the_client(
    client, membership, formation, operations, admin_user
):
    overridden = order_create(actor=operations, customer=membership.customer, order_type=formation)
    order_transition(
        actor=admin_user, order=overridden, to_status="in_progress", reason="Partner vouches for them", override=True
    )
    cancelled = order_create(actor=operations, customer=membership.customer, order_type=formation)
    order_transition(actor=operations, order=cancelled, to_status="cancelled", reason="You withdrew the request.")
    client.force_login(membership.user)

    overridden_page = client.get(reverse("portal:order", args=[overridden.pk])).content.decode()
    cancelled_page = client.get(reverse("portal:order", args=[cancelled.pk])).content.decode()

    assert "In progress" in overridden_page and "Partner vouches" not in overridden_page
    assert "We still need" not in overridden_page
    assert "You withdrew the request." in cancelled_page
    assert "Missing: please send it." not in cancelled_page


def test_portal_user_downloads_their_own_documents_and_no_one_elses(client, membership, formation, operations):
    own = order_create(actor=operations, customer=membership.customer, order_type=formation)
    own_document = own.documents.get(document_type__code="passport")
    document_upload(actor=operations, document=own_document, upload=pdf_upload("scan 0001.pdf"))
    other = order_create(actor=operations, customer=CustomerFactory(), order_type=formation)
    other_document = other.documents.get(document_type__code="passport")
    document_upload(actor=operations, document=other_document, upload=pdf_upload("other.pdf"))
    own_document.refresh_from_db()
    other_document.refresh_from_db()
    client.force_login(membership.user)

    download = client.get(reverse("portal:order_document", args=[own_document.current_file.pk]))

    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == f'attachment; filename="{own.number}-passport-1.pdf"'
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert client.get(reverse("portal:order_document", args=[other_document.current_file.pk])).status_code == 404
    assert client.get(reverse("portal:order", args=[other.pk])).status_code == 404
    assert client.get(reverse("portal:order", args=[own.pk])).status_code == 200


def test_staff_are_sent_to_the_admin_and_never_download_through_the_portal(client, make_user, formation, operations):
    order = order_create(actor=operations, customer=CustomerFactory(), order_type=formation)
    document = order.documents.get(document_type__code="passport")
    document_upload(actor=operations, document=document, upload=pdf_upload("passport.pdf"))
    document.refresh_from_db()
    client.force_login(make_user(Role.ADMIN))

    for page in (ORDERS, reverse("portal:order", args=[order.pk])):
        response = client.get(page)
        assert response.status_code == 302
        assert response.url == reverse("admin:index")
    assert client.get(reverse("portal:order_document", args=[document.current_file.pk])).status_code == 404


def test_signed_in_user_without_a_customer_account_is_refused_the_orders(client):
    client.force_login(UserFactory(is_staff=False))

    response = client.get(ORDERS)

    assert response.status_code == 403
    assert "No customer account" in response.content.decode()


def test_anonymous_visitor_is_sent_to_the_portal_login(client, formation, operations):
    order = order_create(actor=operations, customer=CustomerFactory(), order_type=formation)

    for page in (ORDERS, reverse("portal:order", args=[order.pk])):
        response = client.get(page)
        assert response.status_code == 302
        assert response.url.startswith(reverse("portal:login"))
