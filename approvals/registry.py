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


class ApprovalHandler(Protocol):
    """Implemented by the app that owns a target; every method runs inside the deciding transaction."""

    def rule(self, target: models.Model) -> Rule: ...

    def summary(self, target: models.Model) -> str: ...

    def may_submit(self, target: models.Model, actor) -> bool:
        """Whether `actor` (None: a scheduled job) may submit the target."""

    def check_submittable(self, target: models.Model) -> None:
        """Raise a DomainError-like exception with a reason if the target cannot be submitted now."""

    def can_revert(self, target: models.Model) -> bool:
        """False once the target has moved past approval (an invoice once issued)."""

    def submitted(self, target: models.Model, actor) -> None: ...

    def approved(self, target: models.Model, actor) -> None: ...

    def rejected(self, target: models.Model, actor) -> None: ...

    def reopened(self, target: models.Model, actor) -> None: ...

    def withdrawn(self, target: models.Model, actor) -> None: ...

    def lock(self, target: models.Model) -> models.Model:
        """The target re-read under a row lock."""

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


_handlers: dict[str, ApprovalHandler] = {}
_models: dict[str, type[models.Model]] = {}


def register(model: type[models.Model], handler: ApprovalHandler) -> None:
    _handlers[model._meta.label_lower] = handler
    _models[model._meta.label_lower] = model


def registered() -> list[tuple[type[models.Model], ApprovalHandler]]:
    """Every target model with its handler."""
    return [(_models[label], handler) for label, handler in _handlers.items()]


def handler_for(model: type[models.Model] | models.Model) -> ApprovalHandler:
    try:
        return _handlers[model._meta.label_lower]
    except KeyError:
        raise LookupError(f"{model._meta.label} is not registered as an approval target.") from None
