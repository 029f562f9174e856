"""How long a signed-in session lasts: a fixed lifetime from sign-in for everyone, and an idle timeout for staff.

Both are kept as timestamps in the session itself. The lifetime is absolute: the session's expiry is set to
sign-in plus SESSION_COOKIE_AGE, so no later write to the session moves it (by default Django would count
it again from every write).
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import logout
from django.utils import timezone

SIGNED_IN_AT = "signed_in_at"
LAST_SEEN_AT = "last_seen_at"
# A staff user's activity is written back at most this often, not on every request.
LAST_SEEN_PRECISION = timedelta(minutes=1)


def _read(session, key: str) -> datetime | None:
    value = session.get(key)
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int | float) else None


def session_start(sender, request, user, **kwargs) -> None:
    """On every sign-in (`user_logged_in`): start both clocks."""
    now = timezone.now()
    request.session.set_expiry(now + timedelta(seconds=settings.SESSION_COOKIE_AGE))
    request.session[SIGNED_IN_AT] = now.timestamp()
    request.session[LAST_SEEN_AT] = now.timestamp()


def session_has_ended(session, user, now: datetime) -> bool:
    signed_in_at = _read(session, SIGNED_IN_AT)
    if signed_in_at is None or now - signed_in_at >= timedelta(seconds=settings.SESSION_COOKIE_AGE):
        return True  # no sign-in time: a session opened before these rules, which ends once
    idle_timeout = settings.SESSION_STAFF_IDLE_TIMEOUT
    if user.is_staff and idle_timeout:
        last_seen_at = _read(session, LAST_SEEN_AT) or signed_in_at
        return now - last_seen_at >= idle_timeout
    return False


class SessionLifetimeMiddleware:
    """Signs out a session past its lifetime or, for staff, idle too long; the view then sees nobody signed in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = timezone.now()
            if session_has_ended(request.session, request.user, now):
                logout(request)
            elif request.user.is_staff:
                last_seen_at = _read(request.session, LAST_SEEN_AT)
                if last_seen_at is None or now - last_seen_at >= LAST_SEEN_PRECISION:
                    request.session[LAST_SEEN_AT] = now.timestamp()
        return self.get_response(request)
