"""Request bodies the API cannot read whole answer 400 (415, 413) in its error format and change nothing."""

import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory
from ledger.models import Invoice, Payment
from ledger.services.invoices import invoice_create_manual

pytestmark = pytest.mark.django_db

BOUNDARY = "BoUnDaRy"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def field(name: str, value: str) -> str:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'


@pytest.fixture
def draft(db) -> Invoice:
    customer = CustomerFactory(client_id="ACME", currency="EUR")
    return invoice_create_manual(
        actor=None, customer=customer, lines=[{"description": "Setup", "quantity": Decimal(1), "unit_price": 10}]
    )


@pytest.fixture
def finance(client_for, make_user) -> APIClient:
    return client_for(make_user(Role.FINANCE))


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def issue(client: APIClient, draft: Invoice, body: bytes | str, content_type: str):
    return client.generic("POST", f"/api/invoices/{draft.pk}/issue", body, content_type=content_type)


def assert_still_a_draft(draft: Invoice) -> None:
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.Status.DRAFT, None)


# --- JSON ---------------------------------------------------------------------------------------------------------

JSON_REFUSED = {
    "nested too deep": "[" * 5000,
    "nested too deep, closed": "[" * 5000 + "]" * 5000,
    "objects nested too deep": '{"a":' * 5000 + "1" + "}" * 5000,
    "invalid JSON": '{"send": fals',
    "invalid UTF-8": b'{"send": "\xff\xfe"}',
    "lone surrogate": '{"send": "\\ud800"}',
    "lone surrogate as a key": '{"\\udfff": true}',
    "NaN": '{"send": NaN}',
}


@pytest.mark.parametrize("body", JSON_REFUSED.values(), ids=JSON_REFUSED.keys())
def test_a_json_body_that_cannot_be_read_is_a_parse_error(finance, draft, body):
    error = error_of(issue(finance, draft, body, "application/json"), 400)

    assert error["code"] == "parse_error"
    assert error["message"].startswith("JSON parse error - ")
    assert_still_a_draft(draft)


def test_too_deep_a_body_says_so(finance, draft):
    error = error_of(issue(finance, draft, "[" * 5000, "application/json"), 400)

    assert error["message"] == "JSON parse error - the body is nested too deeply."


def test_a_body_nested_just_below_the_parsers_limit_is_refused_by_the_fields_not_a_500(finance):
    body = {"customer": 1, "amount": "1.00", "note": json.loads("[" * 800 + "]" * 800)}

    response = finance.post("/api/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="deep-1")

    assert error_of(response, 400)["code"] == "invalid"
    assert not Payment.objects.exists()


def test_a_well_formed_surrogate_pair_is_a_character(finance, draft):
    response = finance.post(
        "/api/payments",
        '{"customer": 1, "amount": "1.00", "note": "\\ud83d\\udcb6"}',
        content_type="application/json",
    )

    assert "note" not in error_of(response, 400)["fields"]  # refused for its customer, not for its text


# --- Forms --------------------------------------------------------------------------------------------------------

MULTIPART_REFUSED = {
    "no boundary in the Content-Type": ("send=false", "multipart/form-data"),
    "garbage": ("garbage", MULTIPART),
    "no closing boundary": (field("send", "false").rstrip("\r\n"), MULTIPART),
    "cut short after the boundary": (field("send", "false") + f"--{BOUNDARY}", MULTIPART),
    "a part without headers": (f"--{BOUNDARY}\r\nfalse\r\n--{BOUNDARY}--\r\n", MULTIPART),
    "a part without a name": (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nfalse\r\n--{BOUNDARY}--\r\n",
        MULTIPART,
    ),
    "only the closing boundary": (f"--{BOUNDARY}--\r\n", MULTIPART),
    "a file": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="send"; filename="send.txt"\r\n\r\nfalse\r\n'
        f"--{BOUNDARY}--\r\n",
        MULTIPART,
    ),
    "invalid UTF-8": (
        field("send", "f\udcffalse").encode("utf-8", "surrogateescape") + f"--{BOUNDARY}--\r\n".encode(),
        MULTIPART,
    ),
}


