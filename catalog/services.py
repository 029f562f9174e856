"""Every write to customers, partners, services and price agreements."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_create
from billing_project.errors import DomainError, NotAllowed
from billing_project.formatting import quantity as format_quantity
from catalog.locks import lock_customer, lock_customers, lock_partner, lock_price_agreement
from catalog.models import (
    Customer,
    CustomerUserObjectPermission,
    MinimumCommitment,
    Partner,
    PortalMembership,
    PriceAgreement,
    PriceTier,
    PricingModel,
    Service,
)

OVERLAP_CONSTRAINT = "agreement_no_overlap"


def _save(instance, *, actor: User | None, update_fields: list[str] | None = None):
    instance._history_user = actor
    instance.full_clean()
    instance.save(update_fields=update_fields)
    return instance


def _apply(instance, changes: dict[str, Any], allowed: set[str]) -> list[str]:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError({field: ["This field cannot be changed here."] for field in unknown})
    for field, value in changes.items():
        setattr(instance, field, value)
    return list(changes)


def refuse_other_currency(customer: Customer, currency: str, *, field: str = "currency") -> None:
    """Money given for a customer is in the customer's currency; one given in another is refused, never converted."""
    if currency != customer.currency:
        raise DomainError(
            f"{customer.client_id} is billed in {customer.currency}; nothing in {currency} can be booked for it.",
            code="currency_mismatch",
            fields={field: [f"Must be the customer's currency, {customer.currency}."]},
        )


CUSTOMER_FIELDS = {
    "name",
    "legal_name",
    "client_id",
    "street_line1",
    "street_line2",
    "street_line3",
    "city",
    "postal_code",
    "country",
    "billing_email",
    "vat_id",
    "legal_registration_id",
    "buyer_reference",
    "peppol_scheme",
    "peppol_id",
    "einvoice_delivery",
    "currency",
    "csm",
    "sales_owner",
    "start_date",
    "end_date",
    "status",
    "require_csm_approval",
}


@transaction.atomic
def customer_create(*, actor: User | None, **fields: Any) -> Customer:
    customer = Customer()
    _apply(customer, fields, CUSTOMER_FIELDS)
    return _save(customer, actor=actor)


@transaction.atomic
def customer_update(*, actor: User | None, customer: Customer, **changes: Any) -> Customer:
    customer = lock_customer(customer)
    _apply(customer, changes, CUSTOMER_FIELDS)
    return _save(customer, actor=actor)


PARTNER_FIELDS = {"name", "contact_person", "email", "phone", *Partner.BANK_DETAILS}


BANK_DETAILS_HIDDEN = "Only Finance and Admin see and change a partner's bank details."


def _refuse_hidden_bank_details(actor: User | None, fields: dict[str, Any]) -> None:
    given = sorted(set(fields) & set(Partner.BANK_DETAILS))
    if given and actor is not None and not actor.has_perm("catalog.view_partner_bank_details"):
        raise NotAllowed(BANK_DETAILS_HIDDEN, fields={field: [BANK_DETAILS_HIDDEN] for field in given})


@transaction.atomic
def partner_create(*, actor: User | None, **fields: Any) -> Partner:
    _refuse_hidden_bank_details(actor, fields)
    partner = Partner()
    _apply(partner, fields, PARTNER_FIELDS)
    return _save(partner, actor=actor)


@transaction.atomic
def partner_update(*, actor: User | None, partner: Partner, **changes: Any) -> Partner:
    _refuse_hidden_bank_details(actor, changes)
    partner = lock_partner(partner)
    _apply(partner, changes, PARTNER_FIELDS)
    return _save(partner, actor=actor)


SERVICE_FIELDS = {"code", "name", "description", "unit_label", "unit_code", "category", "active"}


@transaction.atomic
def service_create(*, actor: User | None, **fields: Any) -> Service:
    service = Service()
    _apply(service, fields, SERVICE_FIELDS)
    return _save(service, actor=actor)


