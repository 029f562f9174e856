"""Staff roles are Django groups; their permission sets are kept here, in code (docs/DESIGN.md, "Roles").

A data migration creates the groups; after every migrate the sets below are applied, so a
permission added by a later app reaches its roles without a hand-made change.
"""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "Admin"
    FINANCE = "Finance"
    CUSTOMER_SUCCESS = "Customer Success"
    SALES = "Sales"
    OPERATIONS = "Operations"


def _crud(app_label: str, model: str, *actions: str) -> list[str]:
    return [f"{app_label}.{action}_{model}" for action in actions]


# Reading orders and what hangs off them; which orders is orders.selectors.order_list_for's answer.
ORDER_READER = [
    *_crud("orders", "order", "view"),
    *_crud("orders", "orderdocument", "view"),
    *_crud("orders", "orderstatushistory", "view"),
    *_crud("orders", "task", "view"),
    *_crud("orders", "comment", "view"),
    *_crud("orders", "ordertype", "view"),
    *_crud("orders", "documenttype", "view"),
    *_crud("orders", "company", "view"),
    *_crud("orders", "registrar", "view"),
]

# Partners' revenue-share agreements, for the roles that see partners and money (not Operations, who sees no money
# beyond an order's fee). Partners' bank details are Finance's and Admin's only (catalog.view_partner_bank_details).
AGREEMENT_READER = _crud("orders", "revenueshareagreement", "view")

# The finance reports (reports.finance): receivables and registers per customer, then revenue and tax.
CUSTOMER_REPORTS = ["reports.view_aged_receivables", "reports.view_invoice_register", "reports.view_payments_register"]
FINANCE_REPORTS = [*CUSTOMER_REPORTS, "reports.view_revenue_by_service", "reports.view_tax_report"]

