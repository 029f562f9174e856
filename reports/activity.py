"""The dashboard's recent activity: invoices issued, payments recorded, bills approved or rejected, orders completed.

Read from the audit trail: the invoices' and payments' django-simple-history records (who acted is the record's
user), and the two trails that are their own history, approval actions and orders' status changes
(reports.audit.WITHOUT_HISTORY). Each kind shows only to who may open its list, and only for the customers, requests
and orders the user may see: one statement per kind, the newest few of each, whatever the data's size.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet
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


def _newest(rows: QuerySet, limit: int, *, at: str, by: str, text, url, icon) -> list[Activity]:
    """The newest `limit` rows as activities: `at` names the moment's field, `by` the acting user's; `text`, `url`
    and `icon` make the rest from a row (`icon` may be one for all)."""
    records = rows.select_related(by).order_by(f"-{at}", "-pk")[:limit]
    return [
        Activity(
            when=getattr(record, at),
            who=person(getattr(record, by)),
            text=text(record),
            url=url(record),
            icon=icon(record) if callable(icon) else icon,
        )
        for record in records
    ]


def _history(records: QuerySet, limit: int, *, text, url_name: str, icon: str) -> list[Activity]:
    """The newest of a model's django-simple-history records (scoped by customer), linked to the object's page."""
    return _newest(
        records.select_related("customer"),
        limit,
        at="history_date",
        by="history_user",
        text=text,
        url=lambda record: reverse(url_name, args=[record.id]),
        icon=icon,
    )


def _invoices_issued(scope: Scope, limit: int) -> list[Activity]:
    """The version of each invoice that first carries its number: the moment it was issued, and by whom."""
    history = Invoice.history.model
    numbered_before = history.objects.filter(
        id=OuterRef("id"), number__isnull=False, history_id__lt=OuterRef("history_id")
    )
    return _history(
        scope.filter(history.objects.filter(number__isnull=False)).exclude(Exists(numbered_before)),
        limit,
        text=lambda record: (
            f"Invoice {record.number} issued to {record.customer.name}, {money(record.total, record.currency)}"
        ),
        url_name="admin:ledger_invoice_change",
        icon="receipt_long",
    )


def _payments(scope: Scope, limit: int) -> list[Activity]:
    return _history(
        scope.filter(Payment.history.model.objects.filter(history_type="+")),
        limit,
        text=lambda record: f"Payment of {money(record.amount, record.currency)} from {record.customer.name}",
        url_name="admin:ledger_payment_change",
        icon="payments",
    )


DECIDED = {ApprovalAction.Kind.APPROVED: "Approved", ApprovalAction.Kind.REJECTED: "Rejected"}


def _approvals(user: User, limit: int) -> list[Activity]:
    return _newest(
        ApprovalAction.objects.filter(kind__in=list(DECIDED), request__in=approval_list_for(user)).select_related(
            "request"
        ),
        limit,
        at="at",
        by="actor",
        text=lambda action: f"{DECIDED[action.kind]}: {action.request.summary}",
        url=lambda action: target_url(action.request),
        icon=lambda action: "check_circle" if action.kind == ApprovalAction.Kind.APPROVED else "cancel",
    )


def _orders_completed(user: User, limit: int) -> list[Activity]:
    return _newest(
        OrderStatusHistory.objects.filter(
            to_status=Order.Status.COMPLETED, order__in=order_list_for(user)
        ).select_related("order__customer"),
        limit,
        at="at",
        by="actor",
        text=lambda change: f"Order {change.order.number} completed for {change.order.customer.name}",
        url=lambda change: reverse("admin:orders_order_change", args=[change.order_id]),
        icon="task_alt",
    )


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
