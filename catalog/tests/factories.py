from datetime import date
from decimal import Decimal

import factory

from accounts.tests.factories import UserFactory
from catalog.models import Customer, Partner, PortalMembership, PriceAgreement, Service


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name} Limited")
    client_id = factory.Sequence(lambda n: f"CUST-{n:03d}")
    billing_email = factory.Sequence(lambda n: f"billing{n}@customer.example")
    currency = "EUR"
    start_date = date(2026, 1, 1)


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    code = factory.Sequence(lambda n: f"service_{n}")
    name = factory.Sequence(lambda n: f"Service {n}")
    unit_label = "check"
    category = Service.Category.KYC


class PriceAgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceAgreement

    customer = factory.SubFactory(CustomerFactory)
    service = factory.SubFactory(ServiceFactory)
    unit_price = Decimal("0.050000")
    valid_from = date(2026, 1, 1)


class PortalMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PortalMembership

    user = factory.SubFactory(UserFactory, is_staff=False)
    customer = factory.SubFactory(CustomerFactory)
