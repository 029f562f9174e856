"""Sessions end 7 days after sign-in whatever the activity; a staff session also ends after 8 idle hours."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.urls import reverse

from accounts.sessions import SIGNED_IN_AT
from accounts.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SIGN_IN_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(days=7)
IDLE = timedelta(hours=8)


@pytest.fixture
def clock():
    with time_machine.travel(SIGN_IN_TIME, tick=False) as traveller:
        yield traveller


def sign_in(client, user) -> None:
    """Through the sign-in page a person uses: the portal's for portal users, the admin's for staff."""
    url = reverse("admin:login") if user.is_staff else reverse("portal:login")
    response = client.post(url, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    assert is_signed_in(client, user)


def is_signed_in(client, user) -> bool:
    return client.session.get("_auth_user_id") == str(user.pk)


def opens_their_home_page(client, user) -> bool:
    """The admin dashboard for staff, the portal for a portal user; signed-out people are sent to sign in."""
    response = client.get(reverse("admin:index") if user.is_staff else reverse("portal:home"))
    assert response.status_code in (200, 302)
    return response.status_code == 200


def is_still_signed_in_on_the_api(client, user) -> bool:
    """A cheap signed-in request, for tests that are active many times."""
    return client.get(reverse("api-user-detail", args=[user.pk])).status_code == 200


def write_to_the_session(client) -> None:
    """What any view that keeps something in the session does (a message too long for its cookie, say)."""
    session = client.session
    session["note"] = session.get("note", 0) + 1
    session.save()


@pytest.mark.parametrize("who", ["staff", "portal"])
def test_a_session_ends_seven_days_after_sign_in_whatever_the_activity(client, clock, finance_user, portal_user, who):
    user = finance_user if who == "staff" else portal_user
    sign_in(client, user)

    for _ in range(7 * 6 - 1):  # active every 4 hours, writing to the session each time
        clock.shift(timedelta(hours=4))
        assert is_still_signed_in_on_the_api(client, user)
        write_to_the_session(client)
    clock.move_to(SIGN_IN_TIME + LIFETIME - timedelta(minutes=1))
    assert opens_their_home_page(client, user)

    clock.move_to(SIGN_IN_TIME + LIFETIME)
    assert not opens_their_home_page(client, user)
    assert not is_signed_in(client, user)


def test_the_stored_session_and_its_cookie_expire_at_the_end_of_the_lifetime(client, clock, portal_user):
    sign_in(client, portal_user)
    cookie = client.cookies["sessionid"]
    assert int(cookie["max-age"]) == LIFETIME.total_seconds()

    clock.shift(timedelta(days=3))
    write_to_the_session(client)

    assert Session.objects.get(session_key=cookie.value).expire_date == SIGN_IN_TIME + LIFETIME


def test_a_staff_session_idle_for_eight_hours_ends(client, clock, finance_user):
    sign_in(client, finance_user)

    clock.shift(IDLE - timedelta(minutes=1))
    assert opens_their_home_page(client, finance_user)  # activity starts the idle clock again
    clock.shift(IDLE - timedelta(minutes=1))
    assert opens_their_home_page(client, finance_user)

    clock.shift(IDLE)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not is_signed_in(client, finance_user)


def test_an_idle_staff_session_is_refused_by_the_api_too(client, clock, finance_user):
    sign_in(client, finance_user)
    assert client.get(reverse("api-user-detail", args=[finance_user.pk])).status_code == 200

    clock.shift(IDLE)

    response = client.get(reverse("api-user-detail", args=[finance_user.pk]))
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_portal_users_have_no_idle_timeout(client, clock, portal_user):
    sign_in(client, portal_user)

    clock.shift(LIFETIME - timedelta(hours=1))

    assert opens_their_home_page(client, portal_user)


def test_the_staff_idle_timeout_is_a_setting(client, clock, finance_user, settings):
    settings.SESSION_STAFF_IDLE_TIMEOUT = timedelta(minutes=30)
    sign_in(client, finance_user)

    clock.shift(timedelta(minutes=30))

    assert not opens_their_home_page(client, finance_user)


def test_no_idle_timeout_when_set_to_zero(client, clock, finance_user, settings):
    settings.SESSION_STAFF_IDLE_TIMEOUT = timedelta(0)
    sign_in(client, finance_user)

    clock.shift(timedelta(days=6))

    assert opens_their_home_page(client, finance_user)


def test_a_session_without_a_sign_in_time_ends(client, clock, portal_user):
    """Sessions opened before these rules carry no sign-in time: they end at their next request."""
    sign_in(client, portal_user)
    session = client.session
    del session[SIGNED_IN_AT]
    session.save()

    assert not opens_their_home_page(client, portal_user)
    assert not is_signed_in(client, portal_user)
