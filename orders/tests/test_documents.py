"""Order documents (DESIGN.md, "Orders"): real files accepted and stored at their paths with their SHA-256;
files whose bytes, size or name are wrong refused with nothing stored and nothing changed; review, expiry,
re-upload after rejection, and the documents an order type does not use."""

import hashlib
import io
import os
from datetime import timedelta

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from orders.models import Order, OrderDocument, OrderDocumentFile
from orders.services.documents import document_for_type, document_review, document_submit, document_upload
from orders.services.orders import order_create, order_transition
from orders.tests.conftest import pdf_bytes, png_bytes
from orders.tests.factories import DocumentTypeFactory, OrderTypeFactory, RequirementFactory

JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64) + b"\xff\xd9"
ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + bytes(120)
PE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(120)
ZIP_BYTES = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(120)
SCRIPT_BYTES = b"#!/bin/sh\nrm -rf ~\n"


@pytest.fixture
def order(formation, operations_user) -> Order:
    return order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])


@pytest.fixture
def passport(order) -> OrderDocument:
    return order.documents.get(document_type__code="passport")


@pytest.fixture
def address(order) -> OrderDocument:
    return order.documents.get(document_type__code="proof_of_address")


def files_in(root) -> list[str]:
    """Every file under `root` (MEDIA_ROOT), relative to it."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names
    )


def upload(name: str, content: bytes) -> File:
    """A file with its name exactly as given, as a command, an import or the demo seed hands one over.

    (Django's own UploadedFile, from a browser or the API, has already cut a name down to its last part; see
    test_a_browsers_upload_keeps_only_the_last_part_of_its_name.)"""
    return File(io.BytesIO(content), name=name)


def state_of(document: OrderDocument) -> tuple:
    document.refresh_from_db()
    return (
        document.status,
        document.current_file_id,
        document.rejection_reason,
        document.files.count(),
        document.history.count(),
    )


# Accepted files


def test_a_real_pdf_is_stored_at_its_path_with_its_hash(order, passport, operations_user, pdf_upload, media_in_tmp):
    file = pdf_upload("My Passport.PDF")
    content = file.read()

    document = document_upload(actor=operations_user, document=passport, upload=file)

    stored = document.current_file
    path = f"orders/acme-001/{order.number}/passport-1.pdf"
    assert (document.status, stored.file.name, stored.sequence) == ("received", path, 1)
    assert (stored.original_name, stored.kind, stored.size) == ("My Passport.PDF", "pdf", len(content))
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.uploaded_by == operations_user
    assert files_in(media_in_tmp) == [path]
    with default_storage.open(path) as kept:
        assert kept.read() == content
    assert document.history.first().history_user == operations_user


def test_a_real_png_is_stored_with_its_own_extension(order, address, operations_user, png_upload, media_in_tmp):
    document = document_upload(actor=operations_user, document=address, upload=png_upload("bill.png"))

    assert document.current_file.file.name == f"orders/acme-001/{order.number}/proof_of_address-1.png"
    assert document.current_file.kind == "png"
    assert document.current_file.sha256 == hashlib.sha256(png_bytes()).hexdigest()
    assert files_in(media_in_tmp) == [f"orders/acme-001/{order.number}/proof_of_address-1.png"]


def test_a_jpeg_named_jpeg_is_stored_as_jpg(order, passport, operations_user):
    document = document_upload(actor=operations_user, document=passport, upload=upload("photo.jpeg", JPEG_BYTES))

    assert document.current_file.file.name == f"orders/acme-001/{order.number}/passport-1.jpg"
    assert document.current_file.kind == "jpeg"


# Refused files: a clear message naming the field, nothing stored, nothing changed


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("passport.pdf", ELF_BYTES, "passport.pdf is not a file kind this document takes (PDF, JPEG, PNG)."),
        ("passport.pdf", PE_BYTES, "passport.pdf is not a file kind this document takes (PDF, JPEG, PNG)."),
        ("passport.pdf", ZIP_BYTES, "passport.pdf is not a file kind this document takes (PDF, JPEG, PNG)."),
        ("passport.pdf", SCRIPT_BYTES, "passport.pdf is not a file kind this document takes (PDF, JPEG, PNG)."),
        ("passport.pdf", png_bytes(), "passport.pdf holds a PNG file but is named .pdf; name it .png."),
        ("passport.png", pdf_bytes(), "passport.png holds a PDF file but is named .png; name it .pdf."),
        ("passport", pdf_bytes(), "passport holds a PDF file but is named .(none); name it .pdf."),
        ("passport.exe", pdf_bytes(), "passport.exe holds a PDF file but is named .exe; name it .pdf."),
        ("passport.pdf", b"", "passport.pdf is empty."),
        ("../x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("../../../../etc/cron.d/x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("/etc/passwd.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("C:\\x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("C:x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("x.pdf:payload", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("..\\..\\x.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        (".hidden.pdf", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("..", pdf_bytes(), "The file name must be a plain name, not a path."),
        ("x\x00.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("x\n.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("x\x1b[31m.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("invoice\u202efdp.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("x\u200b.pdf", pdf_bytes(), "The file name holds control or invisible characters."),
        ("a" * 296 + ".pdf", pdf_bytes(), "The file name is longer than 120 characters."),
        ("   ", pdf_bytes(), "The file has no name."),
    ],
    ids=[
        "elf-named-pdf",
        "pe-named-pdf",
        "zip-named-pdf",
        "script-named-pdf",
        "png-named-pdf",
        "pdf-named-png",
        "no-extension",
        "pdf-named-exe",
        "empty",
        "dot-dot",
        "deep-dot-dot",
        "absolute",
        "windows-drive",
        "windows-drive-relative",
        "alternate-data-stream",
        "windows-dot-dot",
        "hidden",
        "only-dots",
        "nul",
        "newline",
        "escape-sequence",
        "right-to-left-override",
        "zero-width-space",
        "300-characters",
        "blank",
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_stored(
    passport, operations_user, media_in_tmp, tmp_path, name, content, message
):
    before = state_of(passport)

    with pytest.raises(DomainError) as caught:
        document_upload(actor=operations_user, document=passport, upload=upload(name, content))

    assert caught.value.message == message
    assert caught.value.fields == {"file": [message]}
    assert files_in(media_in_tmp) == []
    assert files_in(tmp_path) == []  # nothing escaped MEDIA_ROOT either
    assert state_of(passport) == before
    assert not OrderDocumentFile.objects.exists()


def test_a_kind_the_document_type_does_not_take_is_refused(address, operations_user, media_in_tmp):
    with pytest.raises(DomainError) as caught:
        document_upload(actor=operations_user, document=address, upload=upload("bill.jpg", JPEG_BYTES))

    message = "bill.jpg is a JPEG file; this document takes PDF, PNG."
    assert (caught.value.code, caught.value.fields) == ("file_kind", {"file": [message]})
    assert files_in(media_in_tmp) == [] and state_of(address)[:2] == ("pending", None)


def test_a_file_over_the_types_maximum_is_refused(passport, operations_user, media_in_tmp, pdf_upload):
    passport.document_type.max_size_bytes = 1000
    passport.document_type.save()
    file = pdf_upload()
    assert file.size > 1000

    with pytest.raises(DomainError) as caught:
        document_upload(actor=operations_user, document=passport, upload=file)

    message = f"passport.pdf is {file.size:,} bytes; at most 1,000 are accepted."
    assert (caught.value.code, caught.value.fields) == ("file_too_large", {"file": [message]})
    assert files_in(media_in_tmp) == [] and state_of(passport)[:2] == ("pending", None)


def test_a_file_over_the_sites_maximum_is_refused_whatever_the_type_says(
    passport, operations_user, media_in_tmp, pdf_upload, settings
):
    settings.MAX_DOCUMENT_BYTES = 600
    file = pdf_upload()

    with pytest.raises(DomainError) as caught:
        document_upload(actor=operations_user, document=passport, upload=file)

    assert caught.value.fields == {"file": [f"passport.pdf is {file.size:,} bytes; at most 600 are accepted."]}
    assert files_in(media_in_tmp) == [] and state_of(passport)[:2] == ("pending", None)


def test_a_file_exactly_at_the_maximum_is_accepted(passport, operations_user, pdf_upload):
    file = pdf_upload()
    passport.document_type.max_size_bytes = file.size
    passport.document_type.save()

    assert document_upload(actor=operations_user, document=passport, upload=file).status == "received"


def test_a_browsers_upload_keeps_only_the_last_part_of_its_name(order, passport, operations_user, media_in_tmp):
    """Django's UploadedFile (what a browser or the API hands over) cuts "../../x.pdf" down to "x.pdf" before any
    service sees it; the stored path is the document's own either way."""
    file = SimpleUploadedFile("../../x.pdf", pdf_bytes())

    document = document_upload(actor=operations_user, document=passport, upload=file)

    assert document.current_file.original_name == "x.pdf"
    assert files_in(media_in_tmp) == [f"orders/acme-001/{order.number}/passport-1.pdf"]


