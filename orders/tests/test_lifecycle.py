"""An order's lifecycle (DESIGN.md, "Orders"): creation, every transition the table allows and every one it
refuses (with its message), the automatic wait for documents, the Admin's override, reasons, reopening, the
history rows and the database's own constraints."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Role
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError, NotAllowed
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PartnerFactory
from orders.models import Order, OrderDocument, OrderStatusHistory
from orders.services.documents import document_review, document_upload
from orders.services.orders import TRANSITIONS, order_assign_many, order_create, order_transition, order_update
from orders.tests.factories import CompanyFactory, OrderTypeFactory, RequirementFactory

Status = Order.Status
REASON = "The client asked for it in writing."


@pytest.fixture
def plain_type(db):
    """An order type that requires no documents (one optional), so its orders stay `started`."""
    order_type = OrderTypeFactory(code="eu_vat", name="EU VAT registration", target_duration_days=30)
    RequirementFactory(order_type=order_type, required=False)
    return order_type


@pytest.fixture
def new_order(formation, operations_user):
    def make(**fields) -> Order:
        fields.setdefault("customer", formation["customer"])
        fields.setdefault("order_type", formation["order_type"])
        return order_create(actor=operations_user, **fields)

    return make


def history(order: Order) -> list[tuple[str, str]]:
    return [(row.from_status, row.to_status) for row in order.status_history.order_by("at", "pk")]


def documents_of(order: Order) -> dict[str, OrderDocument]:
    return {document.document_type.code: document for document in order.documents.select_related("document_type")}


def accept_all(order: Order, actor, upload) -> None:
    for document in documents_of(order).values():
        document_upload(actor=actor, document=document, upload=upload())
        document_review(actor=actor, document=document, accept=True)


def order_in(status: str, *, customer, order_type, actor, admin) -> Order:
    """An order of a type that requires no documents, brought to `status` through the services."""
    order = order_create(actor=actor, customer=customer, order_type=order_type)
    assert order.status == Status.STARTED
    path = {
        Status.STARTED: [],
        Status.IN_PROGRESS: [Status.IN_PROGRESS],
        Status.COMPLETED: [Status.IN_PROGRESS, Status.COMPLETED],
        Status.FAILED: [Status.IN_PROGRESS, Status.FAILED],
        Status.CANCELLED: [Status.CANCELLED],
    }[status]
    for step in path:
        order = order_transition(actor=admin, order=order, to_status=step, reason=REASON)
    return order


def refusal(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


# Creation


def test_creating_an_order_numbers_it_prefills_it_and_waits_for_its_documents(new_order, formation, operations_user):
    order = new_order()

    year = billing_today().year
    assert order.number == f"ORD-{year}-000001"
    assert (order.fee, order.base_charge, order.currency) == (Decimal("1000.00"), Decimal("120.00"), "GBP")
    assert order.start_date == billing_today()
    assert order.due_date == billing_today() + timedelta(days=14)
    assert order.created_by == operations_user
    assert order.status == Status.DOCUMENTS_PENDING
    assert {(code, d.status, d.required) for code, d in documents_of(order).items()} == {
        ("passport", "pending", True),
        ("proof_of_address", "pending", True),
    }
    # The placeholders are in the audit trail too, made by the order's creator.
    assert [d.history.get().history_user for d in documents_of(order).values()] == [operations_user] * 2
    rows = list(order.status_history.all())
    assert [(r.from_status, r.to_status, r.actor, r.override) for r in rows] == [
        ("", "started", operations_user, False),
        ("started", "documents_pending", operations_user, False),
    ]
    assert rows[1].comment == (
        "Waiting: 2 required documents are not accepted: Passport (pending), Proof of address (pending)."
    )
    Order.objects.get(pk=order.pk)  # it is in the database, not only in memory


def test_a_type_that_requires_no_documents_leaves_the_order_started(plain_type, formation, operations_user):
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=plain_type)

    assert order.status == Status.STARTED
    assert order.documents.count() == 0  # optional documents get no placeholder
    assert history(order) == [("", "started")]
    assert order.due_date == order.start_date + timedelta(days=30)


def test_fee_base_charge_and_due_date_given_win_over_the_type(new_order):
    order = new_order(
        fee=Decimal("750.00"), base_charge=Decimal("0.00"), start_date=date(2026, 3, 2), due_date=date(2026, 3, 5)
    )

    order.refresh_from_db()
    assert (order.fee, order.base_charge) == (Decimal("750.00"), Decimal("0.00"))
    assert (order.start_date, order.due_date) == (date(2026, 3, 2), date(2026, 3, 5))


def test_the_due_date_follows_the_start_date_given(new_order):
    order = new_order(start_date=date(2026, 3, 2))

    assert order.due_date == date(2026, 3, 16)


def test_order_numbers_run_in_sequence_without_gaps_and_restart_each_year(new_order):
    year = billing_today().year
    first, second = new_order(), new_order()
    # A create refused after it took its number gives the number back with its transaction.
    with pytest.raises(ValidationError):
        new_order(fee=Decimal("5000000000.00"))
    third = new_order()

    assert [first.number, second.number, third.number] == [
        f"ORD-{year}-000001",
        f"ORD-{year}-000002",
        f"ORD-{year}-000003",
    ]
    assert Order.objects.count() == 3

    with time_machine.travel(date(year + 1, 1, 2), tick=False):
        assert new_order().number == f"ORD-{year + 1}-000001"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            lambda f: {"start_date": date(2026, 3, 2), "due_date": date(2026, 3, 1)},
            "due_date",
            "The due date 2026-03-01 is before the start date 2026-03-02.",
        ),
        (
            lambda f: {"company": CompanyFactory(name="Other Co Ltd")},
            "company",
            "Other Co Ltd belongs to another customer, not Acme Ltd.",
        ),
        (
            lambda f: {"order_type": OrderTypeFactory(name="Closed service", active=False)},
            "order_type",
            "The order type Closed service is not active.",
        ),
        (
            lambda f: {"customer": CustomerFactory(client_id="GONE-001", status=Customer.Status.SUSPENDED)},
            "customer",
            "GONE-001 is suspended; it takes no new orders.",
        ),
    ],
    ids=["due-before-start", "company-of-another-customer", "inactive-type", "suspended-customer"],
)
def test_a_refused_create_says_why_and_leaves_nothing(new_order, formation, fields, field, message):
    error = refusal(lambda: new_order(**fields(formation)))

    assert error.message == message
    assert error.fields == {field: [message]}
    assert not Order.objects.exists() and not OrderStatusHistory.objects.exists()
    assert not OrderDocument.objects.exists()


@pytest.mark.parametrize(
    "assignee",
    [
        lambda make_user: make_user(Role.OPERATIONS, is_staff=False, email="client@x.example"),
        lambda make_user: make_user(Role.OPERATIONS, is_active=False, email="client@x.example"),
    ],
    ids=["not-staff", "inactive"],
)
def test_an_assignee_must_be_active_staff(new_order, make_user, assignee):
    error = refusal(lambda: new_order(assignee=assignee(make_user)))

    assert error.fields == {"assignee": [f"{error.message}"]}
    assert "client@x.example" in error.message and error.message.endswith("is not an active staff user.")
    assert not Order.objects.exists()


def test_an_order_of_the_customers_own_company_with_a_partner_is_kept(new_order, formation, operations_user):
    company = CompanyFactory(customer=formation["customer"])
    partner = PartnerFactory()

    order = new_order(company=company, partner=partner, assignee=operations_user, description="Rush")

    order.refresh_from_db()
    assert (order.company, order.partner, order.assignee, order.description) == (
        company,
        partner,
        operations_user,
        "Rush",
    )


# Every allowed transition


ALLOWED = [(source, transition) for source, transitions in TRANSITIONS.items() for transition in transitions]


@pytest.mark.parametrize(
    ("source", "transition"), ALLOWED, ids=[f"{source}->{transition.to}" for source, transition in ALLOWED]
)
def test_every_transition_in_the_table_is_allowed_and_writes_one_history_row(
    plain_type, formation, operations_user, admin_user, pdf_upload, source, transition
):
    if source == Status.DOCUMENTS_PENDING:
        order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
        accept_all(order, operations_user, pdf_upload)
    else:
        order = order_in(
            source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
        )
    actor = admin_user if transition.reopens else operations_user
    rows_before = order.status_history.count()

    moved = order_transition(
        actor=actor, order=order, to_status=transition.to, reason=REASON if transition.needs_reason else ""
    )

    moved.refresh_from_db()
    assert moved.status == transition.to
    assert order.status_history.count() == rows_before + 1
    row = order.status_history.order_by("-at", "-pk").first()
    assert (row.from_status, row.to_status, row.actor, row.override) == (source, transition.to, actor, False)
    assert row.comment == (REASON if transition.needs_reason else "")
    timestamps = {"completed": moved.completed_at, "failed": moved.failed_at, "cancelled": moved.cancelled_at}
    assert {name for name, value in timestamps.items() if value is not None} == (
        {transition.to} if transition.to in timestamps else set()
    )
    assert moved.reason == (REASON if transition.to in ("failed", "cancelled") else "")


# Every refused transition

REFUSED = [
    (source, target)
    for source in Status.values
    for target in Status.values
    if target not in {t.to for t in TRANSITIONS[source]} and target != source and target != Status.DOCUMENTS_PENDING
]


@pytest.mark.parametrize(("source", "target"), REFUSED, ids=[f"{s}->{t}" for s, t in REFUSED])
def test_every_transition_not_in_the_table_is_refused_with_where_it_can_go(
    plain_type, formation, operations_user, admin_user, source, target
):
    if source == Status.DOCUMENTS_PENDING:
        order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    else:
        order = order_in(
            source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
        )
    rows_before = order.status_history.count()

    error = refusal(lambda: order_transition(actor=admin_user, order=order, to_status=target, reason=REASON))

    allowed = ", ".join(Status(t.to).label.lower() for t in TRANSITIONS[source])
    message = (
        f"{order.number} is {Status(source).label.lower()} and cannot move to {Status(target).label.lower()}; "
        f"it can move to: {allowed}."
    )
    assert (error.code, error.message, error.fields) == ("invalid_transition", message, {"to_status": [message]})
    order.refresh_from_db()
    assert order.status == source and order.status_history.count() == rows_before


def test_refused_transitions_read_as_sentences(plain_type, formation, operations_user, admin_user, new_order):
    pending = new_order()
    completed = order_in(
        Status.COMPLETED, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )

    assert refusal(lambda: order_transition(actor=admin_user, order=pending, to_status="completed")).message == (
        f"{pending.number} is documents pending and cannot move to completed; it can move to: in progress, cancelled."
    )
    assert refusal(
        lambda: order_transition(actor=admin_user, order=completed, to_status="cancelled", reason=REASON)
    ).message == (f"{completed.number} is completed and cannot move to cancelled; it can move to: in progress.")


@pytest.mark.parametrize("source", Status.values)
def test_nobody_moves_an_order_to_documents_pending_by_hand(
    plain_type, formation, operations_user, admin_user, source, new_order
):
    if source == Status.DOCUMENTS_PENDING:
        order = new_order()
        expected = f"{order.number} is already documents pending."
    else:
        order = order_in(
            source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
        )
        expected = (
            f"An order waits for documents by itself while a required one is missing; {order.number} is "
            f"{Status(source).label.lower()}."
        )
    rows_before = order.status_history.count()

    error = refusal(
        lambda: order_transition(actor=admin_user, order=order, to_status="documents_pending", reason=REASON)
    )

    assert (error.code, error.message) == ("invalid_transition", expected)
    assert order.status_history.count() == rows_before


@pytest.mark.parametrize("source", [s for s in Status.values if s != Status.DOCUMENTS_PENDING])
def test_moving_to_the_same_status_is_refused(plain_type, formation, operations_user, admin_user, source):
    order = order_in(
        source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )
    rows_before = order.status_history.count()

    error = refusal(lambda: order_transition(actor=admin_user, order=order, to_status=source, reason=REASON))

    message = f"{order.number} is already {Status(source).label.lower()}."
    assert (error.code, error.message, error.fields) == ("invalid_transition", message, {"to_status": [message]})
    assert order.status_history.count() == rows_before


@pytest.mark.parametrize("unknown", ["shipped", "", "IN_PROGRESS", None])
def test_an_unknown_status_is_refused(new_order, admin_user, unknown):
    order = new_order()

    error = refusal(lambda: order_transition(actor=admin_user, order=order, to_status=unknown))

    assert error.message == f"{unknown!r} is not an order status."
    assert error.fields == {"to_status": [error.message]}
    order.refresh_from_db()
    assert order.status == Status.DOCUMENTS_PENDING


# Documents before work starts


def test_work_starts_only_when_every_required_document_is_accepted(new_order, operations_user, pdf_upload):
    order = new_order()
    documents = documents_of(order)
    document_upload(actor=operations_user, document=documents["passport"], upload=pdf_upload())
    document_review(actor=operations_user, document=documents["passport"], accept=False, reason="Expired")

    error = refusal(lambda: order_transition(actor=operations_user, order=order, to_status="in_progress"))

    message = "2 required documents are not accepted: Passport (rejected), Proof of address (pending)."
    assert (error.code, error.message, error.fields) == ("documents_missing", message, {"to_status": [message]})

    document_upload(actor=operations_user, document=documents["passport"], upload=pdf_upload())
    document_review(actor=operations_user, document=documents["passport"], accept=True)
    document_upload(actor=operations_user, document=documents["proof_of_address"], upload=pdf_upload("bill.pdf"))
    error = refusal(lambda: order_transition(actor=operations_user, order=order, to_status="in_progress"))
    assert error.message == "1 required document is not accepted: Proof of address (received)."

    document_review(actor=operations_user, document=documents["proof_of_address"], accept=True)
    order = order_transition(actor=operations_user, order=order, to_status="in_progress")
    assert order.status == Status.IN_PROGRESS
    assert history(order)[-1] == ("documents_pending", "in_progress")


def test_an_optional_document_does_not_hold_work_back(formation, operations_user, pdf_upload):
    from orders.services.documents import document_for_type
    from orders.tests.factories import DocumentTypeFactory

    extra = DocumentTypeFactory(code="bank_ref", name="Bank reference")
    RequirementFactory(order_type=formation["order_type"], document_type=extra, required=False)
    order = order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])
    accept_all(order, operations_user, pdf_upload)
    optional = document_for_type(actor=operations_user, order=order, document_type=extra)
    assert optional.required is False and optional.status == "pending"

    assert order_transition(actor=operations_user, order=order, to_status="in_progress").status == "in_progress"


def test_an_admin_overrides_missing_documents_with_a_reason(new_order, admin_user):
    order = new_order()

    order = order_transition(
        actor=admin_user,
        order=order,
        to_status="in_progress",
        override=True,
        reason="  Known client; passport follows.  ",
    )

    assert order.status == Status.IN_PROGRESS
    row = order.status_history.order_by("-at", "-pk").first()
    assert (row.from_status, row.to_status, row.actor, row.override, row.comment) == (
        "documents_pending",
        "in_progress",
        admin_user,
        True,
        "Known client; passport follows.",
    )


def test_an_override_needs_a_reason(new_order, admin_user):
    order = new_order()

    for reason in ("", "   "):
        error = refusal(
            lambda reason=reason: order_transition(
                actor=admin_user, order=order, to_status="in_progress", override=True, reason=reason
            )
        )
        assert (error.code, error.fields) == (
            "reason_required",
            {"reason": ["Starting work without every required document needs a reason."]},
        )
    order.refresh_from_db()
    assert order.status == Status.DOCUMENTS_PENDING and order.status_history.count() == 2


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.FINANCE, Role.CUSTOMER_SUCCESS])
def test_only_an_admin_overrides(new_order, make_user, role):
    order = new_order()
    user = make_user(role)

    with pytest.raises(NotAllowed) as caught:
        order_transition(actor=user, order=order, to_status="in_progress", override=True, reason=REASON)

    assert caught.value.message == (
        "Only an Admin can start work while documents are missing: 2 required documents are not accepted: "
        "Passport (pending), Proof of address (pending)."
    )
    order.refresh_from_db()
    assert order.status == Status.DOCUMENTS_PENDING and order.status_history.count() == 2


def test_an_override_when_nothing_is_missing_is_no_override(new_order, admin_user, operations_user, pdf_upload):
    order = new_order()
    accept_all(order, operations_user, pdf_upload)

    order = order_transition(actor=admin_user, order=order, to_status="in_progress", override=True, reason=REASON)

    assert order.status_history.order_by("-at", "-pk").first().override is False


# Reasons


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (Status.STARTED, Status.CANCELLED, "Moving to cancelled needs a reason."),
        (Status.IN_PROGRESS, Status.FAILED, "Moving to failed needs a reason."),
    ],
)
def test_failing_and_cancelling_need_a_reason(
    plain_type, formation, operations_user, admin_user, source, target, message
):
    order = order_in(
        source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )

    for reason in ("", " \n "):
        error = refusal(
            lambda reason=reason: order_transition(actor=admin_user, order=order, to_status=target, reason=reason)
        )
        assert (error.code, error.message, error.fields) == ("reason_required", message, {"reason": [message]})
    order.refresh_from_db()
    assert order.status == source and order.reason == ""

    order = order_transition(actor=operations_user, order=order, to_status=target, reason="Registrar refused")
    order.refresh_from_db()
    assert (order.status, order.reason) == (target, "Registrar refused")


def test_a_pending_order_is_cancelled_with_a_reason(new_order, operations_user):
    order = order_transition(actor=operations_user, order=new_order(), to_status="cancelled", reason="Client left")

    order.refresh_from_db()
    assert (order.status, order.reason, order.cancelled_at is not None) == ("cancelled", "Client left", True)


# Reopening


@pytest.mark.parametrize(
    ("source", "reopened"),
    [(Status.COMPLETED, Status.IN_PROGRESS), (Status.FAILED, Status.IN_PROGRESS), (Status.CANCELLED, Status.STARTED)],
)
def test_an_admin_reopens_a_final_order_with_a_reason_and_its_timestamps_clear(
    plain_type, formation, operations_user, admin_user, source, reopened
):
    order = order_in(
        source, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )

    order = order_transition(actor=admin_user, order=order, to_status=reopened, reason="Client came back")

    order.refresh_from_db()
    assert order.status == reopened
    assert (order.completed_at, order.failed_at, order.cancelled_at, order.reason) == (None, None, None, "")
    row = order.status_history.order_by("-at", "-pk").first()
    assert (row.from_status, row.to_status, row.actor, row.comment) == (
        source,
        reopened,
        admin_user,
        "Client came back",
    )


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.SALES, Role.FINANCE])
@pytest.mark.parametrize("reason", ["", REASON])
def test_only_an_admin_reopens(plain_type, formation, operations_user, admin_user, make_user, role, reason):
    order = order_in(
        Status.COMPLETED, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )
    rows_before = order.status_history.count()

    with pytest.raises(NotAllowed) as caught:
        order_transition(actor=make_user(role), order=order, to_status="in_progress", reason=reason)

    assert caught.value.message == "Only an Admin can reopen a completed order."
    order.refresh_from_db()
    assert order.status == Status.COMPLETED and order.completed_at is not None
    assert order.status_history.count() == rows_before


def test_reopening_needs_a_reason(plain_type, formation, operations_user, admin_user):
    order = order_in(
        Status.FAILED, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )

    error = refusal(lambda: order_transition(actor=admin_user, order=order, to_status="in_progress", reason=" "))

    assert (error.code, error.message) == ("reason_required", "Reopening needs a reason.")
    order.refresh_from_db()
    assert (order.status, order.reason) == (Status.FAILED, REASON)


def test_a_reopened_order_waits_for_its_documents_again(new_order, admin_user, operations_user):
    order = order_transition(actor=operations_user, order=new_order(), to_status="cancelled", reason="Client left")

    order = order_transition(actor=admin_user, order=order, to_status="started", reason="Client came back")

    assert order.status == Status.DOCUMENTS_PENDING
    assert history(order)[-3:] == [
        ("documents_pending", "cancelled"),
        ("cancelled", "started"),
        ("started", "documents_pending"),
    ]


def test_a_reopened_order_with_its_documents_accepted_stays_started(new_order, admin_user, operations_user, pdf_upload):
    order = new_order()
    accept_all(order, operations_user, pdf_upload)
    order = order_transition(actor=operations_user, order=order, to_status="cancelled", reason="Client left")

    order = order_transition(actor=admin_user, order=order, to_status="started", reason="Client came back")

    assert order.status == Status.STARTED
    assert history(order)[-1] == ("cancelled", "started")


# One history row per change, in the same transaction


def test_a_change_whose_save_fails_writes_no_history_row(plain_type, formation, operations_user, admin_user):
    order = order_in(
        Status.IN_PROGRESS,
        customer=formation["customer"],
        order_type=plain_type,
        actor=operations_user,
        admin=admin_user,
    )
    # A fee the column holds but the model refuses (beyond MAX_AMOUNT), as an old import could leave it.
    Order.objects.filter(pk=order.pk).update(fee=Decimal("5000000000.00"))
    rows_before = order.status_history.count()

    with pytest.raises(ValidationError):
        order_transition(actor=operations_user, order=order, to_status="completed")

    order.refresh_from_db()
    assert (order.status, order.completed_at) == (Status.IN_PROGRESS, None)
    assert order.status_history.count() == rows_before


def test_the_history_rows_are_the_orders_timeline(new_order, operations_user, admin_user, pdf_upload):
    order = new_order()
    accept_all(order, operations_user, pdf_upload)
    order = order_transition(actor=operations_user, order=order, to_status="in_progress")
    order = order_transition(actor=operations_user, order=order, to_status="completed")
    order = order_transition(actor=admin_user, order=order, to_status="in_progress", reason="Filing corrected")
    order = order_transition(actor=operations_user, order=order, to_status="failed", reason="Registrar refused")

    assert history(order) == [
        ("", "started"),
        ("started", "documents_pending"),
        ("documents_pending", "in_progress"),
        ("in_progress", "completed"),
        ("completed", "in_progress"),
        ("in_progress", "failed"),
    ]
    assert order.history.count() >= 6  # simple-history keeps the rows' versions too


# The database's own constraints, past the service


@pytest.mark.parametrize(
    "change",
    [
        lambda order: {"due_date": order.start_date - timedelta(days=1)},
        lambda order: {"fee": Decimal("-0.01")},
        lambda order: {"base_charge": Decimal("-1.00")},
        lambda order: {"status": "failed", "failed_at": timezone.now(), "reason": ""},
        lambda order: {"status": "cancelled", "cancelled_at": timezone.now(), "reason": ""},
        lambda order: {"status": "completed", "completed_at": None},
    ],
    ids=[
        "due-before-start",
        "negative-fee",
        "negative-base-charge",
        "failed-no-reason",
        "cancelled-no-reason",
        "completed-no-time",
    ],
)
def test_the_database_refuses_bad_rows_past_the_service(new_order, change):
    order = new_order()

    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(**change(order))

    order.refresh_from_db()
    assert order.status == Status.DOCUMENTS_PENDING


# Changing an order


def test_an_open_order_changes_its_terms(new_order, formation, operations_user):
    order = new_order(start_date=date(2026, 3, 2))
    company = CompanyFactory(customer=formation["customer"])

    order_update(
        actor=operations_user,
        order=order,
        fee=Decimal("900.00"),
        base_charge=Decimal("80.00"),
        due_date=date(2026, 4, 1),
        company=company,
        assignee=operations_user,
        description="Urgent",
    )

    order.refresh_from_db()
    assert (order.fee, order.base_charge, order.due_date, order.company, order.assignee, order.description) == (
        Decimal("900.00"),
        Decimal("80.00"),
        date(2026, 4, 1),
        company,
        operations_user,
        "Urgent",
    )
    assert order.history.first().history_user == operations_user


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"due_date": date(2026, 3, 1)}, "due_date", "The due date 2026-03-01 is before the start date 2026-03-02."),
        (
            {"company": "another customer's"},
            "company",
            "Other Co Ltd belongs to another customer, not Acme Ltd.",
        ),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(new_order, operations_user, change, field, message):
    order = new_order(start_date=date(2026, 3, 2))
    if "company" in change:
        change = {"company": CompanyFactory(name="Other Co Ltd")}

    error = refusal(lambda: order_update(actor=operations_user, order=order, fee=Decimal("1.00"), **change))

    assert (error.message, error.fields) == (message, {field: [message]})
    order.refresh_from_db()
    assert (order.fee, order.due_date, order.company) == (Decimal("1000.00"), date(2026, 3, 16), None)


def test_an_order_is_assigned_to_active_staff_only(new_order, operations_user, make_user):
    order = new_order()
    outsider = make_user(is_staff=False, email="client@x.example")

    error = refusal(lambda: order_update(actor=operations_user, order=order, assignee=outsider))

    assert error.fields == {"assignee": [f"{outsider} is not an active staff user."]}
    order.refresh_from_db()
    assert order.assignee is None


@pytest.mark.parametrize("field", ["status", "number", "customer", "order_type", "currency", "start_date"])
def test_fields_the_lifecycle_or_creation_own_cannot_be_changed(new_order, operations_user, field):
    order = new_order()

    with pytest.raises(ValidationError) as caught:
        order_update(actor=operations_user, order=order, **{field: "anything"})

    assert caught.value.message_dict == {field: ["This field cannot be changed here."]}


def test_a_closed_orders_terms_no_longer_change_but_its_follow_up_does(
    plain_type, formation, operations_user, admin_user
):
    order = order_in(
        Status.COMPLETED, customer=formation["customer"], order_type=plain_type, actor=operations_user, admin=admin_user
    )

    for change in ({"fee": Decimal("1.00")}, {"base_charge": Decimal("1.00")}, {"partner": PartnerFactory()}):
        error = refusal(lambda change=change: order_update(actor=operations_user, order=order, **change))
        assert error.message == f"{order.number} is completed; its terms no longer change."

    order_update(actor=operations_user, order=order, assignee=operations_user, description="Archived")
    order.refresh_from_db()
    assert (order.fee, order.assignee, order.description) == (Decimal("1000.00"), operations_user, "Archived")


def test_a_negative_fee_is_refused_by_the_model(new_order, operations_user):
    order = new_order()

    with pytest.raises(ValidationError) as caught:
        order_update(actor=operations_user, order=order, fee=Decimal("-5.00"))

    assert "fee" in caught.value.message_dict
    order.refresh_from_db()
    assert order.fee == Decimal("1000.00")


def test_orders_of_several_customers_are_assigned_at_once(new_order, formation, operations_user, admin_user):
    other = CustomerFactory()
    orders = [new_order(), new_order(customer=other), new_order()]

    assert order_assign_many(actor=admin_user, orders=orders, assignee=operations_user) == 3

    assert [o.assignee for o in Order.objects.order_by("pk")] == [operations_user] * 3
    assert all(o.history.first().history_user == admin_user for o in Order.objects.all())
    assert order_assign_many(actor=admin_user, orders=orders[:1], assignee=None) == 1
    assert Order.objects.filter(assignee__isnull=True).count() == 1


def test_a_bulk_assignment_to_someone_not_staff_changes_nothing(new_order, make_user, admin_user):
    orders = [new_order(), new_order()]
    outsider = make_user(is_staff=False, email="out@x.example")

    error = refusal(lambda: order_assign_many(actor=admin_user, orders=orders, assignee=outsider))

    assert error.fields == {"assignee": [f"{outsider} is not an active staff user."]}
    assert not Order.objects.filter(assignee__isnull=False).exists()
