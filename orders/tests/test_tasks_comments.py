"""An order's tasks (created, changed, done once, reopened) and comments (append-only, with attachments stored
at DESIGN.md's path, and nothing stored when one is refused)."""

import hashlib
import io
import os
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Role
from billing_project.errors import DomainError
from orders.models import Comment, CommentAttachment, Order, Task
from orders.services.comments import MAX_ATTACHMENTS, comment_add
from orders.services.orders import order_create
from orders.services.tasks import task_complete, task_create, task_reopen, task_update
from orders.tests.conftest import pdf_bytes, png_bytes

ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + bytes(120)


@pytest.fixture
def order(formation, operations_user) -> Order:
    return order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])


def files_in(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names
    )


# Tasks


def test_a_task_is_created_on_an_order(order, operations_user):
    task = task_create(
        actor=operations_user,
        order=order,
        title="Call the registrar",
        description="Ask about the name check",
        assignee=operations_user,
        due_date=date(2026, 3, 20),
        priority=Task.Priority.HIGH,
    )

    task.refresh_from_db()
    assert (task.order, task.title, task.assignee, task.due_date, task.priority) == (
        order,
        "Call the registrar",
        operations_user,
        date(2026, 3, 20),
        "high",
    )
    assert (task.created_by, task.done_at, task.done_by, task.is_done) == (operations_user, None, None, False)
    assert task.history.get().history_user == operations_user


@pytest.mark.parametrize(
    "assignee",
    [
        lambda make_user: make_user(Role.OPERATIONS, is_staff=False, email="out@x.example"),
        lambda make_user: make_user(Role.OPERATIONS, is_active=False, email="out@x.example"),
    ],
    ids=["not-staff", "inactive"],
)
def test_a_task_is_assigned_to_active_staff_only(order, operations_user, make_user, assignee):
    user = assignee(make_user)
    message = f"{user} is not an active staff user."

    with pytest.raises(DomainError) as caught:
        task_create(actor=operations_user, order=order, title="Call", assignee=user)
    assert caught.value.fields == {"assignee": [message]}
    assert not Task.objects.exists()

    task = task_create(actor=operations_user, order=order, title="Call")
    with pytest.raises(DomainError) as caught:
        task_update(actor=operations_user, task=task, assignee=user)
    assert caught.value.fields == {"assignee": [message]}
    task.refresh_from_db()
    assert task.assignee is None


@pytest.mark.parametrize(
    ("fields", "field"), [({"title": "  "}, "title"), ({"title": "Call", "priority": "urgent"}, "priority")]
)
def test_a_task_needs_a_title_and_a_known_priority(order, operations_user, fields, field):
    with pytest.raises(ValidationError) as caught:
        task_create(actor=operations_user, order=order, **fields)

    assert field in caught.value.message_dict
    assert not Task.objects.exists()


def test_a_task_keeps_its_title_on_update(order, operations_user):
    task = task_create(actor=operations_user, order=order, title=" Call ")
    assert task.title == "Call"

    with pytest.raises(ValidationError) as caught:
        task_update(actor=operations_user, task=task, title=" ")

    assert "title" in caught.value.message_dict
    task.refresh_from_db()
    assert task.title == "Call"


def test_a_task_changes_what_it_may(order, operations_user, admin_user):
    task = task_create(actor=operations_user, order=order, title="Call")

    task_update(
        actor=admin_user,
        task=task,
        title="Call the registrar",
        description="Again",
        assignee=admin_user,
        due_date=date(2026, 4, 1),
        priority=Task.Priority.LOW,
    )

    task.refresh_from_db()
    assert (task.title, task.description, task.assignee, task.due_date, task.priority) == (
        "Call the registrar",
        "Again",
        admin_user,
        date(2026, 4, 1),
        "low",
    )
    assert task.history.first().history_user == admin_user


@pytest.mark.parametrize("field", ["done_at", "done_by", "order", "created_by"])
def test_a_task_update_leaves_what_other_services_own(order, operations_user, field):
    task = task_create(actor=operations_user, order=order, title="Call")

    with pytest.raises(ValidationError) as caught:
        task_update(actor=operations_user, task=task, **{field: None})

    assert caught.value.message_dict == {field: ["This field cannot be changed here."]}


def test_a_task_is_done_once_however_often_it_is_completed(order, operations_user, admin_user):
    task = task_create(actor=operations_user, order=order, title="Call")

    first = task_complete(actor=operations_user, task=task)
    again = task_complete(actor=admin_user, task=task)

    task.refresh_from_db()
    assert (task.done_by, task.is_done) == (operations_user, True)
    assert first.done_at == again.done_at == task.done_at
    assert again.done_by == operations_user
    assert task.history.count() == 2  # created, done


def test_a_done_task_reopens_and_an_open_one_stays_as_it_is(order, operations_user):
    task = task_create(actor=operations_user, order=order, title="Call")
    task_complete(actor=operations_user, task=task)

    task_reopen(actor=operations_user, task=task)
    task_reopen(actor=operations_user, task=task)

    task.refresh_from_db()
    assert (task.done_at, task.done_by, task.is_done) == (None, None, False)
    assert task.history.count() == 3  # created, done, reopened
    task_complete(actor=operations_user, task=task)
    task.refresh_from_db()
    assert task.is_done


@pytest.mark.parametrize(
    "change",
    [lambda user: {"done_at": timezone.now()}, lambda user: {"done_by": user}],
    ids=["done-at-without-done-by", "done-by-without-done-at"],
)
def test_the_database_keeps_done_at_and_done_by_together(order, operations_user, change):
    task = task_create(actor=operations_user, order=order, title="Call")

    with pytest.raises(IntegrityError), transaction.atomic():
        Task.objects.filter(pk=task.pk).update(**change(operations_user))

    task.refresh_from_db()
    assert not task.is_done


