"""Invoices as targets of `approvals` (docs/DESIGN.md, "Approvals"): the rule per customer and the callbacks."""

import copy
from collections import defaultdict
from collections.abc import Collection, Iterable

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import get_history_manager_for_model

from accounts.roles import ROLE_PERMISSIONS, Role
from approvals.registry import Rule, Step
from billing_project.errors import Conflict
from billing_project.formatting import money
from catalog.selectors import ROLES_SEEING_ALL_CUSTOMERS, customer_deputy_ids
from ledger.locks import lock_invoice, lock_invoices
from ledger.models import BillingConfig, Invoice, csm_problem
from ledger.selectors import invoice_list_for
from ledger.services.billing import billing_config_for

CUSTOMER_SUCCESS = Role.CUSTOMER_SUCCESS.value
SALES = Role.SALES.value
# Roles whose members see every customer's invoices (customers scoped by catalog.selectors, invoices granted by
# accounts.roles), so may decide any bill a step opens to them; a Customer Success user sees their own customers'.
INVOICE_READERS = frozenset(
    role.value
    for role in ROLES_SEEING_ALL_CUSTOMERS
    if role == Role.ADMIN or "ledger.view_invoice" in ROLE_PERMISSIONS[role]
)


def deputies_of(invoices: Iterable[Invoice]) -> dict[int, frozenset[int]]:
    """The deputy CSMs of the invoices' customers (active, in Customer Success), by customer id, in one query.

    Each customer object keeps what was read: a submission reads them for the rule, then for who may decide and
    who is emailed, all while it holds the customers' locks, which adding or removing a deputy takes as well."""
    invoices = list(invoices)
    missing = {invoice.customer_id for invoice in invoices if not hasattr(invoice.customer, "deputy_csm_ids")}
    found = customer_deputy_ids(missing) if missing else {}
    for invoice in invoices:
        if not hasattr(invoice.customer, "deputy_csm_ids"):
            invoice.customer.deputy_csm_ids = frozenset(found.get(invoice.customer_id, ()))
    return {invoice.customer_id: invoice.customer.deputy_csm_ids for invoice in invoices}


def invoice_approval_rule(
    invoice: Invoice, config: BillingConfig | None = None, *, deputy_ids: Collection[int] = ()
) -> Rule:
    """The customer's rule for `invoice`. The CSM's step is open to the CSM and to `deputy_ids`, the customer's
    deputy CSMs (`deputies_of`): the handler passes them when it freezes a rule; whoever only asks whether a
    bill needs approval may leave them out, the steps are the same."""
    config = config or billing_config_for(invoice.customer)
    rule_name = config.effective_approval_rule
    steps = []
    if rule_name == BillingConfig.ApprovalRule.CSM:
        # Without a CSM nobody can give it, deputies or not (a customer that requires its CSM's approval has a
        # CSM): submitting is refused, saying so (InvoiceApprovalHandler.unsatisfiable).
        csm_id = invoice.customer.csm_id
        users = (csm_id, *sorted(set(deputy_ids) - {csm_id})) if csm_id else ()
        steps.append(Step("csm", "The customer's CSM", users=users))
    elif rule_name == BillingConfig.ApprovalRule.CS_OR_SALES:
        steps.append(
            Step("cs_or_sales", "Customer Success or Sales", groups=(Role.CUSTOMER_SUCCESS.value, Role.SALES.value))
        )
    threshold = config.sales_approval_above
    if threshold is not None and invoice.total > threshold:
        steps.append(
            Step("sales", f"Sales (total above {money(threshold, invoice.currency)})", groups=(Role.SALES.value,))
        )
    return Rule(
        name=rule_name,
        label=BillingConfig.ApprovalRule(rule_name).label,
        steps=tuple(steps),
        amount=invoice.total,
        details={"sales_approval_above": None if threshold is None else str(threshold)},
    )


