from decimal import Decimal

import factory

from catalog.tests.factories import CustomerFactory
from orders.models import Company, DocumentType, OrderType, OrderTypeDocument, Registrar


class DocumentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentType

    code = factory.Sequence(lambda n: f"doc_{n}")
    name = factory.Sequence(lambda n: f"Document {n}")
    accepted_kinds = "pdf,jpeg,png"


class OrderTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderType

    code = factory.Sequence(lambda n: f"type_{n}")
    name = factory.Sequence(lambda n: f"Order type {n}")
    default_fee = Decimal("1000.00")
    default_base_charge = Decimal("120.00")
    target_duration_days = 14


class RequirementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderTypeDocument

    order_type = factory.SubFactory(OrderTypeFactory)
    document_type = factory.SubFactory(DocumentTypeFactory)
    required = True


class RegistrarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Registrar

    name = factory.Sequence(lambda n: f"Registrar {n}")
    jurisdiction = "GB"


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    registration_number = factory.Sequence(lambda n: f"{n:08d}")
    jurisdiction = "GB"
    registrar = factory.SubFactory(RegistrarFactory)
    customer = factory.SubFactory(CustomerFactory)
