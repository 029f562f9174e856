"""What django-axes counts failed sign-ins by (AXES_USERNAME_CALLABLE)."""

from django.conf import settings

from accounts.models import canonical_email


def lockout_username(request, credentials: dict | None) -> str | None:
    """The email as sign-in looks it up, so that every spelling of one address shares one failure count.

    Axes calls this for the admin and portal login forms and for `POST /api/session` alike: all three go
    through `django.contrib.auth.authenticate`, which hands axes the credentials.
    """
    if credentials is not None:
        username = credentials.get(settings.AXES_USERNAME_FORM_FIELD)
    else:
        username = getattr(request, "data", request.POST).get(settings.AXES_USERNAME_FORM_FIELD)
    return canonical_email(username) if isinstance(username, str) else None