# Review


def test_accepting_a_received_document_sets_its_reviewer_and_expiry(passport, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())

    document = document_review(actor=operations_user, document=passport, accept=True)

    document.refresh_from_db()
    assert (document.status, document.reviewed_by, document.rejection_reason) == ("accepted", operations_user, "")
    assert document.reviewed_at is not None
    assert document.expires_on == billing_today() + timedelta(days=365)


def test_a_document_type_without_validity_never_expires(address, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=address, upload=pdf_upload())

    assert document_review(actor=operations_user, document=address, accept=True).expires_on is None


def test_a_submitted_document_is_reviewed_too(passport, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())
    assert document_submit(actor=operations_user, document=passport).status == "submitted"

    document = document_review(actor=operations_user, document=passport, accept=False, reason="Blurred photo")

    document.refresh_from_db()
    assert (document.status, document.rejection_reason, document.expires_on) == ("rejected", "Blurred photo", None)


@pytest.mark.parametrize("status", ["pending", "accepted", "rejected"])
def test_only_a_received_or_submitted_document_is_reviewed(passport, operations_user, pdf_upload, status):
    if status != "pending":
        document_upload(actor=operations_user, document=passport, upload=pdf_upload())
        document_review(actor=operations_user, document=passport, accept=status == "accepted", reason="Blurred")
    before = state_of(passport)

    with pytest.raises(DomainError) as caught:
        document_review(actor=operations_user, document=passport, accept=True)

    assert caught.value.message == (
        f"Passport is {status}; only a received or submitted document can be accepted or rejected."
    )
    assert state_of(passport) == before


