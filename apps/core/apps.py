from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import history, roles  # noqa: F401  (connects the history stamping signal)
        from .history_guard import protect_after_migrate

        post_migrate.connect(roles.sync_roles_after_migrate, dispatch_uid="core.sync_roles")
        post_migrate.connect(protect_after_migrate, dispatch_uid="core.protect_history")
