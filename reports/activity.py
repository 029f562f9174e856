"""The dashboard's recent activity: invoices issued, payments recorded, bills approved or rejected, orders completed.

Read from the audit trail: the invoices' and payments' django-simple-history records (who acted is the record's
user), and the two trails that are their own history, approval actions and orders' status changes
(reports.audit.WITHOUT_HISTORY). Each kind shows only to who may open its list, and only for the customers, requests
and orders the user may see: one statement per kind, the newest few of each, whatever the data's size.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef
from django.urls import reverse

from accounts.models import User
from approvals.admin import target_url
from approvals.models import ApprovalAction
from approvals.selectors import approval_list_for
from billing_project.formatting import money
from ledger.models import Invoice, Payment
from orders.models import Order, OrderStatusHistory
from orders.selectors import order_list_for
from reports.kpis import Scope

SYSTEM = "System"


@dataclass(frozen=True)
class Activity:
    when: datetime
    who: str
    text: str
    url: str
    icon: str


def person(user: User | None) -> str:
    if user is None:
        return SYSTEM
    return user.full_name or user.email


def _invoices_issued(scope: Scope, limit: int) -> list[Activity]:
    """The version of each invoice that first carries its number: the moment it was issued, and by whom."""
    history = Invoice.history.model
    numbered_before = history.objects.filter(
        id=OuterRef("id"), number__isnull=False, history_id__lt=OuterRef("history_id")
    )
    records = (
        scope.filter(history.objects.filter(number__isnull=False))
        .exclude(Exists(numbered_before))
        .select_related("history_user", "customer")
        .order_by("-history_date", "-history_id")[:limit]
    )
    return [
        Activity(
            when=record.history_date,
            who=person(record.history_user),
            text=f"Invoice {record.number} issued to {record.customer.name}, {money(record.total, record.currency)}",
            url=reverse("admin:ledger_invoice_change", args=[record.id]),
            icon="receipt_long",
        )
        for record in records
    ]


def _payments(scope: Scope, limit: int) -> list[Activity]:
    history = Payment.history.model
    records = (
        scope.filter(history.objects.filter(history_type="+"))
        .select_related("history_user", "customer")
        .order_by("-history_date", "-history_id")[:limit]
    )
    return [
        Activity(
            when=record.history_date,
            who=person(record.history_user),
            text=f"Payment of {money(record.amount, record.currency)} from {record.customer.name}",
            url=reverse("admin:ledger_payment_change", args=[record.id]),
            icon="payments",
        )
        for record in records
    ]


DECIDED = {ApprovalAction.Kind.APPROVED: "Approved", ApprovalAction.Kind.REJECTED: "Rejected"}


def _approvals(user: User, limit: int) -> list[Activity]:
    actions = (
        ApprovalAction.objects.filter(kind__in=list(DECIDED), request__in=approval_list_for(user))
        .select_related("actor", "request")
        .order_by("-at", "-id")[:limit]
    )
    return [
        Activity(
            when=action.at,
            who=person(action.actor),
            text=f"{DECIDED[action.kind]}: {action.request.summary}",
            url=target_url(action.request),
            icon="check_circle" if action.kind == ApprovalAction.Kind.APPROVED else "cancel",
        )
        for action in actions
    ]


def _orders_completed(user: User, limit: int) -> list[Activity]:
    changes = (
        OrderStatusHistory.objects.filter(to_status=Order.Status.COMPLETED, order__in=order_list_for(user))
        .select_related("actor", "order__customer")
        .order_by("-at", "-id")[:limit]
    )
    return [
        Activity(
            when=change.at,
            who=person(change.actor),
            text=f"Order {change.order.number} completed for {change.order.customer.name}",
            url=reverse("admin:orders_order_change", args=[change.order_id]),
            icon="task_alt",
        )
        for change in changes
    ]


def recent_activity(user: User, scope: Scope, *, limit: int = 10) -> list[Activity]:
    """The newest `limit` events the user may see, newest first."""
    found: list[Activity] = []
    if user.has_perm("ledger.view_invoice"):
        found += _invoices_issued(scope, limit)
    if user.has_perm("ledger.view_payment"):
        found += _payments(scope, limit)
    if user.has_perm("approvals.view_approvalrequest"):
        found += _approvals(user, limit)
    if user.has_perm("orders.view_order"):
        found += _orders_completed(user, limit)
    return sorted(found, key=lambda activity: activity.when, reverse=True)[:limit]
