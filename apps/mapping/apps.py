from django.apps import AppConfig
from django.db.models.signals import post_migrate

from apps.core.masking import register_sensitive_keys


class MappingConfig(AppConfig):
    name = "apps.mapping"
    label = "mapping"
    verbose_name = "Mappings and cross-references"

    def ready(self):
        # Not an import loop: apps.py is read before any model exists, and services needs the models, so
        # Django's ready() hook is the one place the handler can be loaded (it lives with the other services).
        from apps.core import approvals

        from .masking import profile_sensitive_keys
        from .services import builtin_profiles_after_migrate, source_profile_apply_approval

        register_sensitive_keys(profile_sensitive_keys)  # payload masking asks the profiles (apps/core/masking.py)

        post_migrate.connect(builtin_profiles_after_migrate, sender=self, dispatch_uid="mapping.builtin_profiles")
        approvals.register(
            approvals.SOURCE_PROFILE,
            label="Source profile publication",
            permission="mapping.change_sourceprofile",
            apply=source_profile_apply_approval,
        )
