"""Reads only the order desk's admin pages need; each starts from orders.selectors' visibility rule."""

from django.db.models import QuerySet

from accounts.models import User
from orders.models import CommentAttachment, Order, OrderDocumentFile, OrderUserObjectPermission
from orders.selectors import order_list_for
from orders.services.sharing import SHARED_PERMISSION


def document_file_history(order: Order) -> dict[int, list[OrderDocumentFile]]:
    """Every upload of the order's documents, newest first, by document id (one query for the whole page)."""
    history: dict[int, list[OrderDocumentFile]] = {}
    files = OrderDocumentFile.objects.filter(document__order=order).select_related("uploaded_by")
    for file in files.order_by("document_id", "-sequence"):
        history.setdefault(file.document_id, []).append(file)
    return history


def order_shared_with(order: Order) -> QuerySet[OrderUserObjectPermission]:
    """The grants that share the order with staff users, with their user."""
    return (
        OrderUserObjectPermission.objects.filter(content_object=order, permission__codename=SHARED_PERMISSION)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def comment_attachment_for(user: User, pk: int) -> CommentAttachment | None:
    """A comment's attachment, if its order is one the user may see."""
    return (
        CommentAttachment.objects.select_related("comment__order")
        .filter(pk=pk, comment__order__in=order_list_for(user))
        .first()
    )