def test_only_a_received_document_is_submitted(passport, operations_user):
    with pytest.raises(DomainError) as caught:
        document_submit(actor=operations_user, document=passport)

    assert caught.value.message == "Passport is pending; only a received document can be submitted."


def test_a_rejection_needs_a_reason(passport, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())
    before = state_of(passport)

    for reason in ("", "  "):
        with pytest.raises(DomainError) as caught:
            document_review(actor=operations_user, document=passport, accept=False, reason=reason)
        assert caught.value.fields == {"reason": ["Say why the document is rejected; the client sees the reason."]}

    assert state_of(passport) == before


def test_a_rejected_document_uploaded_again_keeps_the_old_file(
    order, passport, operations_user, pdf_upload, png_upload, media_in_tmp
):
    first = document_upload(actor=operations_user, document=passport, upload=pdf_upload()).current_file
    document_review(actor=operations_user, document=passport, accept=False, reason="Expired passport")

    document = document_upload(actor=operations_user, document=passport, upload=png_upload("new-passport.png"))

    folder = f"orders/acme-001/{order.number}"
    assert (document.status, document.rejection_reason, document.reviewed_by) == ("received", "", None)
    assert document.current_file.file.name == f"{folder}/passport-2.png"
    assert [(f.sequence, f.file.name, f.original_name) for f in document.files.all()] == [
        (1, f"{folder}/passport-1.pdf", "passport.pdf"),
        (2, f"{folder}/passport-2.png", "new-passport.png"),
    ]
    assert files_in(media_in_tmp) == [f"{folder}/passport-1.pdf", f"{folder}/passport-2.png"]
    assert default_storage.exists(first.file.name)
    assert [h.status for h in document.history.order_by("history_date", "history_id")] == [
        "pending",
        "received",
        "rejected",
        "received",
    ]


def test_a_received_document_takes_a_newer_file_before_review(order, passport, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())

    document = document_upload(actor=operations_user, document=passport, upload=pdf_upload("better.pdf"))

    assert document.current_file.file.name == f"orders/acme-001/{order.number}/passport-2.pdf"


@pytest.mark.parametrize("status", ["accepted", "submitted"])
def test_an_accepted_or_submitted_document_takes_no_new_file(
    passport, operations_user, pdf_upload, media_in_tmp, status
):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())
    if status == "accepted":
        document_review(actor=operations_user, document=passport, accept=True)
    else:
        document_submit(actor=operations_user, document=passport)
    stored_before, before = files_in(media_in_tmp), state_of(passport)

    with pytest.raises(DomainError) as caught:
        document_upload(actor=operations_user, document=passport, upload=pdf_upload("again.pdf"))

    message = f"Passport is {status}; only a pending, received or rejected document takes a new file."
    assert caught.value.fields == {"file": [message]}
    assert files_in(media_in_tmp) == stored_before and state_of(passport) == before


