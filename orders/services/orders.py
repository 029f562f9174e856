"""Creating orders and moving them through their lifecycle (DESIGN.md, "Orders (hand-run services)").

Every rule of the lifecycle is in `TRANSITIONS` and `order_transition`; nothing else changes an order's
status. A plain table rather than a state-machine library: the rules need the order's documents, the
actor's permissions and a reason, which a table and one function say in one place, and every change
writes its history row in the same transaction.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, get_history_manager_for_model

from accounts.models import User
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError, NotAllowed
from catalog.locks import lock_customer
from catalog.models import Customer, Partner
from ledger.services.billing import next_document_number
from orders.locks import lock_order, lock_orders
from orders.models import Company, Order, OrderDocument, OrderStatusHistory, OrderType
from orders.services.billing import order_invoice_follow_status, order_invoice_follow_terms, order_invoice_start
from orders.services.settlements import settle_locked_orders

Status = Order.Status
ORDER_SERIES = "ORD"


@dataclass(frozen=True)
class Transition:
    to: str
    label: str
    needs_reason: bool = False
    needs_documents: bool = False
    reopens: bool = False


# From each status, where an order may go by a person's hand. `started -> documents_pending` is not here:
# it happens by itself (`_wait_for_documents`).
TRANSITIONS: dict[str, tuple[Transition, ...]] = {
    Status.STARTED: (
        Transition(Status.IN_PROGRESS, "Start work", needs_documents=True),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.DOCUMENTS_PENDING: (
        Transition(Status.IN_PROGRESS, "Start work", needs_documents=True),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.IN_PROGRESS: (
        Transition(Status.COMPLETED, "Complete"),
        Transition(Status.FAILED, "Mark failed", needs_reason=True),
    ),
    Status.COMPLETED: (Transition(Status.IN_PROGRESS, "Reopen", needs_reason=True, reopens=True),),
    Status.FAILED: (Transition(Status.IN_PROGRESS, "Reopen", needs_reason=True, reopens=True),),
    Status.CANCELLED: (Transition(Status.STARTED, "Reopen", needs_reason=True, reopens=True),),
}
TIMESTAMP_OF = {Status.COMPLETED: "completed_at", Status.FAILED: "failed_at", Status.CANCELLED: "cancelled_at"}


def transitions_from(status: str) -> tuple[Transition, ...]:
    return TRANSITIONS.get(status, ())


def missing_documents(order: Order) -> list[OrderDocument]:
    """The order's required documents that are not accepted, by name."""
    return [
        document
        for document in order.documents.select_related("document_type").order_by("document_type__name")
        if document.required and document.status != OrderDocument.Status.ACCEPTED
    ]


def describe_missing(documents: list[OrderDocument]) -> str:
    listed = ", ".join(f"{d.document_type.name} ({d.get_status_display().lower()})" for d in documents)
    if len(documents) == 1:
        return f"1 required document is not accepted: {listed}"
    return f"{len(documents)} required documents are not accepted: {listed}"


def _record(order: Order, *, from_status: str, actor: User | None, comment: str = "", override: bool = False):
    OrderStatusHistory.objects.create(
        order=order,
        from_status=from_status,
        to_status=order.status,
        actor=actor,
        at=timezone.now(),
        comment=comment,
        override=override,
    )


def _save(order: Order, *, actor: User | None) -> Order:
    order._history_user = actor
    order.full_clean()
    order.save()
    return order


def _wait_for_documents(order: Order, *, actor: User | None) -> None:
    """A started order that lacks a required document waits in documents_pending, by itself."""
    if order.status != Status.STARTED:
        return
    missing = missing_documents(order)
    if not missing:
        return
    order.status = Status.DOCUMENTS_PENDING
    _save(order, actor=actor)
    _record(order, from_status=Status.STARTED, actor=actor, comment=f"Waiting: {describe_missing(missing)}.")


def _refuse(message: str, *, field: str | None = None, code: str = "invalid") -> DomainError:
    return DomainError(message, code=code, fields={field: [message]} if field else None)


