from orders.models import Order
from orders.services.documents import document_review, document_upload
from orders.services.orders import order_create, order_transition


def test_an_order_runs_from_creation_to_completion(formation, operations_user, pdf_upload, png_upload, admin_user):
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    assert order.number.startswith("ORD-") and order.status == Order.Status.DOCUMENTS_PENDING
    passport, address = sorted(order.documents.all(), key=lambda d: d.document_type.code)
    document_upload(actor=operations_user, document=passport, upload=pdf_upload())
    document_upload(actor=operations_user, document=address, upload=png_upload())
    for document in (passport, address):
        document_review(actor=operations_user, document=document, accept=True)
    order = order_transition(actor=operations_user, order=order, to_status="in_progress")
    order = order_transition(actor=operations_user, order=order, to_status="completed")
    assert [h.to_status for h in order.status_history.all()] == [
        "started",
        "documents_pending",
        "in_progress",
        "completed",
    ]
