from django.apps import AppConfig
from django.db.models.signals import post_migrate

from apps.core.approval_actions import SOURCE_PROFILE
from apps.core.approval_actions import register as register_approval
from apps.core.masking import register_sensitive_keys


class MappingConfig(AppConfig):
    name = "apps.mapping"
    label = "mapping"
    verbose_name = "Mappings and cross-references"

    def ready(self):
        # services needs the models, which do not exist while apps.py is read: ready() is where it can load.
        from .masking import profile_sensitive_keys
        from .services import builtin_profiles_after_migrate

        register_sensitive_keys(profile_sensitive_keys)  # payload masking asks the profiles (apps/core/masking.py)

        post_migrate.connect(builtin_profiles_after_migrate, sender=self, dispatch_uid="mapping.builtin_profiles")
        register_approval(
            SOURCE_PROFILE,
            label="Source profile publication",
            permission="mapping.change_sourceprofile",
            apply="apps.mapping.services.source_profile_apply_approval",
        )