@pytest.mark.parametrize("final", ["cancelled", "completed"])
def test_a_closed_orders_documents_no_longer_change(
    order, passport, address, operations_user, admin_user, pdf_upload, media_in_tmp, final
):
    document_upload(actor=operations_user, document=address, upload=pdf_upload())
    if final == "completed":
        order = order_transition(
            actor=admin_user, order=order, to_status="in_progress", override=True, reason="Known client"
        )
        order = order_transition(actor=operations_user, order=order, to_status="completed")
    else:
        order = order_transition(actor=operations_user, order=order, to_status="cancelled", reason="Client left")
    stored_before = files_in(media_in_tmp)
    passport_before, address_before = state_of(passport), state_of(address)
    message = f"{order.number} is {final}; its documents no longer change."
    optional = DocumentTypeFactory(code="bank_ref", name="Bank reference")
    RequirementFactory(order_type=order.order_type, document_type=optional, required=False)

    for attempt in (
        lambda: document_upload(actor=operations_user, document=passport, upload=pdf_upload()),
        lambda: document_submit(actor=operations_user, document=address),
        lambda: document_review(actor=operations_user, document=address, accept=True),
        lambda: document_for_type(actor=operations_user, order=order, document_type=optional),
    ):
        with pytest.raises(DomainError) as caught:
            attempt()
        assert (caught.value.code, caught.value.message) == ("order_closed", message)

    assert files_in(media_in_tmp) == stored_before
    assert (state_of(passport), state_of(address)) == (passport_before, address_before)
    assert not order.documents.filter(document_type=optional).exists()


# The documents an order has


def test_a_document_type_the_order_type_does_not_use_is_refused(order, operations_user):
    unused = DocumentTypeFactory(code="bank_statement", name="Bank statement")

    with pytest.raises(DomainError) as caught:
        document_for_type(actor=operations_user, order=order, document_type=unused)

    message = "UK company formation orders do not use Bank statement documents."
    assert (caught.value.code, caught.value.fields) == ("document_type_not_used", {"document_type": [message]})
    assert order.documents.count() == 2


def test_an_optional_document_type_makes_a_document_that_is_not_required(order, passport, operations_user):
    optional = DocumentTypeFactory(code="bank_ref", name="Bank reference")
    RequirementFactory(order_type=order.order_type, document_type=optional, required=False)

    document = document_for_type(actor=operations_user, order=order, document_type=optional)

    assert (document.required, document.status, document.order) == (False, "pending", order)
    assert document_for_type(actor=operations_user, order=order, document_type=optional) == document
    assert document_for_type(actor=operations_user, order=order, document_type=passport.document_type) == passport
    assert order.documents.count() == 3


def test_a_document_the_type_came_to_require_makes_a_started_order_wait(formation, operations_user):
    order_type = OrderTypeFactory(name="Annual return")
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=order_type)
    assert order.status == "started"
    RequirementFactory(order_type=order_type, document_type=formation["passport"], required=True)

    document = document_for_type(actor=operations_user, order=order, document_type=formation["passport"])

    order.refresh_from_db()
    assert (document.required, order.status) == (True, "documents_pending")
    assert order.status_history.order_by("-at", "-pk").first().comment == (
        "Waiting: 1 required document is not accepted: Passport (pending)."
    )


def test_rejecting_a_required_document_of_a_started_order_makes_it_wait(formation, operations_user, pdf_upload):
    """A started order with a required document under review: what a bulk path that skips the services (an
    import) leaves; the rejection puts the order back where the lifecycle wants it."""
    order_type = OrderTypeFactory(name="Annual return")
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=order_type)
    document = OrderDocument.objects.create(order=order, document_type=formation["passport"], required=True)
    document_upload(actor=operations_user, document=document, upload=pdf_upload())
    order.refresh_from_db()
    assert order.status == "started"

    document_review(actor=operations_user, document=document, accept=False, reason="Expired")

    order.refresh_from_db()
    assert order.status == "documents_pending"
    row = order.status_history.order_by("-at", "-pk").first()
    assert (row.from_status, row.to_status, row.actor) == ("started", "documents_pending", operations_user)
    assert row.comment == "Waiting: 1 required document is not accepted: Passport (rejected)."


def test_rejecting_an_optional_document_leaves_a_started_order_alone(formation, operations_user, pdf_upload):
    order_type = OrderTypeFactory(name="Annual return")
    optional = DocumentTypeFactory(code="bank_ref", name="Bank reference")
    RequirementFactory(order_type=order_type, document_type=optional, required=False)
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=order_type)
    document = document_for_type(actor=operations_user, order=order, document_type=optional)
    document_upload(actor=operations_user, document=document, upload=pdf_upload())

    document_review(actor=operations_user, document=document, accept=False, reason="Unreadable")

    order.refresh_from_db()
    assert order.status == "started" and order.status_history.count() == 1


def test_the_database_keeps_a_rejection_reason_and_a_file_past_pending(passport, address, operations_user, pdf_upload):
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())

    with pytest.raises(IntegrityError), transaction.atomic():
        OrderDocument.objects.filter(pk=passport.pk).update(status="rejected", rejection_reason="")
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderDocument.objects.filter(pk=address.pk).update(status="received")
