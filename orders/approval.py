"""Settlements as targets of `approvals` (DESIGN.md, "Settlements"): maker-checker by Finance.

A settlement's request opens when it is calculated (orders.services.settlements), by whoever's action ended or
changed the order (None: a scheduled job). Any active Finance user or Admin other than that person approves it;
approvals refuses the maker. Approval posts the partner's share; a rejection voids the calculation.
"""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.urls import reverse

from accounts.roles import Role
from approvals.registry import Rule, Step
from billing_project.formatting import money
from orders.locks import lock_order, lock_orders, lock_settlements
from orders.models import Settlement
from orders.services.settlements import settlement_approved, settlement_rejected

APPROVERS = (Role.FINANCE.value, Role.ADMIN.value)


def settlement_rule(settlement: Settlement) -> Rule:
    return Rule(
        name="finance",
        label="Finance (not whoever calculated it)",
        steps=(Step("finance", "Finance", groups=APPROVERS),),
        amount=settlement.amount,
    )


class SettlementApprovalHandler:
    """Callbacks `approvals` makes on a settlement; each runs inside the deciding transaction."""

    def rule(self, settlement: Settlement) -> Rule:
        return settlement_rule(settlement)

    def summary(self, settlement: Settlement) -> str:
        return f"Settlement {settlement} for {settlement.partner.name}: {money(settlement.amount, settlement.currency)}"

    def lock(self, settlement: Settlement) -> Settlement:
        # Its customer and order first (orders.locks), then the settlement; approvals then locks the request.
        lock_order(settlement.order)
        return lock_settlements(pk=settlement.pk)[0]

    def lock_many(self, settlements: list[Settlement]) -> list[Settlement]:
        lock_orders([settlement.order for settlement in settlements])
        return lock_settlements(pk__in=[settlement.pk for settlement in settlements])

    def rules_many(self, settlements: list[Settlement]) -> list[Rule]:
        return [settlement_rule(settlement) for settlement in settlements]

    def may_submit(self, settlement: Settlement, actor) -> bool:
        # Opened by the system when an order ends or its money changes, on behalf of whoever did it.
        return True

    def check_submittable(self, settlement: Settlement) -> None:
        return None

    def unsatisfiable(self, settlement: Settlement, rule: Rule, submitter) -> str | None:
        # Never refused: an order's completion must not wait for Finance's staffing. A request nobody but its
        # maker could approve waits in the queue, where an Admin can re-route it.
        return None

    def unsatisfiable_many(self, pairs: list[tuple[Settlement, Rule]], submitter) -> list[str | None]:
        return [None for _ in pairs]

    def reroute_rules(self, settlement: Settlement, actor) -> dict[str, Rule]:
        return {}

    def can_revert(self, settlement: Settlement) -> bool:
        return settlement.status == Settlement.Status.CALCULATED  # once approved it is posted

    def submitted(self, settlement: Settlement, actor) -> None:
        return None

    def submitted_many(self, settlements: list[Settlement], actor) -> None:
        return None

    def approved(self, settlement: Settlement, actor) -> None:
        settlement_approved(actor=actor, settlement=settlement)

    def rejected(self, settlement: Settlement, actor) -> None:
        settlement_rejected(actor=actor, settlement=settlement)

    def reopened(self, settlement: Settlement, actor) -> None:
        return None

    def withdrawn(self, settlement: Settlement, actor) -> None:
        return None  # the settlement service voids it itself

    def notify_addresses(self, settlement: Settlement, step: Step) -> list[str]:
        return self.notify_addresses_many([(settlement, step)])[0]

    def notify_addresses_many(self, pairs: list[tuple[Settlement, Step]]) -> list[list[str]]:
        if not pairs:
            return []
        users = get_user_model().objects.filter(is_active=True, is_staff=True, groups__name__in=APPROVERS)
        addresses = sorted(set(users.values_list("email", flat=True)))
        return [addresses for _ in pairs]

    def scope_label(self, settlement: Settlement) -> str:
        return settlement.partner.name[:64]

    def visible_to(self, user) -> QuerySet:
        if user.has_perm("orders.view_settlement"):
            return Settlement.objects.order_by().values("pk")
        return Settlement.objects.none().values("pk")

    def admin_url(self, settlement_id: int) -> str:
        return reverse("admin:orders_settlement_change", args=[settlement_id])
