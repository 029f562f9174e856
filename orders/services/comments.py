"""Comments on an order: append-only, with attachments stored at DESIGN.md's path."""

from collections.abc import Sequence

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing_project.errors import DomainError
from orders.files import FILE_KINDS, check_upload
from orders.locks import lock_order
from orders.models import Comment, CommentAttachment, Order
from orders.storage import comment_attachment_path, store, stored_files

MAX_ATTACHMENTS = 5


@transaction.atomic
def comment_add(*, actor: User, order: Order, body: str, attachments: Sequence[UploadedFile] = ()) -> Comment:
    order = lock_order(order)
    body = (body or "").strip()
    if not body:
        message = "Write something in the comment."
        raise DomainError(message, fields={"body": [message]})
    if len(attachments) > MAX_ATTACHMENTS:
        message = f"At most {MAX_ATTACHMENTS} attachments on one comment."
        raise DomainError(message, fields={"attachments": [message]})
    checked = [
        check_upload(upload, accepted_kinds=list(FILE_KINDS), max_size=settings.MAX_DOCUMENT_BYTES, field="attachments")
        for upload in attachments
    ]
    comment = Comment.objects.create(order=order, author=actor, body=body, created_at=timezone.now())
    with stored_files() as names:
        for item in checked:
            name = store(names, comment_attachment_path(order, item.original_name), item)
            CommentAttachment.objects.create(
                comment=comment,
                file=name,
                original_name=item.original_name,
                kind=item.kind,
                size=item.size,
                sha256=item.sha256,
            )
    return comment
