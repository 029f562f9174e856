"""How `approvals` reaches its targets without importing them: each target model registers a handler."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from django.db import models
from django.db.models import QuerySet


@dataclass(frozen=True)
class Step:
    """One approval a request needs: from one of `users`, or from anyone in one of `groups`."""

    name: str
    label: str
    users: tuple[int, ...] = ()
    groups: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"name": self.name, "label": self.label, "users": list(self.users), "groups": list(self.groups)}

    @classmethod
    def from_json(cls, data: dict) -> "Step":
        return cls(data["name"], data["label"], tuple(data["users"]), tuple(data["groups"]))


def same_step(one: dict | None, other: dict | None) -> bool:
    """Whether two frozen steps ask the same approval of the same people (their labels aside); None is no step."""
    return one is not None and other is not None and all(one[key] == other[key] for key in ("name", "users", "groups"))


@dataclass(frozen=True)
class Rule:
    """What a target needs before it may proceed; `steps` empty means no approval at all."""

    name: str
    label: str
    steps: tuple[Step, ...] = ()
    amount: Decimal | None = None
    details: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "steps": [step.as_json() for step in self.steps],
            "amount": None if self.amount is None else str(self.amount),
            **self.details,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Rule":
        """The rule a request froze (`as_json`), back as a Rule."""
        details = {key: value for key, value in data.items() if key not in {"name", "label", "steps", "amount"}}
        amount = data.get("amount")
        return cls(
            name=data["name"],
            label=data["label"],
            steps=tuple(Step.from_json(step) for step in data.get("steps", [])),
            amount=None if amount is None else Decimal(amount),
            details=details,
        )


class ApprovalHandler(Protocol):
    """Implemented by the app that owns a target; every method runs inside the deciding transaction.

    The `*_many` methods are optional bulk forms used by `approval_submit_many`, each the same as its
    one-target method applied to every target, in a number of queries that does not grow with the batch;
    a handler without one gets the one-target method called per target (see `bulk`)."""

    def rule(self, target: models.Model) -> Rule: ...

    def summary(self, target: models.Model) -> str: ...

    def may_submit(self, target: models.Model, actor) -> bool:
        """Whether `actor` (None: a scheduled job) may submit the target."""

    def check_submittable(self, target: models.Model) -> None:
        """Raise a DomainError-like exception with a reason if the target cannot be submitted now."""

    def unsatisfiable(self, target: models.Model, rule: Rule, submitter) -> str | None:
        """Why nobody can give one of the rule's approvals, saying what to fix; None when each step has someone
        who may give it: active, allowed to see the target, and not `submitter` (maker-checker; None: a
        scheduled job submitted it). A request is never opened, nor re-routed, under a rule with such a step."""

    def reroute_rules(self, target: models.Model, actor) -> dict[str, Rule]:
        """The rules an Admin (`actor`) may send an open request on `target` to instead, by a key that names each
        route (another rule, a named approver), each with a label that says who would approve. `approvals` offers
        those someone can satisfy and that differ from the request's."""

    def can_revert(self, target: models.Model) -> bool:
        """False once the target has moved past approval (an invoice once issued)."""

    def submitted(self, target: models.Model, actor) -> None: ...

    def approved(self, target: models.Model, actor) -> None: ...

    def rejected(self, target: models.Model, actor) -> None: ...

    def reopened(self, target: models.Model, actor) -> None: ...

    def withdrawn(self, target: models.Model, actor) -> None: ...

    def lock(self, target: models.Model) -> models.Model:
        """The target re-read under a row lock, taken after the locks of whatever owns it in its app's lock order
        (an invoice: its customer first). Called before approvals locks the target's request."""

    def notify_addresses(self, target: models.Model, step: Step) -> list[str]:
        """Email addresses of who may approve `step` (e.g. only the customer's CSM)."""

    def scope_label(self, target: models.Model) -> str:
        """Whom the target concerns, in at most 64 characters (an invoice: its customer's client id); stored on
        the request when it is submitted, so that lists filter on it without reaching the target."""

    def visible_to(self, user) -> QuerySet:
        """Ids of the targets `user` may see, as a queryset of ids (one subquery, never a list): requests on any
        other target are hidden from that user, and opening one answers 404."""

    def admin_url(self, target_id: int) -> str:
        """The target's page in the admin, from its id alone (lists link to it without loading the targets)."""

    # Optional bulk forms (see the class docstring).

    def lock_many(self, targets: list[models.Model]) -> list[models.Model]:
        """`lock` for every target: the targets re-read under row locks, in primary-key order, after their owners'
        locks (an invoice's customers, in primary-key order, before any of the invoices)."""

    def rules_many(self, targets: list[models.Model]) -> list[Rule]:
        """`rule` for every target, in the order given."""

    def submitted_many(self, targets: list[models.Model], actor) -> None:
        """`submitted` for every target."""

    def notify_addresses_many(self, pairs: list[tuple[models.Model, Step]]) -> list[list[str]]:
        """`notify_addresses` for every (target, step) pair, in the order given."""

    def unsatisfiable_many(self, pairs: list[tuple[models.Model, Rule]], submitter) -> list[str | None]:
        """`unsatisfiable` for every (target, rule) pair, in the order given."""


_handlers: dict[str, ApprovalHandler] = {}
_models: dict[str, type[models.Model]] = {}


def register(model: type[models.Model], handler: ApprovalHandler) -> None:
    _handlers[model._meta.label_lower] = handler
    _models[model._meta.label_lower] = model


def registered() -> list[tuple[type[models.Model], ApprovalHandler]]:
    """Every target model with its handler."""
    return [(_models[label], handler) for label, handler in _handlers.items()]


class _PerTarget:
    """The bulk forms of a handler that has none: its one-target methods, called per target."""

    def __init__(self, handler: ApprovalHandler) -> None:
        self.handler = handler

    def lock_many(self, targets: list[models.Model]) -> list[models.Model]:
        # Target by target: each one's owners, then it. A handler whose targets have different owners gives its
        # own lock_many, which locks every owner before any target, as the owners' order wants.
        return [self.handler.lock(target) for target in sorted(targets, key=lambda target: target.pk)]

    def rules_many(self, targets: list[models.Model]) -> list[Rule]:
        return [self.handler.rule(target) for target in targets]

    def submitted_many(self, targets: list[models.Model], actor) -> None:
        for target in targets:
            self.handler.submitted(target, actor)

    def notify_addresses_many(self, pairs: list[tuple[models.Model, Step]]) -> list[list[str]]:
        return [self.handler.notify_addresses(target, step) for target, step in pairs]

    def unsatisfiable_many(self, pairs: list[tuple[models.Model, Rule]], submitter) -> list[str | None]:
        return [self.handler.unsatisfiable(target, rule, submitter) for target, rule in pairs]


def bulk(handler: ApprovalHandler, method: str):
    """The handler's bulk form `method` (e.g. "submitted_many"), or its one-target method called per target."""
    own = getattr(type(handler), method, None)
    if own is None or own is getattr(ApprovalHandler, method):  # none, or the protocol's stub inherited
        return getattr(_PerTarget(handler), method)
    return getattr(handler, method)


def handler_for(model: type[models.Model] | models.Model) -> ApprovalHandler:
    try:
        return _handlers[model._meta.label_lower]
    except KeyError:
        raise LookupError(f"{model._meta.label} is not registered as an approval target.") from None