def _check_parts(
    *,
    customer: Customer,
    order_type: OrderType,
    company: Company | None,
    assignee: User | None,
    start_date: date,
    due_date: date,
    new: bool = True,
) -> None:
    if new and customer.status != Customer.Status.ACTIVE:
        raise _refuse(
            f"{customer.client_id} is {customer.get_status_display().lower()}; it takes no new orders.",
            field="customer",
        )
    if new and not order_type.active:
        raise _refuse(f"The order type {order_type.name} is not active.", field="order_type")
    if company is not None and company.customer_id != customer.pk:
        raise _refuse(f"{company.name} belongs to another customer, not {customer.name}.", field="company")
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise _refuse(f"{assignee} is not an active staff user.", field="assignee")
    if due_date < start_date:
        raise _refuse(
            f"The due date {due_date.isoformat()} is before the start date {start_date.isoformat()}.", field="due_date"
        )


@transaction.atomic
def order_create(
    *,
    actor: User | None,
    customer: Customer,
    order_type: OrderType,
    partner: Partner | None = None,
    company: Company | None = None,
    fee: Decimal | None = None,
    base_charge: Decimal | None = None,
    assignee: User | None = None,
    start_date: date | None = None,
    due_date: date | None = None,
    description: str = "",
) -> Order:
    """A new order: numbered, prefilled from its type, with a pending placeholder per required document; it
    waits in documents_pending straight away when the type requires any."""
    # The customer's lock comes before the order series' (ledger/locks.py), and its status is read under it.
    customer = lock_customer(customer)
    start_date = start_date or billing_today()
    due_date = due_date or start_date + timedelta(days=order_type.target_duration_days)
    _check_parts(
        customer=customer,
        order_type=order_type,
        company=company,
        assignee=assignee,
        start_date=start_date,
        due_date=due_date,
    )
    order = Order(
        number=next_document_number(ORDER_SERIES),
        customer=customer,
        partner=partner,
        order_type=order_type,
        company=company,
        currency=customer.currency,
        fee=order_type.default_fee if fee is None else fee,
        base_charge=order_type.default_base_charge if base_charge is None else base_charge,
        assignee=assignee,
        start_date=start_date,
        due_date=due_date,
        started_at=timezone.now(),
        description=description,
        created_by=actor,
        status=Status.STARTED,
    )
    _save(order, actor=actor)
    _record(order, from_status="", actor=actor, comment="Order created.")
    placeholders = [
        OrderDocument(order=order, document_type_id=requirement.document_type_id, required=True)
        for requirement in order_type.requirements.filter(required=True)
    ]
    bulk_create_with_history(placeholders, OrderDocument, default_user=actor)
    _wait_for_documents(order, actor=actor)
    order_invoice_start(actor=actor, order=order)
    return order


ORDER_FIELDS = {"partner", "company", "fee", "base_charge", "assignee", "due_date", "description"}


@transaction.atomic
def order_update(*, actor: User | None, order: Order, **changes: Any) -> Order:
    order = lock_order(order)
    unknown = sorted(set(changes) - ORDER_FIELDS)
    if unknown:
        raise ValidationError({field: ["This field cannot be changed here."] for field in unknown})
    if not order.is_open and set(changes) & {"fee", "base_charge", "company", "partner"}:
        raise _refuse(f"{order.number} is {order.get_status_display().lower()}; its terms no longer change.")
    for field, value in changes.items():
        setattr(order, field, value)
    _check_parts(
        customer=order.customer,
        order_type=order.order_type,
        company=order.company,
        assignee=order.assignee,
        start_date=order.start_date,
        due_date=order.due_date,
        new=False,
    )
    _save(order, actor=actor)
    if set(changes) & {"fee", "base_charge"}:
        order_invoice_follow_terms(actor=actor, order=order)
    return order


@transaction.atomic
def order_assign_many(*, actor: User | None, orders: list[Order], assignee: User | None) -> int:
    """Give every order to `assignee` (None: to nobody); how many were."""
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        raise _refuse(f"{assignee} is not an active staff user.", field="assignee")
    locked = lock_orders(orders)
    for order in locked:
        order.assignee = assignee
        _save(order, actor=actor)
    return len(locked)