class _Deciders:
    """Who could decide the bills of a batch: the users the steps name, the customers' CSMs and deputy CSMs and the
    active staff members of the groups the steps name, read in four queries whatever the batch (three when the
    deputies were read already, see `deputies_of`)."""

    def __init__(self, invoices: list[Invoice], steps: list[Step]) -> None:
        User = get_user_model()
        self.deputies = deputies_of(invoices)
        ids = {pk for step in steps for pk in step.users}
        ids |= {invoice.customer.csm_id for invoice in invoices if invoice.customer.csm_id}
        ids |= {pk for deputies in self.deputies.values() for pk in deputies}
        self.people = {user.pk: user for user in User.objects.filter(pk__in=ids).prefetch_related("groups")}
        self.groups_of = {pk: {group.name for group in user.groups.all()} for pk, user in self.people.items()}
        self.members = defaultdict(set)  # group name -> ids of its active staff members
        groups = {group for step in steps for group in step.groups}
        if groups:
            memberships = User.groups.through.objects.filter(
                group__name__in=groups, user__is_active=True, user__is_staff=True
            )
            for user_id, group in memberships.values_list("user_id", "group__name"):
                self.members[group].add(user_id)

    def sees(self, user_id: int, invoice: Invoice) -> bool:
        """As ledger.selectors.invoice_list_for decides, from what was read."""
        user = self.people.get(user_id)
        if user is None or not user.is_active:
            return False
        if user.is_superuser:
            return True
        groups = self.groups_of[user_id]
        if not user.is_staff:
            return False
        return bool(groups & INVOICE_READERS) or (
            CUSTOMER_SUCCESS in groups and user_id in self.csm_and_deputies(invoice)
        )

    def csm_and_deputies(self, invoice: Invoice) -> set[int]:
        """The customer's CSM (if any) and deputy CSMs: the Customer Success users who see its bills."""
        csm_id = invoice.customer.csm_id
        return set(self.deputies[invoice.customer_id]) | ({csm_id} if csm_id else set())

    def able_to_give_csm_step(self, invoice: Invoice) -> set[int]:
        """Who may give the CSM's step of a bill of the customer now, whomever a request names: its CSM or a deputy,
        active, in Customer Success and able to see its bills."""
        return {
            pk
            for pk in self.csm_and_deputies(invoice)
            if pk in self.people and self.sees(pk, invoice) and CUSTOMER_SUCCESS in self.groups_of[pk]
        }

    def of(self, step: Step, invoice: Invoice, submitter_id: int | None) -> set[int]:
        """Who may give `step` on `invoice`: open to them, active, able to see it, and not its submitter; the CSM's
        step, only while they are its CSM or a deputy, in Customer Success."""
        if step.name == "csm":
            deciders = set(step.users) & self.able_to_give_csm_step(invoice)
        else:
            deciders = {pk for pk in step.users if self.sees(pk, invoice)}
        for group in step.groups:
            if group in INVOICE_READERS:
                deciders |= self.members[group]
            elif group == CUSTOMER_SUCCESS:
                deciders |= self.csm_and_deputies(invoice) & self.members[group]
        return deciders - {submitter_id}

    def why_nobody(self, invoice: Invoice, step: Step, submitter_id: int | None) -> str:
        """What to fix so that someone can give `step`, for whoever reads the refusal (Finance, an Admin)."""
        customer = invoice.customer
        client_id = customer.client_id
        others = " other than who submitted it" if submitter_id in self.members[SALES] else ""
        if step.name == "csm":
            csm = self.people.get(customer.csm_id)
            in_customer_success = csm is not None and CUSTOMER_SUCCESS in self.groups_of[csm.pk]
            problem = csm_problem(customer, csm, in_customer_success=in_customer_success)
            able = self.able_to_give_csm_step(invoice) if csm is not None else set()
            if problem and not able:
                fix = "one" if csm is None else "another CSM"
                return f"{problem}: set {fix} on the customer or change its approval rule."
            named = able & set(step.users)
            if able == {csm.pk} and not named:
                return f"{client_id}'s CSM is now {csm}, who is not the approver it was submitted to: re-route it."
            if able and not named:
                names = ", ".join(sorted(str(self.people[pk]) for pk in able))
                return (
                    f"{client_id}'s bills are now approved by its CSM or deputy CSMs ({names}), none of whom it was "
                    "submitted to: re-route it."
                )
            if named and named == {submitter_id}:
                who = "CSM" if submitter_id == csm.pk else "deputy CSM"
                return (
                    f"{client_id}'s {who}, {self.people[submitter_id]}, submitted it and cannot approve it too: "
                    "let someone else submit it, or change its approval rule."
                )
        if step.name == "cs_or_sales":
            return (
                f"Nobody can approve {client_id}'s bills as Customer Success or Sales: it has no CSM who can, and "
                f"nobody{others} is active in Sales. Set its CSM on the customer, give someone the Sales role, or "
                "change its approval rule."
            )
        if step.name == "sales":
            return (
                f"{client_id}'s bill of {money(invoice.total, invoice.currency)} is above its Sales approval "
                f"threshold, and nobody{others} is active in Sales to approve it: give someone the Sales role, or "
                "change the threshold in its billing configuration."
            )
        return (
            f"Nobody can give the approval “{step.label}” of {client_id}'s bill: whoever it names is inactive, "
            f"cannot see {client_id}'s invoices, or submitted it. Re-route it."
        )