@transaction.atomic
def service_update(*, actor: User | None, service: Service, **changes: Any) -> Service:
    service = Service.objects.select_for_update().get(pk=service.pk)
    _apply(service, changes, SERVICE_FIELDS)
    return _save(service, actor=actor)


def _save_agreement(agreement: PriceAgreement, *, actor: User | None) -> PriceAgreement:
    # One writer at a time per customer, so two overlapping agreements cannot both pass the check.
    lock_customers([agreement.customer_id])
    try:
        with transaction.atomic():
            return _save(agreement, actor=actor)
    except IntegrityError as error:
        if OVERLAP_CONSTRAINT in str(error):
            raise ValidationError(
                {"valid_from": ["Overlaps another agreement for this customer and service."]}, code="overlap"
            ) from error
        raise


@transaction.atomic
def price_agreement_create(
    *,
    actor: User | None,
    customer: Customer,
    service: Service,
    valid_from: date,
    unit_price: Decimal = Decimal("0"),
    valid_to: date | None = None,
    included_quantity: Decimal = Decimal("0"),
    monthly_fee: Decimal = Decimal("0"),
    pricing_model: str = PricingModel.PER_UNIT,
    package_size: Decimal | None = None,
    package_price: Decimal | None = None,
    tiers: list[dict[str, Any]] | None = None,
) -> PriceAgreement:
    """A new agreement; graduated and volume agreements come with their tier table (`tiers`, see
    `price_tiers_set`), checked as a whole before anything is saved."""
    agreement = PriceAgreement(
        customer=customer,
        service=service,
        pricing_model=pricing_model,
        unit_price=unit_price,
        package_size=package_size,
        package_price=package_price,
        included_quantity=included_quantity,
        monthly_fee=monthly_fee,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    checked_tiers = checked_tier_table(pricing_model, tiers or [])
    agreement = _save_agreement(agreement, actor=actor)
    price_tiers_replace(agreement, checked_tiers, actor=actor)
    return agreement


AGREEMENT_FIELDS = {
    "pricing_model",
    "unit_price",
    "package_size",
    "package_price",
    "included_quantity",
    "monthly_fee",
    "valid_from",
    "valid_to",
}


@transaction.atomic
def price_agreement_update(
    *, actor: User | None, agreement: PriceAgreement, tiers: list[dict[str, Any]] | None = None, **changes: Any
) -> PriceAgreement:
    """Correct an agreement's terms, and its tier table when `tiers` is given (the whole table, replacing the
    old one). A price change from a date on is `price_agreement_change`."""
    agreement = lock_price_agreement(agreement)
    _apply(agreement, changes, AGREEMENT_FIELDS)
    if tiers is None:
        tiers = [tier_terms(tier) for tier in agreement.tiers.all()]
    checked_tiers = checked_tier_table(agreement.pricing_model, tiers)
    agreement = _save_agreement(agreement, actor=actor)
    price_tiers_replace(agreement, checked_tiers, actor=actor)
    return agreement


# --- Tier tables ------------------------------------------------------------------------------------------------

TIER_FIELDS = {"first_unit", "up_to", "unit_price", "flat_fee"}


def tier_terms(tier: PriceTier) -> dict[str, Any]:
    """A saved tier as the terms `checked_tier_table` takes."""
    return {"up_to": tier.up_to, "unit_price": tier.unit_price, "flat_fee": tier.flat_fee}


def _units(value: Decimal) -> str:
    return format_quantity(value)


def checked_tier_table(pricing_model: str, tiers: list[dict[str, Any]]) -> list[PriceTier]:
    """A tier table as unsaved PriceTier rows, or ValidationError({"tiers": [...]}) naming each bad tier.

    Tiers are given in order, each as `up_to` (None for the last, open-ended one), `unit_price` and `flat_fee`
    (default 0), optionally with `first_unit`: when given it must continue the tier before, either from its
    bound itself or from the next whole unit (10,000 then 10,001), so a gap or an overlap is caught.
    """
    if pricing_model not in PricingModel.tiered():
        if tiers:
            model = PricingModel(pricing_model).label.lower()
            raise ValidationError({"tiers": [f"A {model} agreement has no tiers; choose graduated or volume tiers."]})
        return []
    if not tiers:
        raise ValidationError({"tiers": ["Give at least one tier; the last one is open-ended."]})
    problems: list[str] = []
    rows: list[PriceTier] = []
    previous_bound = Decimal(0)
    for number, terms in enumerate(tiers, start=1):
        name = f"Tier {number}"
        if unknown := sorted(set(terms) - TIER_FIELDS):
            problems.append(f"{name}: unknown field {', '.join(unknown)}.")
            continue
        up_to, first_unit = terms.get("up_to"), terms.get("first_unit")
        tier = PriceTier(
            position=number,
            up_to=up_to,
            unit_price=terms.get("unit_price"),
            flat_fee=terms.get("flat_fee") if terms.get("flat_fee") is not None else Decimal("0"),
        )
        try:
            tier.clean_fields(exclude=["agreement"])
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                label = PriceTier._meta.get_field(field).verbose_name
                problems.extend(f"{name}, {label}: {message}" for message in messages)
            rows.append(tier)
            continue
        if previous_bound is None:
            problems.append(
                f"{name} follows the open-ended tier {number - 1}; remove it or give tier {number - 1} a bound."
            )
        else:
            if first_unit is not None and first_unit not in (previous_bound, previous_bound + 1):
                start = _units(previous_bound + 1)
                if first_unit > previous_bound + 1:
                    problems.append(f"{name} leaves a gap: it starts at {_units(first_unit)}, not at {start}.")
                else:
                    problems.append(
                        f"{name} overlaps tier {number - 1}: it starts at {_units(first_unit)}, not at {start}."
                    )
            if up_to is not None and up_to <= previous_bound:
                bound, given = _units(previous_bound), _units(up_to)
                problems.append(f"{name} overlaps tier {number - 1}: it must end above {bound}, not at {given}.")
        previous_bound = up_to
        rows.append(tier)
    if previous_bound is not None and not problems:
        problems.append(f"Tier {len(tiers)} is the last: leave its 'up to' empty so every unit has a price.")
    if problems:
        raise ValidationError({"tiers": problems})
    return rows


def price_tiers_replace(agreement: PriceAgreement, tiers: list[PriceTier], *, actor: User | None) -> None:
    """Put a table `checked_tier_table` made in place of the agreement's (nothing changes when it is the same)."""
    current = [tier_terms(tier) for tier in agreement.tiers.all()]
    if current == [tier_terms(tier) for tier in tiers]:
        return
    for old in agreement.tiers.all():
        old._history_user = actor
        old.delete()
    for tier in tiers:
        tier.agreement = agreement
        _save(tier, actor=actor)


# --- Minimum commitments ----------------------------------------------------------------------------------------


def _save_commitment(commitment: MinimumCommitment, *, actor: User | None) -> MinimumCommitment:
    # One writer at a time per customer, so two overlapping commitments cannot both pass the check.
    lock_customers([commitment.customer_id])
    return _save(commitment, actor=actor)


@transaction.atomic
def minimum_commitment_create(
    *,
    actor: User | None,
    customer: Customer,
    amount: Decimal,
    valid_from: date,
    valid_to: date | None = None,
    currency: str | None = None,
) -> MinimumCommitment:
    """A monthly minimum for `customer`, in the customer's currency (another is refused, never converted)."""
    commitment = MinimumCommitment(
        customer=customer,
        amount=amount,
        currency=currency or customer.currency,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    return _save_commitment(commitment, actor=actor)


COMMITMENT_FIELDS = {"amount", "currency", "valid_from", "valid_to"}


@transaction.atomic
def minimum_commitment_update(
    *, actor: User | None, commitment: MinimumCommitment, **changes: Any
) -> MinimumCommitment:
    lock_customers([commitment.customer_id])
    commitment = MinimumCommitment.objects.select_for_update().get(pk=commitment.pk)
    _apply(commitment, changes, COMMITMENT_FIELDS)
    return _save_commitment(commitment, actor=actor)


@transaction.atomic
def price_agreement_change(
    *,
    actor: User | None,
    agreement: PriceAgreement,
    effective_from: date,
    unit_price: Decimal,
    included_quantity: Decimal | None = None,
    monthly_fee: Decimal | None = None,
) -> PriceAgreement:
    """End `agreement` the day before `effective_from` and start its successor on that day."""
    agreement = lock_price_agreement(agreement)
    if effective_from <= agreement.valid_from:
        raise ValidationError({"effective_from": ["The new price must start after the current agreement starts."]})
    if agreement.valid_to is not None and effective_from > agreement.valid_to:
        raise ValidationError({"effective_from": ["The current agreement has already ended by then."]})
    successor_end = agreement.valid_to
    agreement.valid_to = effective_from - timedelta(days=1)
    _save_agreement(agreement, actor=actor)
    return price_agreement_create(
        actor=actor,
        customer=agreement.customer,
        service=agreement.service,
        unit_price=unit_price,
        included_quantity=agreement.included_quantity if included_quantity is None else included_quantity,
        monthly_fee=agreement.monthly_fee if monthly_fee is None else monthly_fee,
        valid_from=effective_from,
        valid_to=successor_end,
    )


@transaction.atomic
def portal_user_create(
    *, actor: User | None, customer: Customer, email: str, full_name: str, password: str | None = None
) -> PortalMembership:
    user = user_create(actor=actor, email=email, full_name=full_name, password=password, roles=[])
    membership = PortalMembership(user=user, customer=customer)
    return _save(membership, actor=actor)


def _deputy_permission():
    from django.contrib.auth.models import Permission

    return Permission.objects.get(content_type__app_label="catalog", codename="deputy_csm")


@transaction.atomic
def customer_deputy_add(*, actor: User | None, customer: Customer, user: User) -> CustomerUserObjectPermission:
    """Make `user` (in Customer Success) a deputy CSM of `customer`: they see and approve its bills and orders like
    its CSM (django-guardian's `deputy_csm` on the customer). Adding them again changes nothing."""
    customer = lock_customer(customer)
    if actor is not None and not actor.has_perm("catalog.share_customer"):
        raise NotAllowed("Only an Admin can give a customer deputy CSMs.")
    if not (user.is_staff and user.is_active and user.groups.filter(name=Role.CUSTOMER_SUCCESS).exists()):
        message = f"{user} is not an active Customer Success user; only they can be deputy CSMs."
        raise DomainError(message, fields={"user": [message]})
    if user.pk == customer.csm_id:
        message = f"{user} is already {customer.client_id}'s CSM."
        raise DomainError(message, fields={"user": [message]})
    permission = _deputy_permission()
    grant = CustomerUserObjectPermission.objects.filter(
        content_object=customer, user=user, permission=permission
    ).first()
    if grant is not None:
        return grant
    grant = CustomerUserObjectPermission(content_object=customer, user=user, permission=permission)
    grant._history_user = actor
    grant.save()
    return grant


@transaction.atomic
def customer_deputy_remove(*, actor: User | None, customer: Customer, user: User) -> bool:
    customer = lock_customer(customer)
    if actor is not None and not actor.has_perm("catalog.share_customer"):
        raise NotAllowed("Only an Admin can give a customer deputy CSMs.")
    grant = CustomerUserObjectPermission.objects.filter(
        content_object=customer, user=user, permission=_deputy_permission()
    ).first()
    if grant is None:
        return False
    grant._history_user = actor
    grant.delete()
    return True