@transaction.atomic
def order_transition(
    *, actor: User | None, order: Order, to_status: str, reason: str = "", override: bool = False
) -> Order:
    """Move `order` to `to_status` if the lifecycle allows it, writing its history row; refused otherwise,
    with what is missing. `override` (an Admin's, with a reason) starts work with documents not accepted."""
    order = lock_order(order)
    reason = (reason or "").strip()
    current = Status(order.status)
    if to_status not in Status.values:
        raise _refuse(f"{to_status!r} is not an order status.", field="to_status")
    target = Status(to_status)
    if target == current:
        raise _refuse(
            f"{order.number} is already {current.label.lower()}.", field="to_status", code="invalid_transition"
        )
    if target == Status.DOCUMENTS_PENDING:
        raise _refuse(
            f"An order waits for documents by itself while a required one is missing; {order.number} is "
            f"{current.label.lower()}.",
            field="to_status",
            code="invalid_transition",
        )
    transition = next((t for t in transitions_from(current) if t.to == target), None)
    if transition is None:
        allowed = ", ".join(Status(t.to).label.lower() for t in transitions_from(current))
        raise _refuse(
            f"{order.number} is {current.label.lower()} and cannot move to {target.label.lower()}"
            + (f"; it can move to: {allowed}." if allowed else "."),
            field="to_status",
            code="invalid_transition",
        )
    if transition.reopens and not (actor is not None and actor.has_perm("orders.override_order")):
        raise NotAllowed(f"Only an Admin can reopen a {current.label.lower()} order.")
    if transition.needs_reason and not reason:
        what = "Reopening" if transition.reopens else f"Moving to {target.label.lower()}"
        raise _refuse(f"{what} needs a reason.", field="reason", code="reason_required")
    overridden = False
    if transition.needs_documents:
        missing = missing_documents(order)
        if missing and not override:
            raise _refuse(f"{describe_missing(missing)}.", field="to_status", code="documents_missing")
        if missing:
            if not (actor is not None and actor.has_perm("orders.override_order")):
                raise NotAllowed(
                    f"Only an Admin can start work while documents are missing: {describe_missing(missing)}."
                )
            if not reason:
                raise _refuse(
                    "Starting work without every required document needs a reason.",
                    field="reason",
                    code="reason_required",
                )
            overridden = True
    now = timezone.now()
    order.status = target
    if target in TIMESTAMP_OF:
        setattr(order, TIMESTAMP_OF[target], now)
        order.reason = reason if target in (Status.FAILED, Status.CANCELLED) else order.reason
    if transition.reopens:
        order.completed_at = order.failed_at = order.cancelled_at = None
        order.reason = ""
    _save(order, actor=actor)
    _record(order, from_status=current, actor=actor, comment=reason, override=overridden)
    order_invoice_follow_status(actor=actor, order=order, reason=reason)
    if target in (Status.COMPLETED, Status.FAILED) or transition.reopens:
        what = "reopened" if transition.reopens else target.label.lower()
        settle_locked_orders([order], actor=actor, reason=f"{order.number} {what}.")
    if transition.reopens:
        _wait_for_documents(order, actor=actor)
    return order


@transaction.atomic
def orders_complete(*, actor: User | None, orders: list[Order]) -> tuple[list[Order], list[str]]:
    """Complete many orders at once (a bulk completion from the orders list) and settle them, in one transaction
    and a fixed number of queries whatever their number. Orders not in progress are left as they are; returns
    the completed orders and, for each one left, why."""
    locked = lock_orders(orders)
    ready = [order for order in locked if order.status == Status.IN_PROGRESS]
    refused = [
        f"{order.number} is {Status(order.status).label.lower()}; only an order in progress is completed."
        for order in locked
        if order.status != Status.IN_PROGRESS
    ]
    if not ready:
        return [], refused
    now = timezone.now()
    Order.objects.filter(pk__in=[order.pk for order in ready]).update(
        status=Status.COMPLETED, completed_at=now, updated_at=now
    )
    for order in ready:
        order.status, order.completed_at, order.updated_at, order._history_user = Status.COMPLETED, now, now, actor
    get_history_manager_for_model(Order).bulk_history_create(ready, update=True, default_date=now)
    OrderStatusHistory.objects.bulk_create(
        [
            OrderStatusHistory(
                order=order, from_status=Status.IN_PROGRESS, to_status=Status.COMPLETED, actor=actor, at=now
            )
            for order in ready
        ]
    )
    settle_locked_orders(ready, actor=actor, reason="Completed with other orders at once.")
    return ready, refused


def wait_for_documents(*, actor: User | None, order: Order) -> None:
    """Called by document services, under the order's lock, after a document's status changed."""
    _wait_for_documents(order, actor=actor)
