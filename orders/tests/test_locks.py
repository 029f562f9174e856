"""The order desk under real concurrency: several people acting at once on one order (moving it, reviewing and
uploading its documents, creating orders for one customer) wait for each other on the order's lock, taken
after its customer's (orders/locks.py), and never deadlock; the order ends in a state the lifecycle allows, with
one history row per change that happened.

Each caller is a thread with its own database connection, on PostgreSQL (SQLite runs one writer at a time, so
these races cannot happen there).
"""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_project.errors import DomainError
from catalog.tests.factories import CustomerFactory
from ledger.tests.test_concurrency import run_at_once
from ledger.tests.test_locks import row_locks
from orders.models import Order, OrderDocumentFile, OrderStatusHistory
from orders.services.comments import comment_add
from orders.services.documents import document_for_type, document_review, document_submit, document_upload
from orders.services.orders import TRANSITIONS, order_assign_many, order_create, order_transition, order_update
from orders.services.sharing import order_share, order_unshare
from orders.services.tasks import task_complete, task_create, task_reopen, task_update
from orders.tests.conftest import pdf_bytes
from orders.tests.factories import DocumentTypeFactory, OrderTypeFactory, RequirementFactory

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks and concurrent transactions need PostgreSQL; SQLite runs one writer at a time",
    ),
    pytest.mark.postgres,
]
threaded = pytest.mark.django_db(transaction=True)

Status = Order.Status


def assert_history_is_one_chain(order: Order, *, changes: int) -> None:
    """The order's rows follow each other (each starts where the last ended), one per change, each allowed by the
    table, and the last is where the order is."""
    order.refresh_from_db()
    rows = list(OrderStatusHistory.objects.filter(order=order).order_by("at", "pk"))
    assert len(rows) == changes
    assert rows[0].from_status == ""
    for previous, row in zip(rows, rows[1:], strict=False):
        assert row.from_status == previous.to_status, [(r.from_status, r.to_status) for r in rows]
        automatic = (row.from_status, row.to_status) == (Status.STARTED, Status.DOCUMENTS_PENDING)
        assert automatic or row.to_status in {t.to for t in TRANSITIONS[row.from_status]}
    assert rows[-1].to_status == order.status


def outcomes(results: list) -> tuple[list, list]:
    """(successes, refusals); anything but an order or a DomainError fails the test."""
    unexpected = [r for r in results if not isinstance(r, Order | DomainError)]
    assert not unexpected, unexpected
    return [r for r in results if isinstance(r, Order)], [r for r in results if isinstance(r, DomainError)]


@threaded
def test_concurrent_transitions_on_one_order_end_in_one_allowed_path(formation, operations_user, admin_user):
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=OrderTypeFactory())
    wanted = [
        (Status.IN_PROGRESS, ""),
        (Status.IN_PROGRESS, ""),
        (Status.IN_PROGRESS, ""),
        (Status.CANCELLED, "Client left"),
        (Status.CANCELLED, "Client left"),
        (Status.COMPLETED, ""),
        (Status.COMPLETED, ""),
        (Status.FAILED, "Registrar refused"),
    ]

    results = run_at_once(
        *[
            lambda to=to, reason=reason: order_transition(actor=admin_user, order=order, to_status=to, reason=reason)
            for to, reason in wanted
        ]
    )

    moved, refused = outcomes(results)
    assert moved and len(moved) + len(refused) == len(wanted)
    # A move to in progress that comes after completed or failed is a reopen, refused here for want of a reason.
    assert {error.code for error in refused} <= {"invalid_transition", "reason_required"}
    # created, then one row per transition that went through
    assert_history_is_one_chain(order, changes=1 + len(moved))
    order.refresh_from_db()
    assert order.status in (Status.CANCELLED, Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED)
    assert (order.cancelled_at is not None) == (order.status == Status.CANCELLED)
    assert (order.completed_at is not None) == (order.status == Status.COMPLETED)
    assert (order.failed_at is not None) == (order.status == Status.FAILED)


@threaded
def test_starting_work_while_a_document_is_accepted_sees_it_or_waits_for_it(formation, operations_user, admin_user):
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    passport, address = (order.documents.get(document_type__code=code) for code in ("passport", "proof_of_address"))
    for document in (passport, address):
        document_upload(actor=operations_user, document=document, upload=SimpleUploadedFile("scan.pdf", pdf_bytes()))
    document_review(actor=operations_user, document=address, accept=True)

    results = run_at_once(
        lambda: document_review(actor=operations_user, document=passport, accept=True),
        *[lambda: order_transition(actor=operations_user, order=order, to_status="in_progress") for _ in range(5)],
    )

    moved, refused = outcomes(results[1:])
    assert results[0].status == "accepted"
    assert len(moved) <= 1
    assert {error.code for error in refused} <= {"documents_missing", "invalid_transition"}
    order.refresh_from_db()
    passport.refresh_from_db()
    if order.status == Status.IN_PROGRESS:
        assert passport.status == "accepted"
        assert not order.status_history.filter(override=True).exists()
    assert_history_is_one_chain(order, changes=2 + len(moved))


@threaded
def test_concurrent_uploads_to_one_document_get_distinct_sequences(formation, operations_user, media_in_tmp):
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    passport = order.documents.get(document_type__code="passport")
    uploads = 6

    results = run_at_once(
        *[
            lambda n=n: document_upload(
                actor=operations_user, document=passport, upload=SimpleUploadedFile(f"scan-{n}.pdf", pdf_bytes())
            )
            for n in range(uploads)
        ]
    )

    assert all(result.status == "received" for result in results), results
    files = list(OrderDocumentFile.objects.filter(document=passport).order_by("sequence"))
    folder = f"orders/acme-001/{order.number}"
    assert [(f.sequence, f.file.name) for f in files] == [
        (n, f"{folder}/passport-{n}.pdf") for n in range(1, uploads + 1)
    ]
    assert sorted(f.original_name for f in files) == [f"scan-{n}.pdf" for n in range(uploads)]
    stored = sorted(os.listdir(media_in_tmp / folder))
    assert stored == sorted(f"passport-{n}.pdf" for n in range(1, uploads + 1))
    passport.refresh_from_db()
    assert passport.current_file == files[-1]


