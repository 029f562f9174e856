"""The order desk's admin: who sees which order (404 otherwise), the buttons that move an order, documents,
tasks, comments, sharing, bulk actions, "My open tasks", money hidden from Operations, and query counts."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.roles import Role
from billing_project.billing_time import billing_today
from catalog.models import CustomerUserObjectPermission
from catalog.selectors import customer_deputies
from catalog.tests.factories import CustomerFactory, PartnerFactory
from orders.models import Order, OrderDocument, OrderStatusHistory, OrderUserObjectPermission, Task
from orders.services.comments import comment_add
from orders.services.documents import document_review, document_upload
from orders.services.orders import order_create, order_transition
from orders.services.sharing import order_share
from orders.services.tasks import task_create
from orders.tests.factories import CompanyFactory, OrderTypeFactory

pytestmark = pytest.mark.django_db

DIALOG = {"_form_submitted": "on"}  # what an unfold action dialog posts
LIST = "/admin/orders/order/"


def page(order: Order) -> str:
    return f"/admin/orders/order/{order.pk}/change/"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def order(formation, operations_user):
    return order_create(
        actor=operations_user,
        customer=formation["customer"],
        order_type=formation["order_type"],
        partner=PartnerFactory(name="Northgate Partners"),
    )


@pytest.fixture
def ops(client, operations_user):
    client.force_login(operations_user)
    return client


@pytest.fixture
def admin_client_(admin_user):
    """Its own client, so a test can hold it and another user's side by side."""
    client = Client()
    client.force_login(admin_user)
    return client


def documents_of(order: Order) -> dict[str, OrderDocument]:
    return {d.document_type.code: d for d in order.documents.select_related("document_type")}


def accept_all(order: Order, actor, pdf_upload) -> None:
    for document in documents_of(order).values():
        document_upload(actor=actor, document=document, upload=pdf_upload())
        document_review(actor=actor, document=document, accept=True)


# Who sees what ---------------------------------------------------------------------------------------------


def test_the_list_shows_number_customer_status_and_fee_with_separators(ops, order):
    response = ops.get(LIST)
    body = response.content.decode()
    assert response.status_code == 200
    assert order.number in body and "Acme Ltd" in body
    assert "Documents pending" in body
    assert "GBP\xa01,000.00" in body


def test_search_finds_an_order_by_company_number(ops, order, formation, operations_user):
    company = CompanyFactory(customer=formation["customer"], name="Tiny Widgets Ltd", registration_number="09912345")
    other = order_create(
        actor=operations_user, customer=formation["customer"], order_type=formation["order_type"], company=company
    )
    body = ops.get(LIST, {"q": "09912345"}).content.decode()
    assert other.number in body and order.number not in body


def test_the_overdue_filter_lists_open_orders_past_their_due_date(ops, order, formation, operations_user):
    late = order_create(
        actor=operations_user,
        customer=formation["customer"],
        order_type=formation["order_type"],
        start_date=billing_today() - timedelta(days=30),
        due_date=billing_today() - timedelta(days=1),
    )
    body = ops.get(LIST, {"overdue": "yes"}).content.decode()
    assert late.number in body and order.number not in body
    assert "overdue" in body


def test_a_csm_of_another_customer_gets_404_on_list_page_and_download(client, make_user, order, pdf_upload):
    document = documents_of(order)["passport"]
    document_upload(actor=order.created_by, document=document, upload=pdf_upload())
    document.refresh_from_db()
    stranger = make_user(Role.CUSTOMER_SUCCESS)
    CustomerFactory(csm=stranger)
    client.force_login(stranger)
    assert order.number not in client.get(LIST).content.decode()
    assert client.get(page(order)).status_code == 404
    assert client.get(f"/admin/orders/order/files/{document.current_file_id}/").status_code == 404


def test_the_csm_of_the_customer_sees_the_order_and_downloads_its_file(client, make_user, order, pdf_upload):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    order.customer.csm = csm
    order.customer.save()
    document = document_upload(actor=order.created_by, document=documents_of(order)["passport"], upload=pdf_upload())
    client.force_login(csm)
    assert client.get(page(order)).status_code == 200
    response = client.get(f"/admin/orders/order/files/{document.current_file_id}/")
    assert response.status_code == 200
    assert 'attachment; filename="passport.pdf"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_an_outside_account_sees_only_the_orders_shared_with_it(client, make_user, order, formation, admin_user):
    other = order_create(actor=admin_user, customer=formation["customer"], order_type=formation["order_type"])
    agent = make_user(Role.OPERATIONS, shared_only=True)
    order_share(actor=admin_user, order=order, user=agent)
    client.force_login(agent)
    body = client.get(LIST).content.decode()
    assert order.number in body and other.number not in body
    assert client.get(page(order)).status_code == 200


