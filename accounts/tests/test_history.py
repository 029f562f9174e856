"""A user's history keeps their roles with every version, so who gave or took a role is on record."""

import pytest
from django.contrib.auth.models import Group

from accounts import services
from accounts.roles import Role

pytestmark = pytest.mark.django_db


def roles_of(version) -> set[str]:
    return {Group.objects.get(pk=row.group_id).name for row in version.groups.all()}


def test_a_user_created_in_roles_has_a_version_with_the_roles_and_the_creator(admin_user):
    user = services.user_create(actor=admin_user, email="new@example.com", full_name="New", roles=[Role.FINANCE])

    versions = list(user.history.order_by("history_date", "history_id"))
    assert [(v.history_type, v.history_user) for v in versions] == [("+", admin_user), ("~", admin_user)]
    assert (roles_of(versions[0]), roles_of(versions[-1])) == (set(), {Role.FINANCE})


def test_taking_a_role_away_is_a_version_without_it(admin_user, make_user):
    user = make_user(Role.FINANCE, Role.SALES)
    user._history_user = admin_user

    user.groups.remove(Group.objects.get(name=Role.SALES))

    latest = user.history.latest()
    assert (latest.history_user, roles_of(latest)) == (admin_user, {Role.FINANCE})


def test_the_password_is_never_copied_into_the_history(admin_user):
    user = services.user_create(actor=admin_user, email="new@example.com", full_name="New", password="x-Long-pass-123")

    assert not hasattr(user.history.latest(), "password")


def test_signing_in_leaves_no_version(client, make_user):
    user = make_user(Role.FINANCE)
    versions = user.history.count()

    client.force_login(user)
    assert client.post("/admin/logout/").status_code in (200, 302)
    user.set_password("x-Long-pass-123")
    user.save()
    versions_after_password = user.history.count()
    signed_in = client.post("/admin/login/", {"username": user.email, "password": "x-Long-pass-123", "next": "/admin/"})
    assert signed_in.status_code == 302

    user.refresh_from_db()
    assert user.last_login is not None
    assert versions_after_password == versions + 1  # a password change is on record
    assert user.history.count() == versions_after_password  # the sign-ins are not
