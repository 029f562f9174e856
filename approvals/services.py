"""Submit, approve, reject, comment, revert, withdraw: every change of an approval request.

Each function locks the target, through its handler, and then the request, so that two approvers acting at
the same moment leave one consistent decision. Emails go out only after commit.

Why the target first: a target's app locks it after whatever owns it (an invoice: its customer, then the
invoice; ledger/locks.py), and submitting must lock the target before it can find the target's previous
request. A decision that locked the request first and then the target (and with it the customer) would take
the same rows in the other order, and the two would deadlock. So approvals never holds a request while it
waits for a target: it reads the request to find its target, locks the target through the handler (which
takes the owner's locks first), then locks the request and checks its state again. A comment locks the
request alone and waits for nothing while it holds it.
"""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from approvals.models import ApprovalAction, ApprovalRequest
from approvals.registry import Rule, Step, bulk, handler_for
from approvals.selectors import (
    DECISIONS_AND_REROUTES,
    may_reroute,
    reroute_rules,
    revertible_decisions,
    standing_approvals,
    steps_left,
)
from billing_project.errors import Conflict, DomainError, NotAllowed

_CURRENT = [ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED, ApprovalRequest.Status.REJECTED]


class ApprovalNotAllowed(NotAllowed):
    code = "approval_not_allowed"


class NoApprover(Conflict):
    """Nobody can give an approval the rule needs; the message says what to fix."""

    code = "no_approver"


def _comment_required(comment: str, what: str) -> str:
    comment = (comment or "").strip()
    if not comment:
        raise DomainError(
            f"A comment is required to {what}.", code="comment_required", fields={"comment": ["Required."]}
        )
    return comment


def _lock(request: ApprovalRequest) -> ApprovalRequest:
    return ApprovalRequest.objects.select_for_update().get(pk=request.pk)


def _steps(request: ApprovalRequest) -> list[dict]:
    return request.rule.get("steps", [])


def _decisions(request: ApprovalRequest) -> list[ApprovalAction]:
    """The request's approvals, rejections and re-routes, oldest first, with what reverted them."""
    actions = request.actions.filter(kind__in=DECISIONS_AND_REROUTES).select_related("reverted_by")
    return list(actions.order_by("at", "id"))


def _live_approvals(request: ApprovalRequest) -> list[ApprovalAction]:
    """The approvals that count: not reverted, nor set aside by a re-route (approvals.selectors)."""
    return standing_approvals(_decisions(request))


def step_is_open_to(step: dict, user) -> bool:
    if user.pk in step["users"]:
        return True
    return bool(step["groups"]) and user.groups.filter(name__in=step["groups"]).exists()


def open_steps(request: ApprovalRequest) -> list[dict]:
    """Steps still waiting for an approval."""
    return steps_left(request.rule, _live_approvals(request))


def approvers_of(step: dict):
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(Q(pk__in=step["users"]) | Q(groups__name__in=step["groups"] or ["-"])).distinct()


def _notify(subject: str, body: str, recipients: list[str]) -> None:
    recipients = sorted({address for address in recipients if address})
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients), robust=True)


def _notify_approvers(request: ApprovalRequest, target: Model) -> None:
    handler = handler_for(target)
    for step in open_steps(request):
        addresses = handler.notify_addresses(
            target, Step(step["name"], step["label"], tuple(step["users"]), tuple(step["groups"]))
        )
        _notify(
            f"Awaiting your approval: {request.summary}",
            f"{request.summary} waits for approval ({step['label']}), submitted by {request.opened_by or 'month-end'}.",
            addresses,
        )


def _step(step: dict) -> Step:
    return Step(step["name"], step["label"], tuple(step["users"]), tuple(step["groups"]))


def _notify_approvers_of_new(handler, pairs: list[tuple[ApprovalRequest, Model]], actor) -> None:
    """One email per approver for a batch of new requests, listing each request whose steps include them."""
    steps = [(request, target, _step(step)) for request, target in pairs for step in _steps(request)]
    found = bulk(handler, "notify_addresses_many")([(target, step) for _, target, step in steps])
    waiting = defaultdict(dict)  # address -> {request id: (request, labels of the steps that are theirs)}
    for (request, _, step), addresses in zip(steps, found, strict=True):
        for address in addresses:
            if address:
                waiting[address].setdefault(request.pk, (request, []))[1].append(step.label)
    by = actor or "month-end"
    for address in sorted(waiting):
        entries = list(waiting[address].values())
        if len(entries) == 1:
            ((request, labels),) = entries
            subject = f"Awaiting your approval: {request.summary}"
            body = f"{request.summary} waits for approval ({', '.join(labels)}), submitted by {by}."
        else:
            subject = f"Awaiting your approval: {len(entries)} requests"
            body = f"{len(entries)} requests wait for your approval, submitted by {by}:\n\n" + "\n".join(
                f"- {request.summary} ({', '.join(labels)})" for request, labels in entries
            )
        _notify(subject, body, [address])


