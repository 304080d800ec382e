from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_migrate, post_save

        from . import history, roles  # noqa: F401  (connects the history stamping signal)
        from .history_guard import protect_after_migrate
        from .users import forget_system_user

        post_migrate.connect(roles.sync_roles_after_migrate, dispatch_uid="core.sync_roles")
        post_migrate.connect(protect_after_migrate, dispatch_uid="core.protect_history")
        post_migrate.connect(forget_system_user, dispatch_uid="core.forget_system_user")
        post_save.connect(forget_system_user, sender=get_user_model(), dispatch_uid="core.forget_system_user.save")
        post_delete.connect(forget_system_user, sender=get_user_model(), dispatch_uid="core.forget_system_user.delete")