# Admin holds every permission there is; the others hold exactly these.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.FINANCE: [
        *_crud("catalog", "customer", "view", "add", "change"),
        *_crud("catalog", "partner", "view", "add", "change"),
        "catalog.view_partner_bank_details",
        *_crud("orders", "revenueshareagreement", "view", "add", "change"),
        *_crud("catalog", "service", "view", "add", "change"),
        *_crud("catalog", "priceagreement", "view", "add", "change"),
        # An agreement's tier table is replaced whole with the agreement (catalog.services.price_agreement_update).
        *_crud("catalog", "pricetier", "view", "add", "change", "delete"),
        *_crud("catalog", "minimumcommitment", "view", "add", "change"),
        *_crud("catalog", "portalmembership", "view"),
        *_crud("accounts", "user", "view"),
        *_crud("usage", "upload", "view", "add"),
        *_crud("usage", "usagerecord", "view", "add"),
        *_crud("usage", "monthlysummary", "view"),
        *_crud("usage", "closedperiod", "view"),
        *_crud("ledger", "account", "view"),
        *_crud("ledger", "transaction", "view"),
        *_crud("ledger", "leg", "view"),
        *_crud("ledger", "billingconfig", "view", "add", "change"),
        *_crud("ledger", "invoice", "view", "add", "change"),
        *_crud("ledger", "invoiceitem", "view", "add", "change", "delete"),
        *_crud("ledger", "creditnote", "view", "add"),
        *_crud("ledger", "payment", "view", "add"),
        # Moving a payment's money to another invoice adds allocations (ledger.services.payments.payment_reallocate).
        *_crud("ledger", "allocation", "add"),
        *_crud("ledger", "refund", "view", "add"),
        *_crud("ledger", "adjustment", "view", "add"),
        *_crud("ledger", "billingrun", "view", "add"),
        *_crud("ledger", "reminderlog", "view"),
        *_crud("ledger", "reconciliationreport", "view", "add"),
        # Finance submits bills (ledger.change_invoice) and follows them; it never approves them.
        *_crud("approvals", "approvalrequest", "view"),
        # The audit log page and its export (reports.audit_views); Admin holds it like every permission.
        "reports.view_audit_log",
        # The partner revenue report (reports.revenue): Finance and Sales; not Operations, who sees no money beyond
        # the fee, nor Customer Success.
        "reports.view_partner_revenue",
        *FINANCE_REPORTS,
        *ORDER_READER,
        "orders.view_order_money",
        # Records an order's expenses and corrects them by reversal (orders.services.expenses); never edits them.
        *_crud("orders", "expense", "view", "add"),
        # Calculates partners' settlements again and approves those someone else's action calculated (maker-checker
        # in approvals: the settlement's approval request, and its queue).
        *_crud("orders", "settlement", "view", "add"),
        *_crud("approvals", "awaitingapproval", "view"),
        # Creates payout batches and approves others' (maker-checker, orders.services.payouts); no one else sees them.
        *_crud("orders", "payoutbatch", "view", "add", "change"),
    ],
    Role.CUSTOMER_SUCCESS: [
        *_crud("catalog", "customer", "view", "change"),
        *_crud("catalog", "partner", "view"),
        *AGREEMENT_READER,
        *_crud("catalog", "service", "view"),
        *_crud("catalog", "priceagreement", "view"),
        *_crud("catalog", "pricetier", "view"),
        *_crud("catalog", "minimumcommitment", "view"),
        *_crud("usage", "usagerecord", "view"),
        *_crud("usage", "monthlysummary", "view"),
        *_crud("ledger", "billingconfig", "view"),
        *_crud("ledger", "invoice", "view"),
        *_crud("ledger", "invoiceitem", "view"),
        *_crud("ledger", "creditnote", "view"),
        *_crud("ledger", "payment", "view"),
        *_crud("ledger", "transaction", "view"),
        # Approving and rejecting are checked by approvals.services (the rule's steps, maker-checker).
        *_crud("approvals", "approvalrequest", "view"),
        *_crud("approvals", "awaitingapproval", "view"),
        # Their customers' orders (orders.selectors): they read them and comment on them.
        *ORDER_READER,
        *_crud("orders", "comment", "add"),
        # Of their own customers only (reports.finance scopes by catalog.selectors.customer_list_for).
        *CUSTOMER_REPORTS,
    ],
    Role.SALES: [
        *_crud("catalog", "customer", "view", "change"),
        *_crud("catalog", "partner", "view"),
        *AGREEMENT_READER,
        *_crud("catalog", "service", "view"),
        *_crud("catalog", "priceagreement", "view"),
        *_crud("catalog", "pricetier", "view"),
        *_crud("catalog", "minimumcommitment", "view"),
        *_crud("usage", "usagerecord", "view"),
        *_crud("usage", "monthlysummary", "view"),
        *_crud("ledger", "billingconfig", "view"),
        *_crud("ledger", "invoice", "view"),
        *_crud("ledger", "invoiceitem", "view"),
        *_crud("ledger", "creditnote", "view"),
        *_crud("ledger", "payment", "view"),
        *_crud("ledger", "transaction", "view"),
        # Approving and rejecting are checked by approvals.services (the rule's steps, maker-checker).
        *_crud("approvals", "approvalrequest", "view"),
        *_crud("approvals", "awaitingapproval", "view"),
        *ORDER_READER,
        *_crud("orders", "order", "add"),
        "orders.view_order_money",
        "reports.view_partner_revenue",
        *CUSTOMER_REPORTS,
        "reports.view_revenue_by_service",
    ],
    # Runs orders, their documents, tasks and comments; sees no money beyond an order's fee.
    Role.OPERATIONS: [
        *_crud("catalog", "customer", "view"),
        *_crud("catalog", "partner", "view"),
        *_crud("catalog", "service", "view"),
        *ORDER_READER,
        *_crud("orders", "order", "add", "change"),
        *_crud("orders", "orderdocument", "add", "change"),
        *_crud("orders", "task", "add", "change"),
        *_crud("orders", "comment", "add"),
        *_crud("orders", "company", "add", "change"),
    ],
}


def sync_role_permissions(*, group_model, permission_model) -> None:
    """Give each role group exactly its permission set; creates missing groups."""
    all_permissions = permission_model.objects.select_related("content_type")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in all_permissions}
    for role in Role:
        group, _ = group_model.objects.get_or_create(name=role.value)
        if role == Role.ADMIN:
            group.permissions.set(by_name.values())
            continue
        # A name not yet known (its app not migrated yet) is picked up on a later migrate.
        group.permissions.set([by_name[name] for name in ROLE_PERMISSIONS[role] if name in by_name])


def sync_roles_after_migrate(sender, **kwargs) -> None:
    from django.apps import apps as global_apps
    from django.contrib.auth.models import Group, Permission

    # post_migrate is sent once per app with models, after that app's permissions are made: act on the last.
    apps_with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if sender.label != apps_with_models[-1].label:
        return
    sync_role_permissions(group_model=Group, permission_model=Permission)
