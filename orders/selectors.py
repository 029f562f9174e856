"""Who may see which orders, and the reads the order pages, API and portal share (DESIGN.md, "Roles").

`order_list_for` is the one answer to "which orders may this user see": role, CSM, deputy CSM (a grant on
the customer), a grant on the order itself (django-guardian) and portal membership, combined in one
queryset. Admin, API, portal, downloads and exports all start from it, so someone else's order is a 404
everywhere.
"""

from datetime import date

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet, TextChoices

from accounts.models import User
from accounts.roles import Role
from billing_project import lookups  # noqa: F401  (registers __in_array)
from billing_project.billing_time import billing_today
from catalog.models import Partner
from catalog.selectors import customer_list_for, deputy_grants, portal_customer_id
from ledger.models import Allocation, Invoice
from orders.models import (
    Comment,
    Company,
    Expense,
    Order,
    OrderDocument,
    OrderDocumentFile,
    OrderStatusHistory,
    OrderType,
    OrderUserObjectPermission,
    RevenueShareAgreement,
    Settlement,
    Task,
)

ROLES_SEEING_ALL_ORDERS = {Role.ADMIN, Role.FINANCE, Role.SALES, Role.OPERATIONS}


def order_grants(user: User) -> QuerySet[OrderUserObjectPermission]:
    """The grants that share an order with `user`, correlated to the outer query's order (`pk`)."""
    return OrderUserObjectPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission__codename="view_order"
    )


class _Access(TextChoices):
    NONE = "none"
    PORTAL = "portal"  # their customer's orders
    ALL = "all"
    CUSTOMER_SUCCESS = "customer_success"  # their customers' (CSM or deputy) and those shared with them
    SHARED = "shared"  # only those shared with them


def _access(user: User) -> tuple[_Access, int | None]:
    """Which orders `user` sees, and the portal user's customer id."""
    if not user.is_authenticated or not user.is_active:
        return _Access.NONE, None
    customer_id = portal_customer_id(user)
    if customer_id is not None:
        return _Access.PORTAL, customer_id
    if user.is_superuser:
        return _Access.ALL, None
    if not user.is_staff:
        return _Access.NONE, None
    if user.shared_only:
        return _Access.SHARED, None
    roles = set(user.groups.values_list("name", flat=True))
    if roles & ROLES_SEEING_ALL_ORDERS:
        return _Access.ALL, None
    if Role.CUSTOMER_SUCCESS in roles:
        return _Access.CUSTOMER_SUCCESS, None
    return _Access.SHARED, None


def order_list_for(user: User) -> QuerySet[Order]:
    return _orders_seen(user, *_access(user))


def _orders_seen(user: User, access: _Access, customer_id: int | None) -> QuerySet[Order]:
    orders = Order.objects.all()
    if access == _Access.NONE:
        return orders.none()
    if access == _Access.PORTAL:
        return orders.filter(customer_id=customer_id)
    if access == _Access.ALL:
        return orders
    shared = Q(Exists(order_grants(user)))
    if access == _Access.CUSTOMER_SUCCESS:
        deputy = Exists(deputy_grants(user, "customer_id"))
        return orders.filter(Q(customer__csm=user) | Q(deputy) | shared)
    return orders.filter(shared)


def order_list_parts_for(user: User) -> list[QuerySet[Order]]:
    """The orders of order_list_for(user) as disjoint parts that each read well alone, for sums and counts over
    them: a Customer Success user's are the orders of their customers (by customer id, one array: an index scan)
    and the orders shared with them of other customers. As one OR, PostgreSQL misjudges how many orders the
    grants add and reads every order through an index (110 ms at 100,000 orders, against 20 ms for the parts)."""
    access, customer_id = _access(user)
    if access != _Access.CUSTOMER_SUCCESS:
        return [_orders_seen(user, access, customer_id)]
    customer_ids = list(customer_list_for(user).order_by().values_list("pk", flat=True))
    return [
        Order.objects.filter(customer_id__in_array=customer_ids),
        Order.objects.filter(Exists(order_grants(user))).exclude(customer_id__in_array=customer_ids),
    ]


def order_may_see_money(user: User) -> bool:
    """Whether `user` sees an order's money beyond its fee (base charge; later its invoice and expenses)."""
    return portal_customer_id(user) is not None or user.has_perm("orders.view_order_money")


