"""Invoices as targets of `approvals` (DESIGN.md, "Approvals"): the rule per customer and the callbacks."""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.urls import reverse

from accounts.roles import Role
from approvals.registry import Rule, Step
from billing_project.errors import Conflict
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
        return Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)

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
        users = get_user_model().objects.filter(is_active=True)
        if step.users:
            return list(users.filter(pk__in=step.users).values_list("email", flat=True))
        cs = Role.CUSTOMER_SUCCESS.value
        others = [group for group in step.groups if group != cs]
        addresses = set(users.filter(groups__name__in=others).values_list("email", flat=True))
        if cs in step.groups:
            # Customer Success users see only their own customers: when there is a CSM, only the CSM is told.
            csm_users = users.filter(pk=invoice.customer.csm_id) if invoice.customer.csm_id else users
            addresses |= set(csm_users.filter(groups__name=cs).values_list("email", flat=True))
        return sorted(addresses)

    def scope_label(self, invoice: Invoice) -> str:
        return invoice.customer.client_id

    def visible_to(self, user) -> QuerySet:
        # The invoices' own scoping: a CSM sees their customers' (whatever the rule), Finance and Sales all.
        return invoice_list_for(user).order_by().values("pk")

    def admin_url(self, invoice_id: int) -> str:
        return reverse("admin:ledger_invoice_change", args=[invoice_id])