def _submitter_address(request: ApprovalRequest) -> list[str]:
    return [request.opened_by.email] if request.opened_by else []  # None: month-end submitted it


def request_for(target: Model) -> ApprovalRequest | None:
    """The target's current request (pending, approved or rejected), if any."""
    return (
        ApprovalRequest.objects.filter(
            target_type=ContentType.objects.get_for_model(target), target_id=target.pk, status__in=_CURRENT
        )
        .order_by("-opened_at")
        .first()
    )


@transaction.atomic
def approval_submit(*, actor, target: Model, comment: str = "") -> ApprovalRequest | None:
    """Open a request for `target` under its rule, frozen now; None when its rule needs no approval."""
    handler = handler_for(target)
    if not handler.may_submit(target, actor):
        raise ApprovalNotAllowed("Your role may not submit this for approval.", code="wrong_role")
    target = handler.lock(target)
    previous = request_for(target)
    if previous is not None and previous.status == ApprovalRequest.Status.PENDING:
        raise Conflict(f"{previous.summary} is already waiting for approval.", code="already_submitted")
    handler.check_submittable(target)
    if previous is not None:
        # A rejected target, fixed, starts over: the old request is closed, and the log says by whom.
        previous = _lock(previous)
        ApprovalAction.objects.create(
            request=previous, actor=actor, kind=ApprovalAction.Kind.WITHDRAWN, comment="Resubmitted."
        )
        previous.status = ApprovalRequest.Status.WITHDRAWN
        previous.decided_at = timezone.now()
        previous.save(update_fields=["status", "decided_at"])
    rule: Rule = handler.rule(target)
    if not rule.steps:
        if previous is not None:
            handler.withdrawn(target, actor)  # back to a plain draft: its rule no longer asks for approval
        return None
    reason = handler.unsatisfiable(target, rule, actor)
    if reason:
        raise NoApprover(reason)
    request = ApprovalRequest.objects.create(
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        summary=handler.summary(target)[:300],
        scope=handler.scope_label(target)[:64],
        rule=rule.as_json(),
        opened_by=actor,
    )
    ApprovalAction.objects.create(request=request, actor=actor, kind=ApprovalAction.Kind.SUBMITTED, comment=comment)
    handler.submitted(target, actor)
    _notify_approvers(request, target)
    return request


