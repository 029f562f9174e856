import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, User, canonical_email
from accounts.roles import Role

TOKEN_PREFIX_BYTES = 6


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    email: str,
    full_name: str,
    password: str | None = None,
    roles: list[str] | tuple[str, ...] = (),
) -> User:
    """Create a staff user in the given roles (an empty list makes a user with no staff role).

    No password (None) makes a user who cannot sign in until one is set; an empty one is refused.
    """
    unknown = sorted(set(roles) - set(Role.values))
    if unknown:
        raise ValidationError({"roles": [f"Unknown role: {', '.join(unknown)}."]})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": ["A user with this email already exists."]})
    user = User(email=canonical_email(email), full_name=full_name, is_staff=bool(roles))
    user._history_user = actor
    if password is None:
        user.set_unusable_password()
    else:
        if not password:
            raise ValidationError(
                {"password": ["The password is empty: give one, or leave it out for a user who cannot sign in yet."]}
            )
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ValidationError({"password": error.messages}) from error
        user.set_password(password)
    user.full_clean(exclude=["password"])
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # the same email, created by a concurrent request
        raise ValidationError({"email": ["A user with this email already exists."]}) from error
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@transaction.atomic
def api_token_create(
    *, actor: User | None, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; the plain key is returned once and never stored."""
    if not user.is_active:
        raise ValidationError({"user": ["An inactive user cannot get an API token."]})
    prefix = secrets.token_hex(TOKEN_PREFIX_BYTES)
    raw_key = f"ch_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user=user, name=name, prefix=prefix, key_hash=_hash_key(raw_key), expires_at=expires_at)
    token.created_by = actor
    token._history_user = actor
    token.full_clean()
    token.save()
    return token, raw_key


@transaction.atomic
def api_token_revoke(*, actor: User | None, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token._history_user = actor
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, raw_key: str) -> ApiToken | None:
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != "ch":
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash_key(raw_key)):
        return None
    if not token.is_usable or not token.user.is_active:
        return None
    # At most one write a minute per token keeps busy clients from hammering the row. last_used_at is left out
    # of the token's history, so update() skipping it loses nothing.
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
