"""Admin building blocks shared by the apps (kept apart from admin_site, which loads before the models)."""

from unfold.admin import ModelAdmin


class ReadOnlyAdmin(ModelAdmin):
    """Rows written only by services or kept in code: viewed here, never added, changed or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
