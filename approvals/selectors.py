"""Reads of approval requests: who may see which, what waits for whom, and a target's timeline.

Visibility is the targets' own: each handler says which targets a user may see (`visible_to`), so a CSM sees the
requests of their customers' invoices only, whatever the rule. What a user may do is read here to offer buttons
and build the queue; approvals.services still checks every decision when it is made.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, Model, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalAction, ApprovalRequest
from approvals.registry import Rule, Step, bulk, handler_for, registered, same_step

DECISIONS = [ApprovalAction.Kind.APPROVED, ApprovalAction.Kind.REJECTED]
# What decides which approvals count: the decisions, and the re-routes that may set earlier approvals aside.
DECISIONS_AND_REROUTES = [*DECISIONS, ApprovalAction.Kind.REROUTED]
OPEN_STATUSES = [ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED, ApprovalRequest.Status.REJECTED]


def standing_approvals(actions: list[ApprovalAction]) -> list[ApprovalAction]:
    """The approvals that count now, from a request's actions oldest first (their `reverted_by` read): not
    reverted, and given for a step that every later re-route kept as it was (same name, same people)."""
    standing = []
    for action in actions:
        if action.kind == ApprovalAction.Kind.REROUTED:
            before = {step["name"]: step for step in action.old_rule.get("steps", [])}
            after = {step["name"]: step for step in action.new_rule.get("steps", [])}
            standing = [
                approval for approval in standing if same_step(after.get(approval.step), before.get(approval.step))
            ]
        elif action.kind == ApprovalAction.Kind.APPROVED and not hasattr(action, "reverted_by"):
            standing.append(action)
    return standing


def revertible_decisions(actions: list[ApprovalAction]) -> list[ApprovalAction]:
    """The decisions a revert may take back, oldest first: the standing approvals and the rejections not reverted."""
    rejections = [
        action
        for action in actions
        if action.kind == ApprovalAction.Kind.REJECTED and not hasattr(action, "reverted_by")
    ]
    return sorted([*standing_approvals(actions), *rejections], key=lambda action: (action.at, action.pk))


def steps_left(rule: dict, approvals: list[ApprovalAction]) -> list[dict]:
    """The steps of a frozen rule that `approvals` (standing ones) do not cover yet."""
    done = {action.step for action in approvals}
    return [step for step in rule.get("steps", []) if step["name"] not in done]


def why_nobody_can_approve(request: ApprovalRequest, target: Model) -> str | None:
    """For a pending request, why nobody can give one of the approvals it still waits for (what to fix), from
    the target's handler; None when someone can give each. Reads the request's `decisions` (with_decisions)."""
    waiting = open_steps_of(request)
    if request.status != ApprovalRequest.Status.PENDING or not waiting:
        return None
    rule = Rule.from_json(request.rule)
    rule = Rule(rule.name, rule.label, tuple(Step.from_json(step) for step in waiting), rule.amount, rule.details)
    return handler_for(target).unsatisfiable(target, rule, request.opened_by)


def approval_list_for(user) -> QuerySet[ApprovalRequest]:
    """Requests whose target `user` may see: one correlated EXISTS per registered target model, so each request
    looks up its one target instead of the database hashing every invoice the user may see."""
    if not user.is_authenticated or not user.is_active:
        return ApprovalRequest.objects.none()
    visible = Q(pk__in=[])
    for model, handler in registered():
        target = handler.visible_to(user).filter(pk=OuterRef("target_id"))
        visible |= Q(target_type=ContentType.objects.get_for_model(model)) & Q(Exists(target))
    return ApprovalRequest.objects.filter(visible)


def with_decisions(requests: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    """Each request's approvals, rejections and re-routes, with what reverted them, in `request.decisions` (one
    query)."""
    decisions = (
        ApprovalAction.objects.filter(kind__in=DECISIONS_AND_REROUTES)
        .select_related("reverted_by")
        .order_by("at", "id")
    )
    return requests.prefetch_related(Prefetch("actions", queryset=decisions, to_attr="decisions"))


def open_steps_of(request: ApprovalRequest) -> list[dict]:
    """The request's steps still waiting for an approval, from its prefetched `decisions` (see with_decisions)."""
    return steps_left(request.rule, standing_approvals(request.decisions))


def _open_to(step: dict, user_id: int, groups: set[str]) -> bool:
    return user_id in step["users"] or bool(groups & set(step["groups"]))


def _approved_by(request: ApprovalRequest, user_id: int) -> bool:
    return any(action.actor_id == user_id for action in standing_approvals(request.decisions))


def _may_approve(request: ApprovalRequest, user, groups: set[str]) -> bool:
    """As approval_approve decides: pending, not their own submission, an open step is theirs, not approved yet."""
    return (
        request.status == ApprovalRequest.Status.PENDING
        and request.opened_by_id != user.pk
        and any(_open_to(step, user.pk, groups) for step in open_steps_of(request))
        and not _approved_by(request, user.pk)
    )


def _may_reject(request: ApprovalRequest, user, groups: set[str]) -> bool:
    """As approval_reject decides: pending, not their own submission, any step of the rule is theirs."""
    return (
        request.status == ApprovalRequest.Status.PENDING
        and request.opened_by_id != user.pk
        and any(_open_to(step, user.pk, groups) for step in request.rule.get("steps", []))
    )