def order_page(user: User, pk: int) -> Order | None:
    """One order the user may see, with what its page shows, or None."""
    return (
        order_list_for(user)
        .select_related("customer", "partner", "order_type", "company", "assignee", "created_by", "invoice")
        .prefetch_related(
            Prefetch(
                "documents",
                queryset=OrderDocument.objects.select_related("document_type", "current_file", "reviewed_by"),
            ),
            Prefetch("status_history", queryset=OrderStatusHistory.objects.select_related("actor")),
            Prefetch("tasks", queryset=Task.objects.select_related("assignee", "done_by")),
            Prefetch("comments", queryset=Comment.objects.select_related("author").prefetch_related("attachments")),
        )
        .filter(pk=pk)
        .first()
    )


def document_file_for(user: User, file_pk: int) -> OrderDocumentFile | None:
    """An uploaded document file, if its order is one the user may see."""
    return (
        OrderDocumentFile.objects.select_related("document__order", "document__document_type")
        .filter(pk=file_pk, document__order__in=order_list_for(user))
        .first()
    )


def document_list_for(user: User) -> QuerySet[OrderDocument]:
    return OrderDocument.objects.filter(order__in=order_list_for(user))


def task_list_for(user: User) -> QuerySet[Task]:
    return Task.objects.filter(order__in=order_list_for(user))


def open_tasks_for(user: User) -> QuerySet[Task]:
    """The user's tasks that are not done, on orders still open, overdue first."""
    return (
        task_list_for(user)
        .filter(assignee=user, done_at__isnull=True, order__status__in=Order.OPEN_STATUSES)
        .select_related("order", "order__customer")
        .order_by("due_date", "pk")
    )


def tasks_due_for_digest(day: date | None = None) -> QuerySet[Task]:
    """Open tasks due on `day` or before, on open orders, with an active assignee: what the daily digest lists."""
    day = day or billing_today()
    return (
        Task.objects.filter(
            done_at__isnull=True,
            due_date__lte=day,
            assignee__is_active=True,
            order__status__in=Order.OPEN_STATUSES,
        )
        .select_related("assignee", "order", "order__customer")
        .order_by("assignee_id", "due_date", "pk")
    )


def company_list_for(user: User) -> QuerySet[Company]:
    """Companies of the customers whose orders the user may see (a portal user: their own customer's)."""
    customer_id = portal_customer_id(user)
    if customer_id is not None:
        return Company.objects.filter(customer_id=customer_id)
    if user.is_superuser or (user.is_staff and not user.shared_only):
        return Company.objects.filter(customer__in=customer_list_for(user))
    return Company.objects.filter(orders__in=order_list_for(user)).distinct()


def agreement_in_force(partner: Partner, order_type: OrderType, day: date) -> RevenueShareAgreement | None:
    """The partner's revenue-share agreement for an order of `order_type` on `day`: the one for that order type if
    there is one, else the partner's general one; None when neither is in force."""
    return (
        RevenueShareAgreement.objects.in_force_on(day)
        .filter(Q(order_type=order_type) | Q(order_type__isnull=True), partner=partner)
        .select_related("partner", "order_type")
        .order_by(F("order_type").asc(nulls_last=True))
        .first()
    )


def expense_may_see(user: User) -> bool:
    """Expenses are money beyond an order's fee, and the business's own costs: Finance and Admin, never the portal."""
    return (
        user.is_authenticated
        and portal_customer_id(user) is None
        and user.has_perm("orders.view_expense")
        and user.has_perm("orders.view_order_money")
    )


def expense_list_for(user: User) -> QuerySet[Expense]:
    """The expenses of the orders the user may see, for those who see expenses at all."""
    if not expense_may_see(user):
        return Expense.objects.none()
    return Expense.objects.filter(order__in=order_list_for(user))


def order_expenses(user: User, order: Order) -> list[Expense]:
    """The order's expenses, oldest first, each with what its row shows (and whether it is reversed)."""
    return list(
        expense_list_for(user).filter(order=order).select_related("created_by", "reversed_by").order_by("date", "pk")
    )


class PaymentStatus(TextChoices):
    """An order's payment status, read from its invoice (DESIGN.md, "Money of an order"); never typed in."""

    UNBILLED = "unbilled", "Unbilled"
    UNPAID = "unpaid", "Unpaid"
    PARTLY_PAID = "partly_paid", "Partly paid"
    PAID = "paid", "Paid"
    REFUNDED = "refunded", "Refunded"


NOT_YET_BILLED = {
    Invoice.Status.DRAFT,
    Invoice.Status.PENDING_APPROVAL,
    Invoice.Status.APPROVED,
    Invoice.Status.REJECTED,
    Invoice.Status.CANCELLED,
}


