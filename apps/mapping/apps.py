from django.apps import AppConfig


class MappingConfig(AppConfig):
    name = "apps.mapping"
    label = "mapping"
    verbose_name = "Mappings and cross-references"

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(install_builtin_profiles, sender=self, dispatch_uid="mapping.builtin_profiles")


def install_builtin_profiles(sender, **kwargs):
    """Keep the shipped source profiles loaded after every migrate (idempotent)."""
    from apps.core.context import system_context

    from .services import builtin_profiles_install

    with system_context("Install built-in source profiles"):
        builtin_profiles_install()