class InvoiceApprovalHandler:
    """Callbacks `approvals` makes on an invoice; each runs inside the deciding transaction."""

    def rule(self, invoice: Invoice) -> Rule:
        return invoice_approval_rule(invoice, deputy_ids=deputies_of([invoice])[invoice.customer_id])

    def summary(self, invoice: Invoice) -> str:
        return f"{invoice}: {money(invoice.total, invoice.currency)}"

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
        if invoice.kind == Invoice.Kind.USAGE and invoice.total == 0:
            from ledger.services.invoices import refuse_nothing_to_bill

            refuse_nothing_to_bill(invoice, billing_config_for(invoice.customer))

    def unsatisfiable(self, invoice: Invoice, rule: Rule, submitter) -> str | None:
        return self.unsatisfiable_many([(invoice, rule)], submitter)[0]

    def unsatisfiable_many(self, pairs: list[tuple[Invoice, Rule]], submitter) -> list[str | None]:
        if not pairs:
            return []
        deciders = _Deciders([invoice for invoice, _ in pairs], [step for _, rule in pairs for step in rule.steps])
        submitter_id = submitter.pk if submitter is not None else None
        reasons = []
        for invoice, rule in pairs:
            nobody = [step for step in rule.steps if not deciders.of(step, invoice, submitter_id)]
            reasons.append(deciders.why_nobody(invoice, nobody[0], submitter_id) if nobody else None)
        return reasons

    def reroute_rules(self, invoice: Invoice, actor) -> dict[str, Rule]:
        """The customer's CSM and deputy CSMs (when it has a CSM) and any Customer Success or Sales user, each with
        the Sales threshold of its configuration; or one named approver instead of every step: a Sales user, an
        Admin, the customer's CSM or one of its deputy CSMs, never the Admin re-routing it (someone else checks)."""
        config = billing_config_for(invoice.customer)
        csm = invoice.customer.csm
        deputy_ids = deputies_of([invoice])[invoice.customer_id]
        User = get_user_model()
        approvers = list(
            User.objects.filter(is_active=True)
            .filter(
                Q(is_superuser=True)
                | Q(is_staff=True, groups__name__in=[Role.ADMIN.value, SALES])
                | Q(
                    is_staff=True, pk__in={invoice.customer.csm_id, *deputy_ids} - {None}, groups__name=CUSTOMER_SUCCESS
                )
            )
            .distinct()
            .order_by("full_name", "email")
        )
        csm_label = f"The customer's CSM, {csm}"
        if deputies := [str(user) for user in approvers if user.pk in deputy_ids]:
            csm_label += f", or a deputy CSM: {', '.join(deputies)}"
        routes = {}
        for name in (BillingConfig.ApprovalRule.CSM, BillingConfig.ApprovalRule.CS_OR_SALES):
            if name == BillingConfig.ApprovalRule.CSM and csm is None:
                continue
            variant = copy.copy(config)
            variant.approval_rule = name
            rule = invoice_approval_rule(invoice, variant, deputy_ids=deputy_ids)
            steps = tuple(
                Step(step.name, csm_label, users=step.users) if step.name == "csm" else step for step in rule.steps
            )
            label = " + ".join(step.label for step in steps)
            routes[str(name)] = Rule(rule.name, label, steps, rule.amount, rule.details)
        for user in approvers:
            if user.pk == actor.pk:
                continue
            routes[f"approver:{user.pk}"] = Rule(
                "approver",
                f"{user} alone, instead of every step",
                (Step("approver", str(user), users=(user.pk,)),),
                invoice.total,
                {"sales_approval_above": None},
            )
        return routes

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
        deputies = deputies_of(invoices)
        return [
            invoice_approval_rule(
                invoice,
                configs.get(invoice.customer_id) or billing_config_for(invoice.customer),
                deputy_ids=deputies[invoice.customer_id],
            )
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
        """Active users only, and of those a CSM's step names, only the customer's CSM and its deputy CSMs now; at
        most three queries (the users named by steps, the members of their groups, the deputies: see
        `deputies_of`)."""
        User = get_user_model()
        with_csm = [invoice for invoice, step in pairs if step.name == "csm" or CUSTOMER_SUCCESS in step.groups]
        deputies = deputies_of(with_csm)
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
            csm_and_deputies = {invoice.customer.csm_id, *deputies.get(invoice.customer_id, ())} - {None}
            if step.users:
                users = set(step.users) & csm_and_deputies if step.name == "csm" else set(step.users)
                addresses.append(sorted(emails[pk] for pk in users if pk in emails))
                continue
            found = {email for group in step.groups if group != cs for email in members[group].values()}
            if cs in step.groups:
                # Customer Success users see only their own customers: only the CSM and deputies are told.
                found |= {members[cs][pk] for pk in csm_and_deputies if pk in members[cs]}
            addresses.append(sorted(found))
        return addresses

    def scope_label(self, invoice: Invoice) -> str:
        return invoice.customer.client_id

    def visible_to(self, user) -> QuerySet:
        # The invoices' own scoping: a CSM sees their customers' (whatever the rule), Finance and Sales all.
        return invoice_list_for(user).order_by().values("pk")

    def admin_url(self, invoice_id: int) -> str:
        return reverse("admin:ledger_invoice_change", args=[invoice_id])