@threaded
def test_concurrent_orders_for_one_customer_take_gapless_numbers(formation, operations_user):
    customer, order_type = formation["customer"], formation["order_type"]
    count = 8

    results = run_at_once(
        *[lambda: order_create(actor=operations_user, customer=customer, order_type=order_type) for _ in range(count)]
    )

    assert all(isinstance(result, Order) for result in results), results
    numbers = sorted(result.number for result in results)
    year = numbers[0].split("-")[1]
    assert numbers == [f"ORD-{year}-{n:06d}" for n in range(1, count + 1)]
    assert all(result.status == Status.DOCUMENTS_PENDING for result in results)
    assert OrderStatusHistory.objects.count() == 2 * count


# The lock order, statement by statement: orders/locks.py places an order among its customer's own rows (rank 2 in
# ledger/locks.py), its documents, tasks and invoice after it, and an order number's sequence where every number's is.
LOCK_ORDER = {
    "catalog_customer": 1,
    "orders_order": 2,
    "orders_orderdocument": 3,
    "orders_task": 3,
    "ledger_invoice": 3,
    "ledger_documentsequence": 7,
}


def assert_in_lock_order(locks) -> None:
    """Never back up the order, except to re-read a row already held."""
    held: dict[str, set[int]] = {table: set() for table in LOCK_ORDER}
    highest = 0
    for position, (table, ids) in enumerate(locks):
        rank = LOCK_ORDER[table]  # a kind of row not placed yet: place it in orders/locks.py first
        relock = ids is not None and ids <= held[table]
        assert rank >= highest or relock, f"lock {position} on {table} comes too late: {locks}"
        if not relock:
            highest = max(highest, rank)
        held[table] |= ids or set()


@pytest.fixture
def desk(formation, operations_user, admin_user):
    """Two customers' orders, a document received, one submitted, a task open and one done."""
    optional = DocumentTypeFactory(code="bank_ref", name="Bank reference")
    RequirementFactory(order_type=formation["order_type"], document_type=optional, required=False)
    make = lambda customer: order_create(  # noqa: E731
        actor=operations_user, customer=customer, order_type=formation["order_type"]
    )
    # Two customers' orders: a bulk write that locked customer, order, customer, order would back up the order.
    other = CustomerFactory()
    order, other_order = make(formation["customer"]), make(other)
    passport, address = (order.documents.get(document_type__code=c) for c in ("passport", "proof_of_address"))
    for document in (passport, address):
        document_upload(actor=operations_user, document=document, upload=SimpleUploadedFile("a.pdf", pdf_bytes()))
    document_submit(actor=operations_user, document=address)
    task = task_create(actor=operations_user, order=order, title="Call")
    done = task_create(actor=operations_user, order=order, title="Write")
    task_complete(actor=operations_user, task=done)
    return {
        "order": order,
        "other_order": other_order,
        "passport": passport,
        "address": address,
        "optional": optional,
        "task": task,
        "done": done,
        "formation": formation,
        "ops": operations_user,
        "admin": admin_user,
    }


WRITES = {
    "create": lambda d: order_create(
        actor=d["ops"], customer=d["formation"]["customer"], order_type=d["formation"]["order_type"]
    ),
    "update": lambda d: order_update(actor=d["ops"], order=d["order"], description="Rush"),
    "assign many": lambda d: order_assign_many(
        actor=d["admin"], orders=[d["order"], d["other_order"]], assignee=d["ops"]
    ),
    "transition": lambda d: order_transition(actor=d["ops"], order=d["order"], to_status="cancelled", reason="Gone"),
    "override": lambda d: order_transition(
        actor=d["admin"], order=d["order"], to_status="in_progress", override=True, reason="Known"
    ),
    "optional document": lambda d: document_for_type(actor=d["ops"], order=d["order"], document_type=d["optional"]),
    "upload": lambda d: document_upload(
        actor=d["ops"], document=d["passport"], upload=SimpleUploadedFile("b.pdf", pdf_bytes())
    ),
    "submit": lambda d: document_submit(actor=d["ops"], document=d["passport"]),
    "accept": lambda d: document_review(actor=d["ops"], document=d["address"], accept=True),
    "reject": lambda d: document_review(actor=d["ops"], document=d["passport"], accept=False, reason="Blurred"),
    "task create": lambda d: task_create(actor=d["ops"], order=d["order"], title="Post"),
    "task update": lambda d: task_update(actor=d["ops"], task=d["task"], title="Call back"),
    "task complete": lambda d: task_complete(actor=d["ops"], task=d["task"]),
    "task reopen": lambda d: task_reopen(actor=d["ops"], task=d["done"]),
    "comment": lambda d: comment_add(
        actor=d["ops"], order=d["order"], body="See", attachments=[SimpleUploadedFile("c.pdf", pdf_bytes())]
    ),
    "share": lambda d: order_share(actor=d["admin"], order=d["order"], user=d["ops"]),
    "unshare": lambda d: order_unshare(actor=d["admin"], order=d["order"], user=d["ops"]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_takes_its_locks_in_the_one_order(desk, write):
    with CaptureQueriesContext(connection) as queries:
        WRITES[write](desk)

    locks = row_locks(queries.captured_queries)
    assert locks and locks[0][0] == "catalog_customer", locks
    assert_in_lock_order(locks)
