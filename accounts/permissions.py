from rest_framework import permissions


class RoleModelPermissions(permissions.DjangoModelPermissions):
    """Model permissions of the caller's roles, reads included; portal users may read their own data.

    What a caller may see is decided by each view's scoped queryset, not here.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if request.method in permissions.SAFE_METHODS and user.is_authenticated and user.is_portal_user:
            return True
        return super().has_permission(request, view)
