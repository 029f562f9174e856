from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog import services
from catalog.models import PriceAgreement
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