def _may_revert(request: ApprovalRequest, user) -> bool:
    """As approval_revert decides (but for the target's state, which its handler tells): the latest live decision
    is the user's own, or the user is a superuser."""
    live = revertible_decisions(request.decisions)
    return bool(live) and (live[-1].actor_id == user.pk or user.is_superuser)


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def approval_queue_ids(user) -> list[int]:
    """Ids of the pending requests the user may see and may approve now: the "Awaiting my approval" queue.

    Whether a step is the user's is read from each request's frozen rule, so the pending requests they may see
    are read once (two queries: the requests, their decisions) and those that wait for them are kept; a CSM
    reads only their customers'. Pending requests are few (a month's bills at most), never the whole table.
    """
    groups = group_names(user)
    candidates = with_decisions(
        approval_list_for(user).filter(status=ApprovalRequest.Status.PENDING).exclude(opened_by=user)
    ).only("pk", "status", "rule", "opened_by")
    return [request.pk for request in candidates if _may_approve(request, user, groups)]


def waiting_longer_than(requests: QuerySet[ApprovalRequest], days: int) -> QuerySet[ApprovalRequest]:
    """Pending requests opened more than `days` days ago."""
    cutoff = timezone.now() - timedelta(days=days)
    return requests.filter(status=ApprovalRequest.Status.PENDING, opened_at__lt=cutoff)


def deciders_of(requests: QuerySet[ApprovalRequest]) -> QuerySet:
    """Users who approved or rejected any of `requests` (the approver filter offers them)."""
    decided = ApprovalAction.objects.filter(request__in=requests.order_by().values("pk"), kind__in=DECISIONS)
    return get_user_model().objects.filter(pk__in=decided.values("actor_id")).order_by("email")


def decided_by(requests: QuerySet[ApprovalRequest], user_id) -> QuerySet[ApprovalRequest]:
    decided = ApprovalAction.objects.filter(kind__in=DECISIONS, actor_id=user_id)
    return requests.filter(pk__in=decided.values("request_id"))


@dataclass
class ApprovalState:
    """A target's approvals as its page shows them: every action of every request (oldest first), the current
    request, and which decisions the signed-in user may make (the services still check them)."""

    actions: list[ApprovalAction] = field(default_factory=list)
    current: ApprovalRequest | None = None
    may_approve: bool = False
    may_reject: bool = False
    may_revert: bool = False
    may_reroute: bool = False
    reroutes: list[tuple[str, str]] = field(default_factory=list)  # (key, label) of the routes offered to them
    # For a pending request that nobody can finish: why, and what to fix (a re-route, often).
    blocked: str | None = None


def approval_state_for(target: Model, user) -> ApprovalState:
    """One query for the timeline (with actors, requests and reverts); one more for the user's roles when a
    request is open."""
    actions = list(
        ApprovalAction.objects.filter(
            request__target_type=ContentType.objects.get_for_model(target), request__target_id=target.pk
        )
        .select_related("actor", "request", "reverts", "reverted_by")
        .order_by("at", "id")
    )
    state = ApprovalState(actions=actions)
    current = [action.request for action in actions if action.request.status in OPEN_STATUSES]
    if not current:
        return state
    request = state.current = current[-1]
    request.decisions = [
        action for action in actions if action.request_id == request.pk and action.kind in DECISIONS_AND_REROUTES
    ]
    groups = group_names(user)
    state.may_approve = _may_approve(request, user, groups)
    state.may_reject = _may_reject(request, user, groups)
    state.may_revert = _may_revert(request, user) and handler_for(target).can_revert(target)
    if request.status == ApprovalRequest.Status.PENDING:
        state.blocked = why_nobody_can_approve(request, target)
        state.reroutes = approval_reroute_choices(actor=user, request=request, target=target)
        state.may_reroute = bool(state.reroutes)
    return state


def may_reroute(user) -> bool:
    """Re-routing an open request is an Admin's (approvals.services.approval_reroute checks it again)."""
    return user.has_perm("approvals.change_approvalrequest")


def reroute_rules(request: ApprovalRequest, target: Model, actor, standing: list[ApprovalAction]) -> dict[str, Rule]:
    """The routes a pending request may take (its target's handler's), less the one it is on (the same steps for
    the same people) and those whose steps its `standing` approvals would all cover: taking one would approve
    it with nobody asked."""
    current = {step["name"]: step for step in request.rule.get("steps", [])}
    routes = {}
    for key, rule in handler_for(target).reroute_rules(target, actor).items():
        new = {step["name"]: step for step in rule.as_json()["steps"]}
        if new.keys() == current.keys() and all(same_step(step, current[name]) for name, step in new.items()):
            continue
        kept = [action for action in standing if same_step(new.get(action.step), current.get(action.step))]
        if steps_left({"steps": list(new.values())}, kept):
            routes[key] = rule
    return routes


def approval_reroute_choices(*, actor, request: ApprovalRequest, target: Model | None = None) -> list[tuple[str, str]]:
    """The routes an Admin may send a pending request to, as (key, label), each one someone can satisfy; empty
    for anyone else, or a request not pending. Reads the request's `decisions` if set (with_decisions)."""
    if request.status != ApprovalRequest.Status.PENDING or not may_reroute(actor):
        return []
    target = target or request.target
    decisions = getattr(request, "decisions", None)
    if decisions is None:
        decisions = list(
            request.actions.filter(kind__in=DECISIONS_AND_REROUTES).select_related("reverted_by").order_by("at", "id")
        )
    routes = reroute_rules(request, target, actor, standing_approvals(decisions))
    pairs = [(target, rule) for rule in routes.values()]
    reasons = bulk(handler_for(target), "unsatisfiable_many")(pairs, request.opened_by)
    return [(key, rule.label) for (key, rule), reason in zip(routes.items(), reasons, strict=True) if not reason]
