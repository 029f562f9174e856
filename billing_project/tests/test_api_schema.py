"""The OpenAPI schema tells the truth: real responses of the API, good and bad, conform to it.

Responses are checked with the same schemathesis checks that `make fuzz` runs, through the WSGI
application, on the demo data.
"""

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.drainage import reset_generator_stats
from drf_spectacular.generators import SchemaGenerator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from accounts.services import api_token_create
from approvals.models import ApprovalAction
from billing_project.wsgi import application
from catalog.models import Customer
from fixtures.demo import PORTAL_EMAIL, seed_demo
from ledger.models import Invoice

pytestmark = pytest.mark.django_db

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ERROR = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def api(settings):
    """api(method, path, as_user=..., **case parts) -> the response, after checking that it conforms to the schema."""
    settings.ALLOWED_HOSTS = ["localhost"]
    # As Django's test client does: the test's own database connection must outlive each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    tokens: dict[str, str] = {}

    def call(method: str, path: str, *, as_user: str | None, headers: dict | None = None, **parts):
        headers = dict(headers or {})
        if as_user is not None:
            if as_user not in tokens:
                tokens[as_user] = api_token_create(actor=None, user=User.objects.get(email=as_user), name="test")[1]
            headers["Authorization"] = f"Bearer {tokens[as_user]}"
        if "body" in parts:
            parts.setdefault("media_type", "application/json")
        case = schema[path][method].Case(headers=headers, **parts)
        response = case.call()
        case.validate_response(response, checks=CONFORMANCE)
        return response

    yield call
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def demo(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    seed_demo()


ADMIN = "admin@countinghouse.example"
FINANCE = "finance@countinghouse.example"
OPERATIONS = "ops@countinghouse.example"


def _operations():
    reset_generator_stats()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_validates_without_warnings(tmp_path):
    reset_generator_stats()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_documents_its_refusals_in_the_error_format():
    operations = dict(_operations())
    assert {
        "POST /api/payments",
        "PATCH /api/bills/{id}/approve",
        "GET /api/usage",
        "POST /api/orders",
        "POST /api/orders/{id}/transition",
        "POST /api/orders/{order_pk}/documents",
        "POST /api/orders/{order_pk}/documents/{document_pk}/review",
        "GET /api/orders/{order_pk}/documents/{document_pk}/files/{file_pk}/download",
        "PATCH /api/orders/{order_pk}/tasks/{task_pk}",
        "POST /api/orders/{order_pk}/comments",
        "DELETE /api/orders/{order_pk}/access/{user_pk}",
        "GET /api/orders/{order_pk}/expenses",
        "POST /api/orders/{order_pk}/expenses",
        "POST /api/orders/{order_pk}/expenses/{expense_pk}/reverse",
        "GET /api/orders/{order_pk}/expenses/{expense_pk}/receipt",
        "POST /api/customers/{id}/deputies",
        "GET /api/companies",
        "PATCH /api/partners/{id}",
        "POST /api/revenue-share-agreements",
        "PATCH /api/revenue-share-agreements/{id}",
    } <= set(operations)
    for name, operation in operations.items():
        responses = operation["responses"]
        parameters = operation.get("parameters", [])
        where = {parameter["in"] for parameter in parameters}
        names = {parameter["name"] for parameter in parameters}
        expected = {"401", "403"}
        if name.startswith(("POST", "PATCH")) or "query" in where:
            expected.add("400")
        if "path" in where or {"page", "cursor"} & names:
            expected.add("404")
        if "Idempotency-Key" in names:
            expected.add("409")
        for status in expected:
            assert status in responses, f"{name} does not document {status}"
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == ERROR or schema["$ref"].endswith("Rejected"), (name, status)
        for parameter in parameters:
            if parameter["in"] == "query" and not parameter.get("required"):
                assert parameter["allowEmptyValue"], (name, parameter["name"])


def test_bodies_say_which_lists_must_not_be_empty_and_what_an_event_holds():
    reset_generator_stats()
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert components["UserCreateRequest"]["properties"]["roles"]["minItems"] == 1
    events = components["UsageEventBatchRequest"]["properties"]["events"]
    assert events["minItems"] == 1 and events["items"] == {"$ref": "#/components/schemas/UsageEventRequest"}
    assert set(components["UsageEventRequest"]["required"]) == {"serviceName", "clientId", "quantity", "serviceTime"}


def test_usage_pages_are_the_ones_documented(demo, api):
    records = api("GET", "/api/usage", as_user=FINANCE, query={"page_size": 5}).json()
    assert set(records) == {"next", "previous", "results"} and len(records["results"]) == 5
    assert "cursor=" in records["next"]

    totals = api("GET", "/api/usage", as_user=FINANCE, query={"group_by": "month", "page_size": ""}).json()
    assert totals["count"] == len(totals["results"]) > 0

    refused = api("GET", "/api/usage", as_user=FINANCE, query={"page_size": 1001}).json()
    assert refused["error"]["fields"] == {"page_size": ["Enter a whole number from 1 to 1000."]}


def test_refusals_are_the_ones_documented(demo, api):
    draft = Invoice.objects.filter(status=Invoice.Status.DRAFT).first()
    acme = Customer.objects.get(client_id="ACME-001")

    assert api("GET", "/api/invoices", as_user=None).json()["error"]["code"] == "not_authenticated"
    assert api("GET", "/api/invoices", as_user=OPERATIONS).json()["error"]["code"] == "permission_denied"
    assert api("GET", "/api/invoices/{id}", as_user=ADMIN, path_parameters={"id": 10**9}).status_code == 404
    assert api("GET", "/api/invoices", as_user=ADMIN, query={"page": 99}).status_code == 404
    for query in ({"customer": "2.5"}, {"customer": "0"}, {"customer": str(2**63)}):
        assert set(api("GET", "/api/invoices", as_user=ADMIN, query=query).json()["error"]["fields"]) == {"customer"}
    assert set(api("GET", "/api/services", as_user=ADMIN, query={"active": "maybe"}).json()["error"]["fields"]) == {
        "active"
    }
    assert api("GET", "/api/transactions", as_user=ADMIN, query={"page_size": 0}).status_code == 400
    credit = api(
        "POST",
        "/api/invoices/{id}/credit-notes",
        as_user=FINANCE,
        path_parameters={"id": draft.pk},
        body={"reason": "x"},
    )
    assert credit.json()["error"]["code"] == "invoice_not_editable"

    key = {"Idempotency-Key": "once"}
    body = {"customer": acme.pk, "period": "2026-12"}
    assert api("POST", "/api/invoices", as_user=FINANCE, headers=key, body=body).status_code == 201
    replay = api("POST", "/api/invoices", as_user=FINANCE, headers=key, body=body)
    assert replay.headers["idempotency-key-replayed"] == ["true"]
    reused = api("POST", "/api/invoices", as_user=FINANCE, headers=key, body={**body, "period": "2026-11"})
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    too_long = api("POST", "/api/invoices", as_user=FINANCE, headers={"Idempotency-Key": "k" * 256}, body=body)
    assert too_long.json()["error"]["code"] == "invalid_idempotency_key"

    events = [{"serviceName": "kyc_basic", "clientId": "ACME-001", "quantity": "x", "serviceTime": "2026-12-01"}]
    rejected = api("POST", "/api/usage/events", as_user=FINANCE, body={"events": events}).json()["error"]
    assert rejected["code"] == "usage_rejected" and rejected["rows"][0]["column"] == "quantity"

    wrong = api("POST", "/api/session", as_user=None, body={"email": PORTAL_EMAIL, "password": "wrong"})
    assert wrong.json()["error"]["code"] == "invalid_credentials"


def test_approval_attachments_are_served_as_documented(demo, api):
    action = ApprovalAction.objects.exclude(attachment="").select_related("request").first()
    response = api(
        "GET",
        "/api/invoices/{id}/approval-attachments/{action_id}",
        as_user=FINANCE,
        path_parameters={"id": action.request.target_id, "action_id": action.pk},
    )
    assert response.status_code == 200 and response.headers["content-type"] == ["text/csv"]
    assert response.content.startswith(b"description,quantity,amount\n")


def test_empty_query_values_mean_not_filtered(demo, api):
    everything = api("GET", "/api/invoices", as_user=ADMIN).json()
    empty = {"customer": "", "status": "", "period": "", "page": ""}
    assert api("GET", "/api/invoices", as_user=ADMIN, query=empty).json() == everything
    services = api("GET", "/api/services", as_user=ADMIN).json()
    assert api("GET", "/api/services", as_user=ADMIN, query={"active": ""}).json() == services
    assert api("GET", "/api/services", as_user=ADMIN, query={"active": "false"}).json()["count"] == 0


def test_an_address_the_api_does_not_have_answers_in_the_error_format(client):
    response = client.get("/api/invoices/1.5")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/nowhere").headers["Content-Type"].startswith("text/html")
