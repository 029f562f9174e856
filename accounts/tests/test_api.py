import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiToken, User
from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import Customer

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    return response.json()["error"]


def sign_in(client, email: str, password: str, **extra):
    return client.post("/api/session", {"email": email, "password": password}, format="json", **extra)


# --- Session sign-in and sign-out -------------------------------------------------------------------------------


def test_session_sign_in_then_read_then_sign_out(finance_user, api_client):
    response = sign_in(api_client, finance_user.email, PASSWORD)

    assert response.status_code == 200, response.content
    assert response.json()["id"] == finance_user.pk
    assert response.json()["roles"] == [Role.FINANCE]
    assert api_client.get(f"/api/users/{finance_user.pk}").status_code == 200
    assert api_client.get("/api/customers").status_code == 200

    assert api_client.delete("/api/session").status_code == 204
    assert api_client.get("/api/customers").status_code == 401


def test_sign_in_ignores_the_email_case(finance_user, api_client):
    assert sign_in(api_client, finance_user.email.upper(), PASSWORD).status_code == 200


def test_wrong_password_is_refused_and_opens_no_session(finance_user, api_client):
    response = sign_in(api_client, finance_user.email, "not the password")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_credentials"
    assert api_client.get("/api/customers").status_code == 401


def test_inactive_user_cannot_sign_in(api_client):
    user = UserFactory(is_active=False, roles=[Role.FINANCE])

    response = sign_in(api_client, user.email, PASSWORD)

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_credentials"


def test_sign_in_body_is_validated(api_client):
    response = api_client.post("/api/session", {"email": "not-an-email"}, format="json")

    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"email", "password"}


def test_sign_in_accepts_only_json(finance_user, api_client):
    """A cross-site HTML form can post form data but not JSON: refusing form data stops login CSRF."""
    response = api_client.post("/api/session", {"email": finance_user.email, "password": PASSWORD})

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert api_client.get("/api/customers").status_code == 401