@transaction.atomic
def approval_submit_many(*, actor, targets: list[Model], comment: str = "") -> list[ApprovalRequest]:
    """`approval_submit` for a batch of fresh targets of one model (month-end's new drafts), in a number of
    queries that does not grow with the batch. Each target's rule is frozen now, as `approval_submit` does;
    a target whose rule needs no approval gets no request and stays as it is. Returns the requests opened, in
    the order of `targets`. After commit each approver gets one email listing the batch's requests that wait
    for them.

    All or nothing: when `actor` may not submit a target, a target cannot be submitted now, nobody can give an
    approval a target's rule needs, or a target already has a current request (pending, approved or rejected:
    resubmitting a rejected target, which closes its old request, is `approval_submit`'s job), it raises and
    submits none. A caller that wants the others submitted regardless falls back to `approval_submit` per
    target."""
    if not targets:
        return []
    model = type(targets[0])
    if any(type(target) is not model for target in targets):
        raise ValueError("approval_submit_many takes targets of one model.")
    ids = [target.pk for target in targets]
    if len(set(ids)) != len(ids):
        raise ValueError("approval_submit_many takes each target once.")
    handler = handler_for(model)
    if not all(handler.may_submit(target, actor) for target in targets):
        raise ApprovalNotAllowed("Your role may not submit this for approval.", code="wrong_role")
    locked = {target.pk: target for target in bulk(handler, "lock_many")(targets)}
    if len(locked) != len(ids):
        raise Conflict("Something submitted for approval no longer exists.", code="not_submittable")
    targets = [locked[pk] for pk in ids]
    target_type = ContentType.objects.get_for_model(model)
    previous = (
        ApprovalRequest.objects.filter(target_type=target_type, target_id__in=ids, status__in=_CURRENT)
        .order_by("target_id")
        .first()
    )
    if previous is not None:
        if previous.status == ApprovalRequest.Status.PENDING:
            raise Conflict(f"{previous.summary} is already waiting for approval.", code="already_submitted")
        raise Conflict(
            f"{previous.summary} is already {previous.get_status_display().lower()}; submit it on its own.",
            code="already_decided",
        )
    for target in targets:
        handler.check_submittable(target)
    rules: list[Rule] = bulk(handler, "rules_many")(targets)
    chosen = [(target, rule) for target, rule in zip(targets, rules, strict=True) if rule.steps]
    reason = next(filter(None, bulk(handler, "unsatisfiable_many")(chosen, actor)), None)
    if reason:
        raise NoApprover(reason)
    requests = bulk_create_with_history(
        [
            ApprovalRequest(
                target_type=target_type,
                target_id=target.pk,
                summary=handler.summary(target)[:300],
                scope=handler.scope_label(target)[:64],
                rule=rule.as_json(),
                opened_by=actor,
            )
            for target, rule in chosen
        ],
        ApprovalRequest,
        default_user=actor,
    )
    ApprovalAction.objects.bulk_create(
        [
            ApprovalAction(request=request, actor=actor, kind=ApprovalAction.Kind.SUBMITTED, comment=comment)
            for request in requests
        ]
    )
    if chosen:
        targets = [target for target, _ in chosen]
        bulk(handler, "submitted_many")(targets, actor)
        _notify_approvers_of_new(handler, list(zip(requests, targets, strict=True)), actor)
    return requests


def _lock_target_then_request(request: ApprovalRequest) -> tuple[ApprovalRequest, Model, object]:
    """The request's target and then the request, each re-read under its lock (see the module's docstring)."""
    handler = handler_for(request.target_type.model_class())
    target = handler.lock(request.target)
    return _lock(request), target, handler


def _decidable(request: ApprovalRequest, actor) -> tuple[ApprovalRequest, Model, object]:
    request, target, handler = _lock_target_then_request(request)
    if request.status != ApprovalRequest.Status.PENDING:
        raise Conflict(f"This request is already {request.get_status_display().lower()}.", code="already_decided")
    if request.opened_by_id is not None and request.opened_by_id == actor.pk:
        raise ApprovalNotAllowed(
            "You submitted this; someone else must decide it (maker-checker).", code="own_submission"
        )
    return request, target, handler


@transaction.atomic
def approval_approve(*, actor, request: ApprovalRequest, comment: str = "", attachment=None) -> ApprovalRequest:
    """Approve the first open step the actor may approve; with every step approved, the target proceeds."""
    request, target, handler = _decidable(request, actor)
    steps = [step for step in open_steps(request) if step_is_open_to(step, actor)]
    if not steps:
        already = any(action.actor_id == actor.pk for action in _live_approvals(request))
        raise ApprovalNotAllowed(
            "You have already approved this." if already else "You are not an approver of this request.",
            code="already_approved" if already else "not_an_approver",
        )
    if any(action.actor_id == actor.pk for action in _live_approvals(request)):
        raise ApprovalNotAllowed(
            "You have already approved this; another approver must give the next approval.", code="already_approved"
        )
    ApprovalAction.objects.create(
        request=request,
        actor=actor,
        kind=ApprovalAction.Kind.APPROVED,
        step=steps[0]["name"],
        comment=comment.strip(),
        attachment=attachment or "",
    )
    if not open_steps(request):
        request.status = ApprovalRequest.Status.APPROVED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
        handler.approved(target, actor)
        _notify(
            f"Approved: {request.summary}", f"{request.summary} was approved by {actor}.", _submitter_address(request)
        )
    return request


@transaction.atomic
def approval_reject(*, actor, request: ApprovalRequest, comment: str, attachment=None) -> ApprovalRequest:
    comment = _comment_required(comment, "reject")
    request, target, handler = _decidable(request, actor)
    if not any(step_is_open_to(step, actor) for step in _steps(request)):
        raise ApprovalNotAllowed("You are not an approver of this request.", code="not_an_approver")
    ApprovalAction.objects.create(
        request=request, actor=actor, kind=ApprovalAction.Kind.REJECTED, comment=comment, attachment=attachment or ""
    )
    request.status = ApprovalRequest.Status.REJECTED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    handler.rejected(target, actor)
    _notify(
        f"Rejected: {request.summary}",
        f"{request.summary} was rejected by {actor}: {comment}",
        _submitter_address(request),
    )
    return request