def order_payment_status(order: Order) -> PaymentStatus:
    """unbilled: no invoice, or one not issued (draft, in approval, cancelled), or issued and voided before
    anything was paid on it; unpaid: issued and nothing paid; partly paid: something paid and something still
    owed; paid: nothing owed and something paid (a partial credit note may have made what is owed smaller);
    refunded: voided by a full credit note after something was paid: what was paid went back to the customer
    (as credit, until a refund pays it out)."""
    invoice = order.invoice
    if invoice is None or invoice.status in NOT_YET_BILLED:
        return PaymentStatus.UNBILLED
    if invoice.status == Invoice.Status.VOID:
        return PaymentStatus.REFUNDED if invoice.amount_paid > 0 else PaymentStatus.UNBILLED
    if invoice.amount_paid == 0:
        return PaymentStatus.UNPAID
    if invoice.outstanding > 0:
        return PaymentStatus.PARTLY_PAID
    return PaymentStatus.PAID


def order_may_see_payment_status(user: User) -> bool:
    """Those who see an order's money (Finance, Sales, the portal) and those who read invoices (Customer Success,
    for their customers' orders); not Operations."""
    return order_may_see_money(user) or user.has_perm("ledger.view_invoice")


def order_invoice_payments(invoice: Invoice) -> list[Allocation]:
    """The money set against the order's invoice, oldest first: payments (and credit moved in from elsewhere),
    with the payment each came from."""
    return list(invoice.allocations.select_related("payment", "credit_note").order_by("created_at", "pk"))


# --- Settlements (DESIGN.md, "Settlements") -----------------------------------------------------------------------


class SettlementStatus(TextChoices):
    """An order's settlement status (DESIGN.md, "Money of an order"); derived from its settlements, never typed in."""

    NONE = "none", "None"
    CALCULATED = "calculated", "Calculated"
    APPROVED = "approved", "Approved"
    PAID = "paid", "Paid"


# Least advanced first: an order is as far as its least advanced live settlement.
SETTLEMENT_PROGRESS = [SettlementStatus.CALCULATED, SettlementStatus.APPROVED, SettlementStatus.PAID]


def settlement_may_see(user: User) -> bool:
    """Settlements are partners' money: Finance and Admin (orders.view_settlement), never the portal."""
    return (
        user.is_authenticated
        and user.is_active
        and portal_customer_id(user) is None
        and user.has_perm("orders.view_settlement")
    )


def settlement_list_for(user: User) -> QuerySet[Settlement]:
    """The settlements of the orders the user may see, for those who see settlements at all; none for the rest."""
    if not settlement_may_see(user):
        return Settlement.objects.none()
    return Settlement.objects.filter(order__in=order_list_for(user))


def settlement_status_of(settlements) -> SettlementStatus:
    """The order's settlement status from its settlements (void ones are left out): none without a live one, else
    the least advanced live one's, so an approved order with a correction still to approve is `calculated`."""
    live = {settlement.status for settlement in settlements if settlement.status in Settlement.LIVE_STATUSES}
    return next((status for status in SETTLEMENT_PROGRESS if status in live), SettlementStatus.NONE)


def live_settlements_prefetch(to_attr: str = "live_settlements") -> Prefetch:
    """The orders' live settlements, only what their status needs, in one query for a page of orders."""
    return Prefetch(
        "settlements",
        queryset=Settlement.objects.filter(status__in=Settlement.LIVE_STATUSES).only("pk", "order_id", "status"),
        to_attr=to_attr,
    )


def order_settlements(user: User, order: Order) -> list[Settlement]:
    """The order's settlements, first one first, each with what the order page shows (void ones too). `order` is
    one the user may see (order_page found it); none for those who see no settlements."""
    if not settlement_may_see(user):
        return []
    return list(
        Settlement.objects.filter(order=order)
        .select_related("agreement", "agreement__order_type", "calculated_by", "approved_by", "payout")
        .order_by("sequence")
    )


def settlement_page(user: User, pk) -> Settlement | None:
    """One settlement the user may see, with what its page shows, or None."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return (
        settlement_list_for(user)
        .select_related(
            "order",
            "order__customer",
            "order__order_type",
            "partner",
            "agreement",
            "agreement__order_type",
            "calculated_by",
            "approved_by",
            "payout",
        )
        .filter(pk=pk)
        .first()
    )