# Comments


def test_a_comment_is_added_with_its_attachments_at_their_path(order, operations_user, media_in_tmp):
    pdf, png = pdf_bytes(), png_bytes()

    comment = comment_add(
        actor=operations_user,
        order=order,
        body="  Registrar's letter and the stamp.  ",
        attachments=[SimpleUploadedFile("letter.pdf", pdf), SimpleUploadedFile("stamp.png", png)],
    )

    comment.refresh_from_db()
    assert (comment.order, comment.author, comment.body) == (
        order,
        operations_user,
        "Registrar's letter and the stamp.",
    )
    folder = f"orders/comments/{order.number}"
    assert [(a.file.name, a.original_name, a.kind, a.size, a.sha256) for a in comment.attachments.all()] == [
        (f"{folder}/letter.pdf", "letter.pdf", "pdf", len(pdf), hashlib.sha256(pdf).hexdigest()),
        (f"{folder}/stamp.png", "stamp.png", "png", len(png), hashlib.sha256(png).hexdigest()),
    ]
    assert files_in(media_in_tmp) == [f"{folder}/letter.pdf", f"{folder}/stamp.png"]
    with default_storage.open(f"{folder}/letter.pdf") as kept:
        assert kept.read() == pdf


def test_an_attachment_of_the_same_name_does_not_replace_the_first(order, operations_user, media_in_tmp):
    first = comment_add(
        actor=operations_user, order=order, body="v1", attachments=[SimpleUploadedFile("a.pdf", pdf_bytes())]
    )
    second = comment_add(
        actor=operations_user, order=order, body="v2", attachments=[SimpleUploadedFile("a.pdf", pdf_bytes())]
    )

    names = [first.attachments.get().file.name, second.attachments.get().file.name]
    assert names[0] == f"orders/comments/{order.number}/a.pdf"
    assert names[1] != names[0] and names[1].startswith(f"orders/comments/{order.number}/a")
    assert files_in(media_in_tmp) == sorted(names)


def test_comments_are_appended_in_order_and_earlier_ones_stay_as_written(order, operations_user, admin_user):
    first = comment_add(actor=operations_user, order=order, body="First")
    comment_add(actor=admin_user, order=order, body="Second")

    assert [(c.author, c.body) for c in order.comments.all()] == [(operations_user, "First"), (admin_user, "Second")]
    first_again = Comment.objects.get(pk=first.pk)
    assert (first_again.body, first_again.created_at) == ("First", first.created_at)


def test_a_comment_needs_a_body(order, operations_user, media_in_tmp):
    for body in ("", "   \n"):
        with pytest.raises(DomainError) as caught:
            comment_add(
                actor=operations_user, order=order, body=body, attachments=[SimpleUploadedFile("a.pdf", pdf_bytes())]
            )
        assert caught.value.fields == {"body": ["Write something in the comment."]}

    assert not Comment.objects.exists() and files_in(media_in_tmp) == []


def test_a_comment_takes_a_limited_number_of_attachments(order, operations_user, media_in_tmp):
    files = [SimpleUploadedFile(f"page-{n}.pdf", pdf_bytes()) for n in range(MAX_ATTACHMENTS + 1)]

    with pytest.raises(DomainError) as caught:
        comment_add(actor=operations_user, order=order, body="Scans", attachments=files)

    assert caught.value.fields == {"attachments": [f"At most {MAX_ATTACHMENTS} attachments on one comment."]}
    assert not Comment.objects.exists() and files_in(media_in_tmp) == []

    comment_add(actor=operations_user, order=order, body="Scans", attachments=files[:MAX_ATTACHMENTS])
    assert CommentAttachment.objects.count() == MAX_ATTACHMENTS


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tool.pdf", ELF_BYTES, "tool.pdf is not a file kind this document takes (PDF, JPEG, PNG, TIFF)."),
        ("scan.pdf", png_bytes(), "scan.pdf holds a PNG file but is named .pdf; name it .png."),
        ("empty.pdf", b"", "empty.pdf is empty."),
        ("../../x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("/etc/passwd.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("x\x00.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("a" * 300 + ".pdf", pdf_bytes(), "The file name is longer than 120 characters."),
    ],
    ids=["executable", "png-named-pdf", "empty", "dot-dot", "absolute", "nul", "long"],
)
def test_a_refused_attachment_leaves_no_comment_and_no_file(
    order, operations_user, media_in_tmp, name, content, message
):
    good = SimpleUploadedFile("letter.pdf", pdf_bytes())
    bad = File(io.BytesIO(content), name=name)

    with pytest.raises(DomainError) as caught:
        comment_add(actor=operations_user, order=order, body="See attached", attachments=[good, bad])

    assert caught.value.fields == {"attachments": [message]}
    assert not Comment.objects.exists() and not CommentAttachment.objects.exists()
    assert files_in(media_in_tmp) == []


def test_an_attachment_over_the_maximum_is_refused(order, operations_user, media_in_tmp, settings):
    settings.MAX_DOCUMENT_BYTES = 100
    file = SimpleUploadedFile("letter.pdf", pdf_bytes())

    with pytest.raises(DomainError) as caught:
        comment_add(actor=operations_user, order=order, body="See attached", attachments=[file])

    assert caught.value.fields == {"attachments": [f"letter.pdf is {file.size:,} bytes; at most 100 are accepted."]}
    assert not Comment.objects.exists() and files_in(media_in_tmp) == []
