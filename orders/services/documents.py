"""Order documents: uploads (sniffed, checked and stored at DESIGN.md's paths), review and expiry.

A document moves pending -> received -> submitted -> accepted | rejected; a rejected (or a received, not yet
reviewed) document takes a new upload, and every upload stays in the document's file history.
"""

from datetime import timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from orders.files import check_upload
from orders.locks import lock_document, lock_order
from orders.models import DocumentType, Order, OrderDocument, OrderDocumentFile
from orders.services.orders import wait_for_documents
from orders.storage import document_path, store, stored_files

DocStatus = OrderDocument.Status
UPLOADABLE = (DocStatus.PENDING, DocStatus.RECEIVED, DocStatus.REJECTED)
REVIEWABLE = (DocStatus.RECEIVED, DocStatus.SUBMITTED)


def _refuse(message: str, *, field: str | None = None, code: str = "invalid") -> DomainError:
    return DomainError(message, code=code, fields={field: [message]} if field else None)


def _refuse_closed(order: Order) -> None:
    if not order.is_open:
        raise _refuse(
            f"{order.number} is {order.get_status_display().lower()}; its documents no longer change.",
            code="order_closed",
        )


def _save(document: OrderDocument, *, actor: User | None) -> OrderDocument:
    document._history_user = actor
    document.full_clean()
    document.save()
    return document


@transaction.atomic
def document_for_type(*, actor: User | None, order: Order, document_type: DocumentType) -> OrderDocument:
    """The order's document of this type: its placeholder, or a new one if the order type lists the type as
    optional; refused for a type the order type does not use."""
    order = lock_order(order)
    existing = order.documents.filter(document_type=document_type).first()
    if existing is not None:
        return existing
    requirement = order.order_type.requirements.filter(document_type=document_type).first()
    if requirement is None:
        raise _refuse(
            f"{order.order_type.name} orders do not use {document_type.name} documents.",
            field="document_type",
            code="document_type_not_used",
        )
    _refuse_closed(order)
    document = _save(
        OrderDocument(order=order, document_type=document_type, required=requirement.required), actor=actor
    )
    # The order type may have come to require this document after the order was started.
    wait_for_documents(actor=actor, order=order)
    return document


@transaction.atomic
def document_upload(*, actor: User, document: OrderDocument, upload: UploadedFile) -> OrderDocument:
    """Store a file for the document (pending, received or rejected) and mark it received."""
    document = lock_document(document)
    order = document.order
    _refuse_closed(order)
    if document.status not in UPLOADABLE:
        raise _refuse(
            f"{document.document_type.name} is {document.get_status_display().lower()}; "
            "only a pending, received or rejected document takes a new file.",
            field="file",
            code="document_not_uploadable",
        )
    document_type = document.document_type
    checked = check_upload(
        upload,
        accepted_kinds=document_type.kinds,
        max_size=min(document_type.max_size_bytes, settings.MAX_DOCUMENT_BYTES),
    )
    sequence = (document.files.aggregate(last=Max("sequence"))["last"] or 0) + 1
    with stored_files() as names:
        name = store(names, document_path(order, document_type.code, sequence, checked.extension), checked)
        file = OrderDocumentFile.objects.create(
            document=document,
            sequence=sequence,
            file=name,
            original_name=checked.original_name,
            kind=checked.kind,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=actor,
            uploaded_at=timezone.now(),
        )
        document.current_file = file
        document.status = DocStatus.RECEIVED
        document.reviewed_by = None
        document.reviewed_at = None
        document.rejection_reason = ""
        document.expires_on = None
        _save(document, actor=actor)
    return document


@transaction.atomic
def document_submit(*, actor: User | None, document: OrderDocument) -> OrderDocument:
    """A received document sent on for review (to the registrar, or to whoever checks it)."""
    document = lock_document(document)
    _refuse_closed(document.order)
    if document.status != DocStatus.RECEIVED:
        raise _refuse(
            f"{document.document_type.name} is {document.get_status_display().lower()}; only a received "
            "document can be submitted.",
            code="invalid_document_status",
        )
    document.status = DocStatus.SUBMITTED
    return _save(document, actor=actor)


@transaction.atomic
def document_review(*, actor: User, document: OrderDocument, accept: bool, reason: str = "") -> OrderDocument:
    """Accept the document (it expires after its type's validity) or reject it with a reason."""
    document = lock_document(document)
    _refuse_closed(document.order)
    reason = (reason or "").strip()
    if document.status not in REVIEWABLE:
        raise _refuse(
            f"{document.document_type.name} is {document.get_status_display().lower()}; only a received or "
            "submitted document can be accepted or rejected.",
            code="invalid_document_status",
        )
    if not accept and not reason:
        raise _refuse(
            "Say why the document is rejected; the client sees the reason.", field="reason", code="reason_required"
        )
    document.status = DocStatus.ACCEPTED if accept else DocStatus.REJECTED
    document.reviewed_by = actor
    document.reviewed_at = timezone.now()
    document.rejection_reason = "" if accept else reason
    validity = document.document_type.validity_days
    document.expires_on = billing_today() + timedelta(days=validity) if accept and validity else None
    _save(document, actor=actor)
    wait_for_documents(actor=actor, order=document.order)
    return document