def test_operations_sees_no_base_charge_and_finance_does(client, order, finance_user, operations_user):
    client.force_login(operations_user)
    assert "Base charge" not in client.get(page(order)).content.decode()
    assert "base_charge" not in client.get("/admin/orders/order/add/").content.decode()
    client.force_login(finance_user)
    body = client.get(page(order)).content.decode()
    assert "Base charge" in body and "GBP\xa0120.00" in body


# Creating and editing ----------------------------------------------------------------------------------------


def test_the_add_form_creates_an_order_with_the_type_defaults(ops, formation):
    response = ops.post(
        "/admin/orders/order/add/",
        {"customer": formation["customer"].pk, "order_type": formation["order_type"].pk, "description": "Rush"},
    )
    created = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == page(created)
    assert created.fee == D("1000.00") and created.base_charge == D("120.00")
    assert created.status == Order.Status.DOCUMENTS_PENDING and created.created_by is not None


def test_the_add_form_names_the_field_a_service_refuses(ops, formation):
    foreign = CompanyFactory(name="Elsewhere Ltd")
    response = ops.post(
        "/admin/orders/order/add/",
        {"customer": formation["customer"].pk, "order_type": formation["order_type"].pk, "company": foreign.pk},
    )
    assert response.status_code == 200
    assert "Elsewhere Ltd" in str(response.context["form"].errors["company"])
    assert not Order.objects.exists()


