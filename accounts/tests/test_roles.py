import pytest
from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_PERMISSIONS, Role, sync_role_permissions

pytestmark = pytest.mark.django_db


def _names(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_role_exists_with_exactly_its_permissions_after_migrate():
    for role, expected in ROLE_PERMISSIONS.items():
        assert _names(Group.objects.get(name=role)) == set(expected), role
    assert Group.objects.get(name=Role.ADMIN).permissions.count() == Permission.objects.count()


def test_sync_restores_a_permission_set_changed_by_hand():
    finance = Group.objects.get(name=Role.FINANCE)
    finance.permissions.add(Permission.objects.get(codename="delete_customer"))
    finance.permissions.remove(Permission.objects.get(codename="add_priceagreement"))

    sync_role_permissions(group_model=Group, permission_model=Permission)

    assert _names(finance) == set(ROLE_PERMISSIONS[Role.FINANCE])


def test_role_permission_names_all_exist():
    existing = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    for role, names in ROLE_PERMISSIONS.items():
        assert set(names) <= existing, f"{role}: {set(names) - existing}"