def test_repeated_failures_lock_the_account_for_that_address(finance_user, api_client):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert error_of(sign_in(api_client, finance_user.email, "wrong"))["code"] == "invalid_credentials"
    # The failure that reaches the limit is the first one refused as locked out.
    assert error_of(sign_in(api_client, finance_user.email, "wrong"))["code"] == "locked_out"

    response = sign_in(api_client, finance_user.email, PASSWORD)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert error_of(response)["code"] == "locked_out"
    assert api_client.get("/api/customers").status_code == 401
    # The lock is on the email and the address together: the same person elsewhere still gets in.
    assert sign_in(api_client, finance_user.email, PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_a_success_before_the_limit_resets_the_failure_count(finance_user, api_client):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(api_client, finance_user.email, "wrong")
    assert sign_in(api_client, finance_user.email, PASSWORD).status_code == 200
    api_client.delete("/api/session")

    assert error_of(sign_in(api_client, finance_user.email, "wrong"))["code"] == "invalid_credentials"
    assert sign_in(api_client, finance_user.email, PASSWORD).status_code == 200


def test_a_signed_in_session_needs_the_csrf_token_to_write(finance_user):
    client = APIClient(enforce_csrf_checks=True)
    assert sign_in(client, finance_user.email, PASSWORD).status_code == 200
    body = {"name": "Acme", "client_id": "ACME"}

    refused = client.post("/api/customers", body, format="json")
    accepted = client.post("/api/customers", body, format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)

    assert refused.status_code == 403
    assert "CSRF" in error_of(refused)["message"]
    assert accepted.status_code == 201, accepted.content


# --- API tokens -------------------------------------------------------------------------------------------------


def bearer(raw_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


@pytest.fixture
def token(finance_user):
    return services.api_token_create(actor=None, user=finance_user, name="usage uploader")


def test_valid_token_authenticates_and_is_marked_used(token, api_client):
    api_token, raw_key = token

    response = api_client.get("/api/customers", **bearer(raw_key))

    assert response.status_code == 200, response.content
    api_token.refresh_from_db()
    assert api_token.last_used_at is not None


def test_token_acts_as_its_user(token, api_client):
    api_token, raw_key = token

    response = api_client.post(
        "/api/customers", {"name": "Acme", "client_id": "ACME"}, format="json", **bearer(raw_key)
    )

    assert response.status_code == 201, response.content
    customer = Customer.objects.get(client_id="ACME")
    assert customer.history.latest().history_user == api_token.user


def test_revoked_token_is_refused(token, api_client):
    api_token, raw_key = token
    services.api_token_revoke(actor=None, token=api_token)

    response = api_client.get("/api/customers", **bearer(raw_key))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["code"] == "authentication_failed"


def test_expired_token_is_refused(finance_user, api_client):
    _, raw_key = services.api_token_create(
        actor=None, user=finance_user, name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert api_client.get("/api/customers", **bearer(raw_key)).status_code == 401


def test_a_token_needs_no_csrf_token(token):
    _, raw_key = token
    client = APIClient(enforce_csrf_checks=True)

    response = client.post("/api/customers", {"name": "Acme", "client_id": "ACME"}, format="json", **bearer(raw_key))

    assert response.status_code == 201, response.content


def test_token_of_a_deactivated_user_is_refused(token, api_client):
    api_token, raw_key = token
    User.objects.filter(pk=api_token.user_id).update(is_active=False)

    assert api_client.get("/api/customers", **bearer(raw_key)).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer ch_nothing_here", "Bearer not-a-token"],
)
def test_malformed_or_unknown_bearer_header_is_refused(header, token, api_client):
    response = api_client.get("/api/customers", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_a_tampered_key_with_a_real_prefix_is_refused(token, api_client):
    _, raw_key = token

    assert (
        api_client.get("/api/customers", **bearer(raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B"))).status_code
        == 401
    )


def test_the_raw_key_is_not_stored(token):
    api_token, raw_key = token
    secret = raw_key.split("_", 2)[2]  # the part after "ch_<prefix>_", which may itself hold underscores

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored_rows = cursor.fetchall()
        cursor.execute("SELECT * FROM accounts_historicalapitoken")
        history_rows = cursor.fetchall()
    stored = repr(stored_rows + history_rows)
    assert len(stored_rows) == 1
    assert raw_key not in stored
    assert secret not in stored
    assert ApiToken.objects.get().key_hash != raw_key


# --- Users ------------------------------------------------------------------------------------------------------


def test_admin_creates_a_user_in_the_given_roles(admin_user, api_client):
    api_client.force_login(admin_user)
    body = {
        "email": "Sam@Example.com",
        "full_name": "Sam Seller",
        "password": "a long enough passphrase",
        "roles": [Role.SALES, Role.CUSTOMER_SUCCESS],
    }

    response = api_client.post("/api/users", body, format="json")

    assert response.status_code == 201, response.content
    user = User.objects.get(email="sam@example.com")
    assert response.json()["id"] == user.pk
    assert sorted(response.json()["roles"]) == [Role.CUSTOMER_SUCCESS, Role.SALES]
    assert set(user.groups.values_list("name", flat=True)) == {Role.SALES, Role.CUSTOMER_SUCCESS}
    assert user.is_staff
    assert user.check_password("a long enough passphrase")
    assert "password" not in response.json()


def test_admin_creates_a_user_without_password_who_cannot_sign_in(admin_user, api_client):
    api_client.force_login(admin_user)

    response = api_client.post(
        "/api/users", {"email": "ops@example.com", "full_name": "Ops", "roles": [Role.OPERATIONS]}, format="json"
    )

    assert response.status_code == 201, response.content
    assert not User.objects.get(email="ops@example.com").has_usable_password()


def test_finance_cannot_create_users(finance_user, api_client):
    api_client.force_login(finance_user)

    response = api_client.post(
        "/api/users", {"email": "x@example.com", "full_name": "X", "roles": [Role.ADMIN]}, format="json"
    )

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "taken@example.com", "full_name": "Dup", "roles": ["Sales"]}, "email"),
        ({"email": "TAKEN@example.com", "full_name": "Dup", "roles": ["Sales"]}, "email"),
        ({"email": "new@example.com", "full_name": "New", "roles": ["Janitor"]}, "roles"),
        ({"email": "new@example.com", "full_name": "New", "roles": []}, "roles"),
        ({"email": "new@example.com", "full_name": "New", "password": "short", "roles": ["Sales"]}, "password"),
    ],
)
def test_invalid_user_is_refused_naming_the_field(body, field, admin_user, api_client):
    UserFactory(email="taken@example.com")
    users_before = User.objects.count()
    api_client.force_login(admin_user)

    response = api_client.post("/api/users", body, format="json")

    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]
    assert User.objects.count() == users_before


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_password_is_refused_naming_the_field(password, admin_user, api_client):
    """The schema says minLength 1: an empty password is not "no password" (leave the field out for that)."""
    api_client.force_login(admin_user)
    body = {"email": "new@example.com", "full_name": "New", "password": password, "roles": [Role.SALES]}

    response = api_client.post("/api/users", body, format="json")

    assert response.status_code == 400, response.content
    assert list(error_of(response)["fields"]) == ["password"]
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.parametrize("body_format", ["multipart", "form"])
def test_user_creation_takes_json_only(body_format, admin_user, api_client):
    """A form's empty `password=` used to read as "no password given" and made a user with none."""
    api_client.force_login(admin_user)
    body = {"email": "new@example.com", "full_name": "New", "password": "", "roles": Role.SALES}
    if body_format == "form":
        response = api_client.post("/api/users", urlencode(body), content_type="application/x-www-form-urlencoded")
    else:
        response = api_client.post("/api/users", body, format="multipart")

    assert response.status_code == 415, response.content
    assert error_of(response)["code"] == "unsupported_media_type"
    assert not User.objects.filter(email="new@example.com").exists()