def test_editing_calls_the_service_and_keeps_history(ops, order, operations_user):
    new_due = order.due_date + timedelta(days=7)
    response = ops.post(
        f"/admin/orders/order/{order.pk}/edit/",
        {"fee": "1500.00", "due_date": new_due.isoformat(), "assignee": operations_user.pk},
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.fee == D("1500.00") and order.due_date == new_due and order.assignee == operations_user
    assert order.history.first().history_user == operations_user


def test_an_edit_with_a_due_date_before_the_start_is_refused_on_the_form(ops, order):
    before = order.start_date - timedelta(days=1)
    response = ops.post(f"/admin/orders/order/{order.pk}/edit/", {"fee": "1000.00", "due_date": before.isoformat()})
    assert response.status_code == 200
    assert "before the start date" in str(response.context["form"].errors["due_date"])


# Transitions ----------------------------------------------------------------------------------------------


def test_start_work_is_refused_with_what_is_missing(ops, order):
    response = ops.post(f"/admin/orders/order/{order.pk}/start-work/", DIALOG)
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING
    assert messages_of(response) == [
        "2 required documents are not accepted: Passport (pending), Proof of address (pending)."
    ]


def test_the_override_button_is_for_admins_only(ops, admin_client_, order):
    assert "start-work-override" not in ops.get(page(order)).content.decode()
    assert ops.post(f"/admin/orders/order/{order.pk}/start-work-override/", DIALOG | {"reason": "x"}).status_code == 403
    assert "start-work-override" in admin_client_.get(page(order)).content.decode()


def test_an_admin_overrides_missing_documents_with_a_reason(admin_client_, order):
    without_reason = admin_client_.post(f"/admin/orders/order/{order.pk}/start-work-override/", DIALOG)
    assert without_reason.status_code == 200  # the dialog again, with its error
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING

    admin_client_.post(
        f"/admin/orders/order/{order.pk}/start-work-override/", DIALOG | {"reason": "Client is known to us"}
    )
    order.refresh_from_db()
    last = order.status_history.last()
    assert order.status == Order.Status.IN_PROGRESS
    assert last.override and last.comment == "Client is known to us"


def test_start_work_and_complete_once_documents_are_accepted(ops, order, operations_user, pdf_upload):
    accept_all(order, operations_user, pdf_upload)
    ops.post(f"/admin/orders/order/{order.pk}/start-work/", DIALOG)
    response = ops.post(f"/admin/orders/order/{order.pk}/complete/", DIALOG, headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == page(order)
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert list(order.status_history.values_list("to_status", flat=True)) == [
        "started",
        "documents_pending",
        "in_progress",
        "completed",
    ]


def test_cancel_needs_a_reason_and_keeps_it(ops, order):
    ops.post(f"/admin/orders/order/{order.pk}/cancel/", DIALOG)
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING
    ops.post(f"/admin/orders/order/{order.pk}/cancel/", DIALOG | {"reason": "Client withdrew"})
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and order.reason == "Client withdrew"


def test_only_the_buttons_of_the_current_status_are_offered(ops, order):
    body = ops.get(page(order)).content.decode()
    assert f"/admin/orders/order/{order.pk}/cancel/" in body
    assert f"/admin/orders/order/{order.pk}/complete/" not in body
    assert f"/admin/orders/order/{order.pk}/fail/" not in body


def test_reopening_is_an_admins_with_a_reason(ops, admin_client_, order):
    order_transition(actor=None, order=order, to_status="cancelled", reason="Withdrew")
    assert ops.post(f"/admin/orders/order/{order.pk}/reopen/", DIALOG | {"reason": "Back"}).status_code == 403
    admin_client_.post(f"/admin/orders/order/{order.pk}/reopen/", DIALOG | {"reason": "Client came back"})
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING  # started, then waiting for its documents again
    assert order.status_history.filter(comment="Client came back", to_status="started").exists()


def test_a_transition_on_someone_elses_order_answers_404(client, make_user, order):
    stranger = make_user(Role.CUSTOMER_SUCCESS)
    client.force_login(stranger)
    assert client.post(f"/admin/orders/order/{order.pk}/cancel/", DIALOG | {"reason": "x"}).status_code in (403, 404)
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING


# Documents ----------------------------------------------------------------------------------------------


def test_upload_reject_reupload_and_accept_through_the_page(ops, order, pdf_upload, png_upload):
    passport = documents_of(order)["passport"]
    base = f"/admin/orders/order/{order.pk}/documents/{passport.pk}"
    ops.post(f"{base}/upload/", {"file": pdf_upload()})
    passport.refresh_from_db()
    assert passport.status == OrderDocument.Status.RECEIVED

    refused = ops.post(f"{base}/review/", {"decision": "reject", "reason": ""})
    assert "Say why Passport is rejected" in messages_of(refused)[-1]
    ops.post(f"{base}/review/", {"decision": "reject", "reason": "Photo page is cut off"})
    passport.refresh_from_db()
    assert passport.status == OrderDocument.Status.REJECTED
    assert "Photo page is cut off" in ops.get(page(order)).content.decode()

    ops.post(f"{base}/upload/", {"file": png_upload("passport.png")})
    ops.post(f"{base}/review/", {"decision": "accept"})
    passport.refresh_from_db()
    assert passport.status == OrderDocument.Status.ACCEPTED and passport.files.count() == 2
    body = ops.get(page(order)).content.decode()
    assert "Earlier files (1)" in body and "passport.png" in body


def test_an_upload_of_the_wrong_kind_is_refused_with_its_reason(ops, order):
    address = documents_of(order)["proof_of_address"]
    executable = SimpleUploadedFile("statement.pdf", b"MZ\x90\x00" + b"\x00" * 200)
    response = ops.post(f"/admin/orders/order/{order.pk}/documents/{address.pk}/upload/", {"file": executable})
    assert "statement.pdf is not a file kind this document takes" in messages_of(response)[0]
    address.refresh_from_db()
    assert address.status == OrderDocument.Status.PENDING and not address.files.exists()


def test_customer_success_cannot_upload(client, make_user, order, pdf_upload):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    order.customer.csm = csm
    order.customer.save()
    client.force_login(csm)
    passport = documents_of(order)["passport"]
    url = f"/admin/orders/order/{order.pk}/documents/{passport.pk}/upload/"
    assert client.post(url, {"file": pdf_upload()}).status_code == 403


# Tasks, comments, sharing -------------------------------------------------------------------------------


def test_tasks_are_added_and_marked_done_from_the_page(ops, order, operations_user):
    ops.post(f"/admin/orders/order/{order.pk}/tasks/add/", {"title": "Call registrar", "priority": "high"})
    task = Task.objects.get()
    assert task.title == "Call registrar" and task.created_by == operations_user
    ops.post(f"/admin/orders/order/tasks/{task.pk}/done/")
    task.refresh_from_db()
    assert task.done_by == operations_user


def test_comments_with_attachments_are_listed_and_downloadable(ops, order, pdf_upload):
    ops.post(
        f"/admin/orders/order/{order.pk}/comments/add/",
        {"body": "Registrar asked for a certified copy.", "attachments": [pdf_upload("letter.pdf")]},
    )
    comment = order.comments.get()
    attachment = comment.attachments.get()
    body = ops.get(page(order)).content.decode()
    assert "Registrar asked for a certified copy." in body and "letter.pdf" in body
    response = ops.get(f"/admin/orders/order/attachments/{attachment.pk}/")
    assert response.status_code == 200 and 'filename="letter.pdf"' in response["Content-Disposition"]


def test_sharing_an_order_from_the_access_tab_writes_history(admin_client_, admin_user, make_user, order):
    agent = make_user(Role.OPERATIONS, shared_only=True)
    admin_client_.post(f"/admin/orders/order/{order.pk}/access/share/", {"user": agent.pk})
    grant = OrderUserObjectPermission.objects.get(user=agent)
    assert grant.history.get().history_user == admin_user
    assert agent.email in admin_client_.get(page(order)).content.decode()
    admin_client_.post(f"/admin/orders/order/{order.pk}/access/unshare/", {"user": agent.pk})
    assert not OrderUserObjectPermission.objects.filter(user=agent).exists()
    assert OrderUserObjectPermission.history.filter(user=agent, history_type="-").exists()


def test_operations_cannot_share(ops, make_user, order):
    agent = make_user(Role.OPERATIONS)
    assert ops.post(f"/admin/orders/order/{order.pk}/access/share/", {"user": agent.pk}).status_code == 403
    assert 'id="access-group"' not in ops.get(page(order)).content.decode()


def test_deputy_csms_are_added_and_removed_on_the_customer_page(admin_client_, admin_user, make_user, formation):
    customer = formation["customer"]
    deputy = make_user(Role.CUSTOMER_SUCCESS, full_name="Dana Deputy")
    admin_client_.post(f"/admin/catalog/customer/{customer.pk}/add-deputy/", DIALOG | {"user": deputy.pk})
    assert list(customer_deputies(customer)) == [deputy]
    assert "Dana Deputy" in admin_client_.get(f"/admin/catalog/customer/{customer.pk}/change/").content.decode()
    admin_client_.post(f"/admin/catalog/customer/{customer.pk}/remove-deputy/", DIALOG | {"user": deputy.pk})
    assert not customer_deputies(customer).exists()
    history = CustomerUserObjectPermission.history.filter(user=deputy).order_by("history_date")
    assert [(h.history_type, h.history_user) for h in history] == [("+", admin_user), ("-", admin_user)]


def test_only_admins_manage_deputy_csms(client, finance_user, make_user, formation):
    customer = formation["customer"]
    client.force_login(finance_user)
    deputy = make_user(Role.CUSTOMER_SUCCESS)
    response = client.post(f"/admin/catalog/customer/{customer.pk}/add-deputy/", DIALOG | {"user": deputy.pk})
    assert response.status_code == 403 and not customer_deputies(customer).exists()


# Bulk actions -------------------------------------------------------------------------------------------


def test_bulk_assign_asks_for_the_user_then_assigns(ops, order, formation, operations_user, make_user):
    other = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    runner = make_user(Role.OPERATIONS, full_name="Rita Runner")
    selection = {"action": "assign", "_selected_action": [order.pk, other.pk]}
    form = ops.post(LIST, selection)
    assert form.status_code == 200 and "Assign orders" in form.content.decode()
    ops.post(LIST, selection | {"apply": "1", "assignee": runner.pk})
    assert set(Order.objects.values_list("assignee", flat=True)) == {runner.pk}


def test_bulk_move_reports_each_refused_order(ops, order, formation, operations_user, pdf_upload):
    ready = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    accept_all(ready, operations_user, pdf_upload)
    response = ops.post(
        LIST,
        {"action": "move_status", "_selected_action": [order.pk, ready.pk], "apply": "1", "to_status": "in_progress"},
    )
    found = messages_of(response)
    assert found[0] == f"Moved to in progress: {ready.number}."
    assert order.number in found[1] and "2 required documents are not accepted" in found[1]
    order.refresh_from_db()
    assert order.status == Order.Status.DOCUMENTS_PENDING


# My open tasks ------------------------------------------------------------------------------------------


def test_my_open_tasks_lists_mine_overdue_first_and_marks_them_done(client, make_user, order, operations_user):
    me = make_user(Role.CUSTOMER_SUCCESS)
    order.customer.csm = me
    order.customer.save()
    late = task_create(
        actor=None, order=order, title="Chase passport", assignee=me, due_date=billing_today() - timedelta(days=2)
    )
    task_create(actor=None, order=order, title="Not mine", assignee=operations_user)
    client.force_login(me)
    body = client.get("/admin/orders/order/my-tasks/").content.decode()
    assert "Chase passport" in body and "Not mine" not in body and "overdue" in body
    assert f"/admin/orders/order/{order.pk}/change/#tasks" in body
    response = client.post(f"/admin/orders/order/tasks/{late.pk}/done/", {"next": "/admin/orders/order/my-tasks/"})
    assert response["Location"] == "/admin/orders/order/my-tasks/"
    late.refresh_from_db()
    assert late.done_by == me


def test_my_open_tasks_says_what_to_do_when_empty(client, make_user):
    client.force_login(make_user(Role.FINANCE))
    body = client.get("/admin/orders/order/my-tasks/").content.decode()
    assert "You have no open tasks." in body


def test_someone_else_cannot_mark_my_task_done(client, make_user, order):
    me = make_user(Role.OPERATIONS)
    task = task_create(actor=None, order=order, title="Mine", assignee=me)
    client.force_login(make_user(Role.FINANCE))  # sees the order, may not change tasks, not the assignee
    assert client.post(f"/admin/orders/order/tasks/{task.pk}/done/").status_code == 403


# Query counts -------------------------------------------------------------------------------------------


@pytest.fixture
def busy_desk(formation, operations_user, pdf_upload):
    """A dozen orders with documents, tasks and comments; the first one fully worked."""
    orders = [
        order_create(
            actor=operations_user,
            customer=formation["customer"],
            order_type=formation["order_type"],
            assignee=operations_user,
            company=CompanyFactory(customer=formation["customer"]),
        )
        for _ in range(12)
    ]
    first = orders[0]
    accept_all(first, operations_user, pdf_upload)
    for number in range(3):
        task_create(actor=None, order=first, title=f"Step {number}", assignee=operations_user, due_date=billing_today())
        comment_add(
            actor=operations_user, order=first, body=f"Note {number}", attachments=[pdf_upload(f"n{number}.pdf")]
        )
    OrderTypeFactory()  # another type in the filter
    return orders


def test_the_list_keeps_its_query_count(ops, busy_desk, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = ops.get(LIST, {"status": "documents_pending", "overdue": "no"})
    assert response.status_code == 200


def test_the_order_page_keeps_its_query_count(admin_client_, busy_desk, django_assert_max_num_queries):
    with django_assert_max_num_queries(21):  # 20, and the Settlement tab's settlements
        response = admin_client_.get(page(busy_desk[0]))
    assert response.status_code == 200


def test_my_open_tasks_keeps_its_query_count(ops, busy_desk, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = ops.get("/admin/orders/order/my-tasks/")
    assert response.content.decode().count("Mark done") == 3


def test_status_history_rows_are_shown_on_the_timeline(ops, order):
    body = ops.get(page(order)).content.decode()
    assert OrderStatusHistory.objects.filter(order=order).count() == 2
    assert "Order created." in body and "Waiting: 2 required documents are not accepted" in body


def test_a_change_made_by_no_one_reads_system_on_the_timeline(ops, formation):
    # A scheduled job or a service call without a user moves orders too (actor None); the page still opens.
    order = order_create(actor=None, customer=formation["customer"], order_type=formation["order_type"])

    response = ops.get(page(order))

    assert response.status_code == 200
    assert {change.actor for change in order.status_history.all()} == {None}
    assert "<td>System</td>" in response.content.decode()


def test_bulk_completion_completes_those_in_progress_at_once_and_reports_the_others(
    ops, order, formation, operations_user, pdf_upload
):
    ready = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    accept_all(ready, operations_user, pdf_upload)
    order_transition(actor=operations_user, order=ready, to_status=Order.Status.IN_PROGRESS)
    response = ops.post(
        LIST,
        {"action": "move_status", "_selected_action": [order.pk, ready.pk], "apply": "1", "to_status": "completed"},
    )
    found = messages_of(response)
    assert found[0] == f"Moved to completed: {ready.number}."
    assert f"{order.number} is documents pending; only an order in progress is completed." in found[1]
    ready.refresh_from_db()
    assert ready.status == Order.Status.COMPLETED
    assert ready.status_history.last().actor == operations_user
