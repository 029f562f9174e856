from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and access"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        import accounts.schema  # noqa: F401  (registers the token scheme with drf-spectacular)
        from accounts.roles import sync_roles_after_migrate
        from accounts.sessions import session_start

        user_logged_in.connect(session_start, dispatch_uid="accounts.session_start")

        # Permissions of every app exist only after migrate; give each role its set then.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="accounts.sync_roles")