def test_the_service_refuses_an_empty_password():
    with pytest.raises(ValidationError) as refused:
        services.user_create(actor=None, email="new@example.com", full_name="New", password="", roles=[Role.SALES])

    assert list(refused.value.message_dict) == ["password"]
    assert not User.objects.filter(email="new@example.com").exists()


def test_user_reads_themselves(portal_user, api_client):
    api_client.force_login(portal_user)

    response = api_client.get(f"/api/users/{portal_user.pk}")

    assert response.status_code == 200
    assert response.json()["customer"] == portal_user.portal_membership.customer_id
    assert response.json()["roles"] == []


@pytest.mark.parametrize("role", [None, Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_someone_elses_user_answers_404_without_the_view_permission(role, make_user, portal_user, api_client):
    caller = portal_user if role is None else make_user(role)
    other = UserFactory()
    api_client.force_login(caller)

    response = api_client.get(f"/api/users/{other.pk}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE])
def test_user_with_the_view_permission_reads_other_users(role, make_user, api_client):
    other = UserFactory(roles=[Role.SALES])
    api_client.force_login(make_user(role))

    response = api_client.get(f"/api/users/{other.pk}")

    assert response.status_code == 200
    assert (response.json()["email"], response.json()["roles"]) == (other.email, [Role.SALES])


def test_malformed_json_is_a_parse_error(admin_user, api_client):
    api_client.force_login(admin_user)

    response = api_client.post("/api/users", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_unknown_user_answers_404_in_the_error_format(admin_user, api_client):
    api_client.force_login(admin_user)

    response = api_client.get("/api/users/999999")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("caller", ["portal", Role.OPERATIONS])
def test_a_hidden_user_and_a_missing_one_answer_alike(caller, make_user, portal_user, api_client):
    """Two answers would tell a caller which ids exist."""
    api_client.force_login(portal_user if caller == "portal" else make_user(caller))
    hidden = UserFactory()

    answer_hidden = api_client.get(f"/api/users/{hidden.pk}")
    answer_missing = api_client.get(f"/api/users/{hidden.pk + 1000}")

    assert answer_hidden.status_code == answer_missing.status_code == 404
    assert answer_hidden.json() == answer_missing.json()


# --- Schema and docs --------------------------------------------------------------------------------------------


def test_schema_is_a_valid_openapi_document(api_client):
    response = api_client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert {"/api/session", "/api/users", "/api/customers/{id}", "/api/price-agreements"} <= set(schema["paths"])
    assert "apiToken" in schema["components"]["securitySchemes"]
    # Only customers can be changed; services and agreements are not.
    assert "patch" in schema["paths"]["/api/customers/{id}"]
    assert "patch" not in schema["paths"]["/api/services/{id}"]
    assert "patch" not in schema["paths"]["/api/price-agreements/{id}"]


def test_docs_page_loads_only_local_sidecar_assets(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert assets
    assert not [url for url in assets if re.match(r"(https?:)?//", url)], assets
    assert not re.search(r"https?://[^\s\"']*(unpkg|jsdelivr|cdnjs)", html)
    static_assets = [url for url in assets if url.startswith(settings.STATIC_URL) or url.startswith("/static/")]
    assert {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"} <= {
        url.rsplit("/", 1)[1] for url in static_assets
    }
    for url in static_assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"
