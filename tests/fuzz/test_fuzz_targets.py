"""The fuzzer's real ids cover every path of the schema that holds an id, with the demo's data."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from catalog.services import customer_deputy_add
from catalog.tests.factories import CustomerFactory
from fixtures.demo import seed_demo
from orders.models import Order
from orders.services.documents import document_upload
from orders.services.orders import order_create
from orders.services.sharing import order_share
from orders.services.tasks import task_create
from orders.tests.conftest import pdf_bytes
from orders.tests.factories import CompanyFactory, DocumentTypeFactory, OrderTypeFactory, RequirementFactory
from tests.fuzz import prepare

pytestmark = pytest.mark.django_db


def order_desk_if_the_demo_has_none() -> None:
    """One order with a document file, a task, a sharing grant and a deputy CSM, when the demo holds no orders."""
    if Order.objects.exists():
        return
    order_type = OrderTypeFactory()
    RequirementFactory(order_type=order_type, document_type=DocumentTypeFactory(accepted_kinds="pdf"))
    customer = CustomerFactory()
    CompanyFactory(customer=customer)
    staff = UserFactory(roles=[Role.OPERATIONS])
    order = order_create(actor=staff, customer=customer, order_type=order_type)
    upload = SimpleUploadedFile("passport.pdf", pdf_bytes(), content_type="application/pdf")
    document_upload(actor=staff, document=order.documents.get(), upload=upload)
    task_create(actor=staff, order=order, title="Call the registrar")
    order_share(actor=None, order=order, user=UserFactory(roles=[Role.OPERATIONS], shared_only=True))
    customer_deputy_add(actor=None, customer=customer, user=UserFactory(roles=[Role.CUSTOMER_SUCCESS]))


def test_every_path_with_an_id_gets_the_demos_ids(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    seed_demo()
    order_desk_if_the_demo_has_none()
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    targets = prepare.targets()

    assert set(targets) == {path for path in paths if "{" in path}
    for path, choices in targets.items():
        assert choices, path
        for choice in choices:
            assert set(choice) == {part.strip("{}") for part in path.split("/") if part.startswith("{")}, path
    assert len(targets["/api/bills/{id}/approval-attachments/{action_id}"]) >= 2  # with a file, and one without
    assert all(prepare.body_values().values())


def test_each_role_file_holds_a_token_that_signs_in(settings, tmp_path, client):
    settings.MEDIA_ROOT = tmp_path / "media"
    seed_demo()

    prepare.main(tmp_path)

    for role in prepare.ROLES:
        token = json.loads((tmp_path / f"{role}.json").read_text())["token"]
        me = client.get("/api/invoices", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, (role, me.content)
