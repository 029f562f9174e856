"""Partners' revenue-share agreements: every write (DESIGN.md, "Settlements").

A partner's agreements of one order type (or its general ones, without a type) never overlap. Writes lock the
partner first, so two overlapping agreements cannot both pass the model's check; on PostgreSQL the exclusion
constraint `revenue_share_no_overlap` refuses them as well. An agreement keeps its partner and order type; a new
percentage from a day on ends one agreement and starts the next, so the history of what was in force stays exact.
"""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from billing_project.errors import DomainError
from catalog.locks import lock_partner
from catalog.models import Partner
from orders.models import OrderType, RevenueShareAgreement

OVERLAP_CONSTRAINT = "revenue_share_no_overlap"
AGREEMENT_TERMS = {"percentage", "valid_from", "valid_to"}


def _refusal(error: ValidationError) -> DomainError:
    fields = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    codes = {e.code for errors in getattr(error, "error_dict", {}).values() for e in errors}
    message = next(iter(fields.values()))[0]
    return DomainError(message, code="overlap" if "overlap" in codes else "invalid", fields=fields)


def _save(agreement: RevenueShareAgreement, *, actor: User | None) -> RevenueShareAgreement:
    agreement._history_user = actor
    try:
        agreement.full_clean()
        with transaction.atomic():
            agreement.save()
    except ValidationError as error:
        raise _refusal(error) from error
    except IntegrityError as error:
        if OVERLAP_CONSTRAINT not in str(error):
            raise
        message = "Overlaps another agreement of this partner for the same order type; end that one first."
        raise DomainError(message, code="overlap", fields={"valid_from": [message]}) from error
    return agreement


def _locked(agreement: RevenueShareAgreement) -> RevenueShareAgreement:
    lock_partner(agreement.partner)
    return (
        RevenueShareAgreement.objects.select_for_update(of=("self",))
        .select_related("partner", "order_type")
        .get(pk=agreement.pk)
    )


@transaction.atomic
def revenue_share_agreement_create(
    *,
    actor: User | None,
    partner: Partner,
    percentage: Decimal,
    valid_from: date,
    valid_to: date | None = None,
    order_type: OrderType | None = None,
) -> RevenueShareAgreement:
    """A new agreement; without `order_type`, the partner's general one."""
    partner = lock_partner(partner)
    agreement = RevenueShareAgreement(
        partner=partner, order_type=order_type, percentage=percentage, valid_from=valid_from, valid_to=valid_to
    )
    return _save(agreement, actor=actor)


@transaction.atomic
def revenue_share_agreement_update(
    *, actor: User | None, agreement: RevenueShareAgreement, **changes: Any
) -> RevenueShareAgreement:
    """Correct an agreement's terms (percentage, valid from, valid to). A new percentage from a day on is
    `revenue_share_agreement_change`; partner and order type never change."""
    unknown = sorted(set(changes) - AGREEMENT_TERMS)
    if unknown:
        message = "An agreement keeps its partner and order type; make a new agreement instead."
        raise DomainError(message, fields={field: [message] for field in unknown})
    agreement = _locked(agreement)
    for field, value in changes.items():
        setattr(agreement, field, value)
    return _save(agreement, actor=actor)


@transaction.atomic
def revenue_share_agreement_end(
    *, actor: User | None, agreement: RevenueShareAgreement, valid_to: date
) -> RevenueShareAgreement:
    """End the agreement on `valid_to`, its last day in force."""
    agreement = _locked(agreement)
    if valid_to < agreement.valid_from:
        message = f"The agreement starts on {agreement.valid_from:%d %b %Y}; it cannot end before that."
        raise DomainError(message, fields={"valid_to": [message]})
    agreement.valid_to = valid_to
    return _save(agreement, actor=actor)


@transaction.atomic
def revenue_share_agreement_change(
    *, actor: User | None, agreement: RevenueShareAgreement, effective_from: date, percentage: Decimal
) -> RevenueShareAgreement:
    """A new percentage from `effective_from` on: the agreement ends the day before, its successor starts that day
    and runs to where the agreement ran. Returns the successor."""
    agreement = _locked(agreement)
    if effective_from <= agreement.valid_from:
        message = f"The new percentage must start after the current agreement does ({agreement.valid_from:%d %b %Y})."
        raise DomainError(message, fields={"effective_from": [message]})
    if agreement.valid_to is not None and effective_from > agreement.valid_to:
        message = f"The current agreement has already ended by then (on {agreement.valid_to:%d %b %Y})."
        raise DomainError(message, fields={"effective_from": [message]})
    successor_end = agreement.valid_to
    agreement.valid_to = effective_from - timedelta(days=1)
    _save(agreement, actor=actor)
    successor = RevenueShareAgreement(
        partner=agreement.partner,
        order_type=agreement.order_type,
        percentage=percentage,
        valid_from=effective_from,
        valid_to=successor_end,
    )
    return _save(successor, actor=actor)
