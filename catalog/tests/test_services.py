from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.roles import Role
from catalog import services
from catalog.models import Customer, PriceAgreement
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_overlapping_agreement_is_refused_by_the_service(finance_user):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    with pytest.raises(ValidationError) as error:
        services.price_agreement_create(
            actor=finance_user,
            customer=existing.customer,
            service=existing.service,
            unit_price=Decimal("0.04"),
            valid_from=date(2026, 6, 30),
        )
    assert "valid_from" in error.value.message_dict
    assert PriceAgreement.objects.count() == 1


def test_price_change_ends_the_old_agreement_and_starts_a_new_one(finance_user):
    agreement = PriceAgreementFactory(valid_from=date(2026, 1, 1), unit_price=Decimal("0.05"))
    successor = services.price_agreement_change(
        actor=finance_user, agreement=agreement, effective_from=date(2026, 11, 16), unit_price=Decimal("0.04")
    )
    agreement.refresh_from_db()
    assert agreement.valid_to == date(2026, 11, 15)
    assert agreement.unit_price == Decimal("0.05")
    assert (successor.valid_from, successor.valid_to, successor.unit_price) == (
        date(2026, 11, 16),
        None,
        Decimal("0.04"),
    )


def test_agreement_for_an_inactive_service_is_refused(finance_user):
    with pytest.raises(ValidationError) as error:
        services.price_agreement_create(
            actor=finance_user,
            customer=CustomerFactory(),
            service=ServiceFactory(active=False),
            unit_price=Decimal("1"),
            valid_from=date(2026, 1, 1),
        )
    assert "service" in error.value.message_dict


def test_history_records_the_acting_user(finance_user):
    customer = services.customer_create(actor=finance_user, name="Acme", client_id="ACME-1", currency="EUR")
    services.customer_update(actor=finance_user, customer=customer, billing_email="ap@acme.example")
    latest = customer.history.latest()
    assert latest.history_user == finance_user
    assert latest.billing_email == "ap@acme.example"
    assert customer.history.count() == 2


# A customer whose bills wait for its CSM has one (issue 10, point 4).


def test_requiring_csm_approval_without_a_csm_is_refused_naming_the_field(finance_user):
    with pytest.raises(ValidationError) as error:
        services.customer_create(
            actor=finance_user, name="Soylent", client_id="SOYLENT-010", currency="USD", require_csm_approval=True
        )
    assert error.value.message_dict == {
        "require_csm_approval": [
            "SOYLENT-010 has no CSM to approve its bills: choose its CSM, or untick “require CSM approval”."
        ]
    }
    assert not Customer.objects.exists()


def test_ticking_require_csm_approval_on_a_customer_without_a_csm_is_refused(finance_user):
    customer = CustomerFactory(client_id="SOYLENT-010", csm=None)

    with pytest.raises(ValidationError) as error:
        services.customer_update(actor=finance_user, customer=customer, require_csm_approval=True)

    assert list(error.value.message_dict) == ["require_csm_approval"]
    customer.refresh_from_db()
    assert customer.require_csm_approval is False


def test_taking_the_csm_away_from_a_customer_that_requires_csm_approval_is_refused(finance_user, make_user):
    customer = CustomerFactory(csm=make_user(Role.CUSTOMER_SUCCESS), require_csm_approval=True)

    with pytest.raises(ValidationError, match="untick “require CSM approval”"):
        services.customer_update(actor=finance_user, customer=customer, csm=None)

    customer.refresh_from_db()
    assert customer.csm is not None


def test_a_customer_with_its_csm_may_require_csm_approval_and_one_without_may_not_require_it(finance_user, make_user):
    with_csm = services.customer_create(
        actor=finance_user,
        name="Acme",
        client_id="ACME-1",
        currency="EUR",
        csm=make_user(Role.CUSTOMER_SUCCESS),
        require_csm_approval=True,
    )
    without = services.customer_create(actor=finance_user, name="Beta", client_id="BETA-2", currency="EUR")

    assert with_csm.require_csm_approval is True
    assert services.customer_update(actor=finance_user, customer=without, csm=None).csm is None
