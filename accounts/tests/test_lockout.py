"""The sign-in lockout counts one email however it is typed, on the admin, the portal and the API alike."""

import importlib
import json

import pytest
from axes.models import AccessAttempt
from django.apps import apps as django_apps
from django.conf import settings
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

EMAIL = "lock1@countinghouse.example"
OTHER_SPELLINGS = [
    "LOCK1@countinghouse.example",
    "Lock1@Countinghouse.Example",
    "lock1@COUNTINGHOUSE.EXAMPLE",
    "  lock1@countinghouse.example  ",
    "\tLock1@countinghouse.example\n",
]
# Five spellings of one address, for five failures that must add up.
FIVE_SPELLINGS = [EMAIL, *OTHER_SPELLINGS[:4]]
# Letters that PostgreSQL's UPPER() folds onto ASCII ones ("ı" to "I", "ſ" to "S").
LOOKALIKES = ["lock1@countınghouse.example", "lock1@countinghouſe.example"]


def admin_sign_in(client, email: str, password: str):
    return client.post(reverse("admin:login"), {"username": email, "password": password, "next": "/admin/"})


def portal_sign_in(client, email: str, password: str):
    return client.post(reverse("portal:login"), {"username": email, "password": password})


def api_sign_in(client, email: str, password: str):
    body = json.dumps({"email": email, "password": password})
    return client.post(reverse("api-session"), body, content_type="application/json")


SIGN_INS = {"admin": admin_sign_in, "portal": portal_sign_in, "api": api_sign_in}


def is_locked_out(path: str, response) -> bool:
    if path == "api":
        return response.status_code == 403 and response.json()["error"]["code"] == "locked_out"
    return response.status_code == 429 and b"Too many failed sign-ins" in response.content


def is_signed_in(client, user) -> bool:
    return client.session.get("_auth_user_id") == str(user.pk)


@pytest.fixture
def user(make_user):
    return make_user(Role.FINANCE, email=EMAIL)


def fail_until_locked(client, path: str, spellings: list[str]) -> None:
    for spelling in spellings:
        SIGN_INS[path](client, spelling, "wrong password")


@pytest.mark.parametrize("path", SIGN_INS)
@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
def test_other_spellings_sign_in_while_not_locked(client, user, path, spelling):
    response = SIGN_INS[path](client, spelling, PASSWORD)

    assert response.status_code in (200, 302)
    assert is_signed_in(client, user)


@pytest.mark.parametrize("path", SIGN_INS)
@pytest.mark.parametrize("spelling", OTHER_SPELLINGS)
def test_a_lock_holds_for_every_spelling_of_the_email(client, user, path, spelling):
    fail_until_locked(client, path, [EMAIL] * settings.AXES_FAILURE_LIMIT)

    response = SIGN_INS[path](client, spelling, PASSWORD)

    assert is_locked_out(path, response), response.content
    assert not is_signed_in(client, user)


@pytest.mark.parametrize("path", SIGN_INS)
def test_a_lock_taken_with_another_spelling_holds_for_the_stored_one(client, user, path):
    fail_until_locked(client, path, ["LOCK1@COUNTINGHOUSE.EXAMPLE"] * settings.AXES_FAILURE_LIMIT)

    response = SIGN_INS[path](client, EMAIL, PASSWORD)

    assert is_locked_out(path, response), response.content
    assert not is_signed_in(client, user)


@pytest.mark.parametrize("path", SIGN_INS)
def test_failures_spread_over_spellings_add_up_to_a_lock(client, user, path):
    assert len(FIVE_SPELLINGS) == settings.AXES_FAILURE_LIMIT
    fail_until_locked(client, path, FIVE_SPELLINGS)

    response = SIGN_INS[path](client, "Lock1@Countinghouse.Example", PASSWORD)

    assert is_locked_out(path, response), response.content
    assert not is_signed_in(client, user)
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == [EMAIL]  # one count, as stored


@pytest.mark.parametrize("locked_on", SIGN_INS)
@pytest.mark.parametrize("tried_on", SIGN_INS)
def test_a_lock_taken_on_one_sign_in_holds_on_the_others(client, user, locked_on, tried_on):
    fail_until_locked(client, locked_on, FIVE_SPELLINGS)

    response = SIGN_INS[tried_on](client, "LOCK1@countinghouse.example", PASSWORD)

    assert is_locked_out(tried_on, response), response.content
    assert not is_signed_in(client, user)


@pytest.mark.parametrize("path", SIGN_INS)
@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_a_lookalike_address_does_not_get_round_the_lock(client, user, path, lookalike):
    """On PostgreSQL a case-insensitive lookup matched these to the user while the lockout counted them apart."""
    fail_until_locked(client, path, [EMAIL] * settings.AXES_FAILURE_LIMIT)

    SIGN_INS[path](client, lookalike, PASSWORD)

    assert not is_signed_in(client, user)


def test_an_email_stored_before_the_canonical_spelling_is_rewritten_and_signs_in(client, user):
    migration = importlib.import_module("accounts.migrations.0005_emails_stored_as_sign_in_looks_them_up")
    User.objects.filter(pk=user.pk).update(email=" Lock1@CountingHouse.Example")

    migration.store_canonical_emails(django_apps, None)

    user.refresh_from_db()
    assert user.email == EMAIL
    admin_sign_in(client, "LOCK1@countinghouse.example", PASSWORD)
    assert is_signed_in(client, user)