@transaction.atomic
def approval_revert(*, actor, request: ApprovalRequest, comment: str) -> ApprovalRequest:
    """Take back the latest approval or rejection (the actor's own, or any for a superuser); the request reopens."""
    comment = _comment_required(comment, "revert")
    request, target, handler = _lock_target_then_request(request)
    if request.status == ApprovalRequest.Status.WITHDRAWN:
        # Resubmitted (or withdrawn) meanwhile: a newer request, if any, is the open one; this one stays closed.
        raise Conflict("This request was withdrawn; its decisions can no longer be reverted.", code="withdrawn")
    if not handler.can_revert(target):
        raise Conflict("It has already been issued; its approval can no longer be reverted.", code="already_issued")
    decisions = revertible_decisions(_decisions(request))
    if not decisions:
        raise Conflict("There is no approval or rejection to revert.", code="nothing_to_revert")
    latest = decisions[-1]
    if latest.actor_id != actor.pk and not actor.has_perm("approvals.change_approvalrequest"):
        raise ApprovalNotAllowed("Only who made a decision (or an admin) can revert it.", code="not_your_decision")
    ApprovalAction.objects.create(
        request=request, actor=actor, kind=ApprovalAction.Kind.REVERTED, comment=comment, reverts=latest
    )
    was = request.status
    request.status = ApprovalRequest.Status.PENDING
    request.decided_at = None
    request.save(update_fields=["status", "decided_at"])
    if was != ApprovalRequest.Status.PENDING:
        handler.reopened(target, actor)
    _notify_approvers(request, target)
    return request


@transaction.atomic
def approval_comment(*, actor, request: ApprovalRequest, comment: str, attachment=None) -> ApprovalAction:
    comment = _comment_required(comment, "comment")
    request = _lock(request)
    return ApprovalAction.objects.create(
        request=request, actor=actor, kind=ApprovalAction.Kind.COMMENTED, comment=comment, attachment=attachment or ""
    )


@transaction.atomic
def approval_withdraw(*, actor, request: ApprovalRequest, comment: str = "") -> ApprovalRequest:
    request, target, handler = _lock_target_then_request(request)
    if request.status not in {ApprovalRequest.Status.PENDING, ApprovalRequest.Status.REJECTED}:
        raise Conflict(f"This request is {request.get_status_display().lower()}; it cannot be withdrawn.")
    ApprovalAction.objects.create(request=request, actor=actor, kind=ApprovalAction.Kind.WITHDRAWN, comment=comment)
    request.status = ApprovalRequest.Status.WITHDRAWN
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    handler.withdrawn(target, actor)
    return request


@transaction.atomic
def approval_reroute(*, actor, request: ApprovalRequest, route: str, comment: str) -> ApprovalRequest:
    """An Admin sends a pending request another way (`route`: another rule or a named approver, one of
    `approval_reroute_choices`), saying why; typically when nobody can give an approval it waits for. The
    re-route is an action with the old and the new rule. Approvals already given still count for the steps the
    new rule keeps as they were (same people); the others are asked again, and emailed. The routes offered are
    approvals.selectors.approval_reroute_choices."""
    comment = _comment_required(comment, "re-route")
    if not may_reroute(actor):
        raise ApprovalNotAllowed("Only an Admin re-routes an approval request.", code="wrong_role")
    request, target, handler = _lock_target_then_request(request)
    if request.status != ApprovalRequest.Status.PENDING:
        raise Conflict(
            f"This request is {request.get_status_display().lower()}; only one waiting for approval is re-routed.",
            code="already_decided",
        )
    rule = reroute_rules(request, target, actor, _live_approvals(request)).get(route)
    if rule is None:
        raise DomainError(
            f"“{route}” is not a route this request can take now.",
            code="unknown_route",
            fields={"route": ["Choose one of the routes offered for this request."]},
        )
    reason = handler.unsatisfiable(target, rule, request.opened_by)
    if reason:
        raise NoApprover(reason)
    ApprovalAction.objects.create(
        request=request,
        actor=actor,
        kind=ApprovalAction.Kind.REROUTED,
        comment=comment,
        old_rule=request.rule,
        new_rule=rule.as_json(),
    )
    request.rule = rule.as_json()
    request._history_user = actor
    request.save(update_fields=["rule"])
    _notify_approvers(request, target)
    return request