@pytest.mark.parametrize(("body", "content_type"), MULTIPART_REFUSED.values(), ids=MULTIPART_REFUSED.keys())
def test_a_malformed_multipart_body_is_a_parse_error_and_issues_nothing(finance, draft, body, content_type):
    error = error_of(issue(finance, draft, body, content_type), 400)

    assert error["code"] == "parse_error"
    assert error["message"].startswith("Multipart form parse error - ")
    assert_still_a_draft(draft)


def test_a_well_formed_multipart_body_is_read(finance, draft):
    body = field("send", "false") + field("note", "line one\r\nline two") + f"--{BOUNDARY}--\r\n"

    response = issue(finance, draft, body, MULTIPART)

    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.ISSUED


def test_a_multipart_body_is_read_whole_with_a_session_and_its_csrf_token(make_user, draft):
    """Django's CSRF check reads a form POST before DRF does; the API's parser still sees the body whole."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user(Role.FINANCE))
    token = "A" * 32
    client.cookies["csrftoken"] = token
    body = field("csrfmiddlewaretoken", token) + field("send", "false")  # cut short: no closing boundary

    error = error_of(issue(client, draft, body, MULTIPART), 400)

    assert error["code"] == "parse_error"
    assert_still_a_draft(draft)
    closed = body + f"--{BOUNDARY}--\r\n"
    assert issue(client, draft, closed, MULTIPART).status_code == 200  # the token was accepted


def test_an_urlencoded_body_that_is_not_utf8_is_a_parse_error(finance, draft):
    error = error_of(issue(finance, draft, b"send=f%FFalse&x=\xff", "application/x-www-form-urlencoded"), 400)

    assert error["code"] == "parse_error"
    assert_still_a_draft(draft)


# --- Media type and size ------------------------------------------------------------------------------------------


def test_an_unsupported_media_type_is_a_415(finance, draft):
    error = error_of(issue(finance, draft, "send=false", "text/plain"), 415)

    assert error["code"] == "unsupported_media_type"
    assert_still_a_draft(draft)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"send": False, "padding": "x" * 2000}), "application/json"),
        ("send=false&padding=" + "x" * 2000, "application/x-www-form-urlencoded"),
        (field("send", "false") + field("padding", "x" * 2000) + f"--{BOUNDARY}--\r\n", MULTIPART),
    ],
    ids=["json", "urlencoded", "multipart"],
)
def test_a_body_over_the_size_limit_is_a_413(finance, draft, settings, body, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    error = error_of(issue(finance, draft, body, content_type), 413)

    assert error["code"] == "request_too_large"
    assert_still_a_draft(draft)


# --- A call that takes no body ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(None, None), ("", "application/json"), ("{}", "application/json")],
    ids=["none", "empty", "empty object"],
)
def test_signing_out_accepts_no_body_or_an_empty_json_object(api_client, finance_user, body, content_type):
    api_client.force_login(finance_user)

    response = api_client.generic("DELETE", "/api/session", body or "", content_type=content_type)

    assert response.status_code == 204
    assert api_client.get(f"/api/users/{finance_user.pk}").status_code in (401, 403)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"everywhere": true}', "application/json"),
        ("[]", "application/json"),
        ("null", "application/json"),
        ('"everywhere"', "application/json"),
    ],
)
def test_signing_out_refuses_a_body(api_client, finance_user, body, content_type):
    api_client.force_login(finance_user)

    error = error_of(api_client.generic("DELETE", "/api/session", body, content_type=content_type), 400)

    assert error["code"] == "unexpected_body"
    assert error["message"] == "DELETE /api/session takes no body; send none, or {} as JSON."
