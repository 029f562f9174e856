"""Invoices as targets of `approvals` (DESIGN.md, "Approvals"): the rule per customer and the callbacks."""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import get_history_manager_for_model

from accounts.roles import Role
from approvals.registry import Rule, Step
from billing_project.errors import Conflict
from ledger.locks import lock_invoice, lock_invoices
from ledger.models import BillingConfig, Invoice
from ledger.selectors import invoice_list_for
from ledger.services.billing import billing_config_for


def invoice_approval_rule(invoice: Invoice, config: BillingConfig | None = None) -> Rule:
    config = config or billing_config_for(invoice.customer)
    rule_name = config.effective_approval_rule
    steps = []
    if rule_name == BillingConfig.ApprovalRule.CSM:
        csm_id = invoice.customer.csm_id
        # Without a CSM on the customer, any Customer Success user stands in.
        steps.append(
            Step("csm", "The customer's CSM", users=(csm_id,))
            if csm_id
            else Step("csm", "Customer Success (the customer has no CSM)", groups=(Role.CUSTOMER_SUCCESS.value,))
        )
    elif rule_name == BillingConfig.ApprovalRule.CS_OR_SALES:
        steps.append(
            Step("cs_or_sales", "Customer Success or Sales", groups=(Role.CUSTOMER_SUCCESS.value, Role.SALES.value))
        )
    threshold = config.sales_approval_above
    if threshold is not None and invoice.total > threshold:
        steps.append(Step("sales", f"Sales (total above {threshold} {invoice.currency})", groups=(Role.SALES.value,)))
    return Rule(
        name=rule_name,
        label=BillingConfig.ApprovalRule(rule_name).label,
        steps=tuple(steps),
        amount=invoice.total,
        details={"sales_approval_above": None if threshold is None else str(threshold)},
    )


class InvoiceApprovalHandler:
    """Callbacks `approvals` makes on an invoice; each runs inside the deciding transaction."""

    def rule(self, invoice: Invoice) -> Rule:
        return invoice_approval_rule(invoice)

    def summary(self, invoice: Invoice) -> str:
        kind = "Bill" if invoice.kind == Invoice.Kind.USAGE else "Manual invoice"
        customer = invoice.customer.client_id
        return f"{kind} {invoice.pk} for {customer}, {invoice.period:%Y-%m}: {invoice.total} {invoice.currency}"

    def lock(self, invoice: Invoice) -> Invoice:
        # The customer first, as every service locks it before its invoices (ledger/locks.py); approvals then
        # locks the request.
        return lock_invoice(invoice)

    def may_submit(self, invoice: Invoice, actor) -> bool:
        return actor is None or actor.has_perm("ledger.change_invoice")

    def check_submittable(self, invoice: Invoice) -> None:
        if invoice.status not in Invoice.EDITABLE:
            raise Conflict(
                f"Invoice {invoice} is {invoice.get_status_display().lower()}; only a draft or a rejected invoice "
                "is submitted for approval.",
                code="not_submittable",
            )

    def can_revert(self, invoice: Invoice) -> bool:
        return invoice.status in {Invoice.Status.PENDING_APPROVAL, Invoice.Status.APPROVED, Invoice.Status.REJECTED}

    def _status(self, invoice: Invoice, status: str, actor) -> None:
        invoice.status = status
        invoice._history_user = actor
        invoice.save(update_fields=["status", "updated_at"])

    def submitted(self, invoice: Invoice, actor) -> None:
        self._status(invoice, Invoice.Status.PENDING_APPROVAL, actor)

    # The bulk forms `approval_submit_many` uses: a fixed number of queries whatever the number of invoices.

    def lock_many(self, invoices: list[Invoice]) -> list[Invoice]:
        return lock_invoices(invoices)

    def rules_many(self, invoices: list[Invoice]) -> list[Rule]:
        configs = {
            config.customer_id: config
            for config in BillingConfig.objects.filter(
                customer_id__in={invoice.customer_id for invoice in invoices}
            ).select_related("customer")
        }
        return [
            invoice_approval_rule(invoice, configs.get(invoice.customer_id) or billing_config_for(invoice.customer))
            for invoice in invoices
        ]

    def submitted_many(self, invoices: list[Invoice], actor) -> None:
        """`submitted` for each invoice: one UPDATE, and one history row each naming `actor`, inserted at once."""
        now = timezone.now()
        changed = Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices], status__in=Invoice.EDITABLE)
        if changed.update(status=Invoice.Status.PENDING_APPROVAL, updated_at=now) != len(invoices):
            raise Conflict("An invoice of the batch is no longer a draft.", code="not_submittable")
        for invoice in invoices:
            invoice.status, invoice.updated_at, invoice._history_user = Invoice.Status.PENDING_APPROVAL, now, actor
        get_history_manager_for_model(Invoice).bulk_history_create(
            invoices, update=True, default_date=now, default_change_reason=None
        )

    def approved(self, invoice: Invoice, actor) -> None:
        from ledger.services.invoices import invoice_issue

        self._status(invoice, Invoice.Status.APPROVED, actor)
        if billing_config_for(invoice.customer).auto_issue:
            invoice_issue(actor=actor, invoice=invoice)

    def rejected(self, invoice: Invoice, actor) -> None:
        self._status(invoice, Invoice.Status.REJECTED, actor)

    def reopened(self, invoice: Invoice, actor) -> None:
        self._status(invoice, Invoice.Status.PENDING_APPROVAL, actor)

    def withdrawn(self, invoice: Invoice, actor) -> None:
        self._status(invoice, Invoice.Status.DRAFT, actor)

    def notify_addresses(self, invoice: Invoice, step: Step) -> list[str]:
        return self.notify_addresses_many([(invoice, step)])[0]

    def notify_addresses_many(self, pairs: list[tuple[Invoice, Step]]) -> list[list[str]]:
        """Active users only; at most two queries (the users named by steps, the members of their groups)."""
        User = get_user_model()
        named = {pk for _, step in pairs for pk in step.users}
        groups = {group for _, step in pairs if not step.users for group in step.groups}
        emails = dict(User.objects.filter(is_active=True, pk__in=named).values_list("pk", "email")) if named else {}
        members = defaultdict(dict)  # group name -> {user id: email}
        if groups:
            memberships = User.groups.through.objects.filter(group__name__in=groups, user__is_active=True)
            for user_id, email, group in memberships.values_list("user_id", "user__email", "group__name"):
                members[group][user_id] = email
        cs = Role.CUSTOMER_SUCCESS.value
        addresses = []
        for invoice, step in pairs:
            if step.users:
                addresses.append(sorted(emails[pk] for pk in step.users if pk in emails))
                continue
            found = {email for group in step.groups if group != cs for email in members[group].values()}
            if cs in step.groups:
                # Customer Success users see only their own customers: when there is a CSM, only the CSM is told.
                csm_id = invoice.customer.csm_id
                if not csm_id:
                    found.update(members[cs].values())
                elif csm_id in members[cs]:
                    found.add(members[cs][csm_id])
            addresses.append(sorted(found))
        return addresses

    def scope_label(self, invoice: Invoice) -> str:
        return invoice.customer.client_id

    def visible_to(self, user) -> QuerySet:
        # The invoices' own scoping: a CSM sees their customers' (whatever the rule), Finance and Sales all.
        return invoice_list_for(user).order_by().values("pk")

    def admin_url(self, invoice_id: int) -> str:
        return reverse("admin:ledger_invoice_change", args=[invoice_id])
