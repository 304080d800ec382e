from django.apps import AppConfig

from apps.core.approval_actions import OWNERSHIP_RULE
from apps.core.approval_actions import register as register_approval


class SystemsConfig(AppConfig):
    name = "apps.systems"
    label = "systems"
    verbose_name = "Connected systems and ownership"

    def ready(self):
        register_approval(
            OWNERSHIP_RULE,
            label="Ownership rule change",
            permission="systems.change_ownershiprule",
            apply="apps.systems.services.ownership_rule_apply_approval",
        )
