"""Where order files are kept, through Django's storage (DESIGN.md, "Orders"), and how a failed write is undone."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.storage import default_storage
from django.utils.text import slugify

from orders.files import CheckedFile
from orders.models import Order


def document_path(order: Order, document_type_code: str, sequence: int, extension: str) -> str:
    customer_slug = slugify(order.customer.client_id) or f"customer-{order.customer_id}"
    return f"orders/{customer_slug}/{order.number}/{document_type_code}-{sequence}.{extension}"


def expense_receipt_path(order: Order, sequence: int, file_name: str) -> str:
    """Beside the order's documents: `orders/<customer-slug>/<order-number>/expenses/<n>-<name>`."""
    customer_slug = slugify(order.customer.client_id) or f"customer-{order.customer_id}"
    return f"orders/{customer_slug}/{order.number}/expenses/{sequence}-{default_storage.get_valid_name(file_name)}"


def comment_attachment_path(order: Order, file_name: str) -> str:
    return f"orders/comments/{order.number}/{file_name}"


@contextmanager
def stored_files() -> Iterator[list[str]]:
    """Collects the names of files written inside the block and deletes them if the block fails, so a refused
    or failed write leaves nothing in storage."""
    names: list[str] = []
    try:
        yield names
    except BaseException:
        for name in names:
            default_storage.delete(name)
        raise


def store(names: list[str], path: str, checked: CheckedFile) -> str:
    checked.upload.seek(0)
    name = default_storage.save(path, checked.upload)
    names.append(name)
    return name
